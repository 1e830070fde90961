using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Messaging.Testing;

/// <summary>
/// Certificates for remoting TLS, made in the test and written as PKCS#12 files with a password, as a Kubernetes
/// Secret would mount them. ECDSA P-256: quick to make, and a key type Akka.Remote takes.
/// </summary>
public static class Certificates
{
    public const string Password = "test-pfx-password";

    /// <summary>A self-signed certificate with its key: the one certificate a cluster's nodes share.</summary>
    public static string SelfSigned(string directory, string name, DateTimeOffset? notBefore = null, DateTimeOffset? notAfter = null)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = Request(name, key);
        using var certificate = request.CreateSelfSigned(notBefore ?? DateTimeOffset.UtcNow.AddDays(-1), notAfter ?? DateTimeOffset.UtcNow.AddDays(30));
        return Write(directory, name, new X509Certificate2Collection(certificate));
    }

    /// <summary>The same kind of file with the certificate only: no private key.</summary>
    public static string WithoutKey(string directory, string name)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var withKey = Request(name, key).CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
        using var publicOnly = X509CertificateLoader.LoadCertificate(withKey.RawData);
        return Write(directory, name, new X509Certificate2Collection(publicOnly));
    }

    /// <summary>A CA that issues one certificate per node; each node's file bundles the CA's certificate (not its key).</summary>
    public sealed class Authority : IDisposable
    {
        private readonly ECDsa _key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        private readonly X509Certificate2 _certificate;

        public Authority(string name)
        {
            var request = new CertificateRequest($"CN={name}", _key, HashAlgorithmName.SHA256);
            request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
            request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
            _certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-2), DateTimeOffset.UtcNow.AddDays(365));
        }

        public string Issue(string directory, string name)
        {
            using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            var serial = RandomNumberGenerator.GetBytes(16);
            serial[0] &= 0x7f;
            using var issued = Request(name, key).Create(_certificate, DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30), serial);
            using var withKey = issued.CopyWithPrivateKey(key);
            using var caOnly = X509CertificateLoader.LoadCertificate(_certificate.RawData);
            return Write(directory, name, new X509Certificate2Collection(new[] { withKey, caOnly }));
        }

        public void Dispose()
        {
            _certificate.Dispose();
            _key.Dispose();
        }
    }

    private static CertificateRequest Request(string name, ECDsa key)
    {
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, false));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(
            [new Oid("1.3.6.1.5.5.7.3.1"), new Oid("1.3.6.1.5.5.7.3.2")], false)); // server and client authentication
        return request;
    }

    private static string Write(string directory, string name, X509Certificate2Collection certificates)
    {
        Directory.CreateDirectory(directory);
        var path = Path.Combine(directory, $"{name}.pfx");
        File.WriteAllBytes(path, certificates.Export(X509ContentType.Pkcs12, Password)!);
        return path;
    }
}
