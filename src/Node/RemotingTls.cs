using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Akka.Event;
using Akka.Remote.Hosting;
using Akka.Remote.Transport.DotNetty;

namespace Messaging.Node;

/// <summary>
/// TLS for Akka remoting: the certificate of <c>Messaging:Cluster:Tls</c>, read and checked once at start, and what
/// Akka.Remote is given (Akka.Hosting's <see cref="SslOptions"/>, which becomes a <see cref="DotNettySslSetup"/>).
/// Both ends of every connection present the certificate (mutual authentication) and check the other's with
/// <see cref="PeerValidation"/>; host names are not checked, since pods are reached by IP addresses that no
/// certificate names. docs/operations.md, "Remoting TLS".
/// </summary>
public sealed class RemotingTls
{
    private const string PathKey = "Messaging:Cluster:Tls:CertificatePath";
    private const string PasswordKey = "Messaging:Cluster:Tls:CertificatePassword";

    /// <summary>A certificate this close to its end is still used, with a warning at every start.</summary>
    public static readonly TimeSpan ExpiryWarning = TimeSpan.FromDays(30);

    private readonly X509Certificate2Collection _roots;
    private readonly X509Certificate2Collection _intermediates;

    private RemotingTls(X509Certificate2 certificate, X509Certificate2Collection roots,
        X509Certificate2Collection intermediates, PeerValidation validation)
    {
        Certificate = certificate;
        _roots = roots;
        _intermediates = intermediates;
        Validation = validation;
    }

    public X509Certificate2 Certificate { get; }
    public PeerValidation Validation { get; }

    /// <summary>
    /// The certificate of <paramref name="settings"/>, or null when TLS is off. Refuses (naming the key) a file that
    /// is missing or unreadable, a wrong password, a certificate without its private key or outside its validity,
    /// and for <see cref="PeerValidation.CertificateAuthority"/> a file without the CA that issued its certificate.
    /// </summary>
    public static RemotingTls? Load(NodeSettings.TlsSettings settings)
    {
        if (!settings.Enabled)
            return null;
        var path = Path.GetFullPath(settings.CertificatePath!);
        byte[] pkcs12;
        try
        {
            // Read here rather than by the loader, which reports a missing file as "error occurred during a cryptographic operation".
            pkcs12 = File.ReadAllBytes(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw Refused($"{PathKey}: cannot read {path}: {ex.Message} (in Kubernetes: is the Secret messaging-remoting-tls there? " +
                "docs/operations.md, \"Remoting TLS\")");
        }
        X509Certificate2Collection all;
        try
        {
            all = X509CertificateLoader.LoadPkcs12Collection(pkcs12, settings.CertificatePassword);
        }
        catch (CryptographicException ex)
        {
            throw Refused($"{PasswordKey} does not open {path}, or that is not a PKCS#12 (.pfx) file: {ex.Message}");
        }

        var withKey = all.Where(c => c.HasPrivateKey).ToList();
        if (withKey.Count != 1)
            throw Refused(withKey.Count == 0
                ? $"{PathKey}: {path} holds no private key, only certificates; export the certificate together with its key (openssl pkcs12 -export -inkey KEY -in CERT)"
                : $"{PathKey}: {path} holds {withKey.Count} certificates with a private key; it must hold exactly one, this cluster's");
        var certificate = withKey[0];
        using (var rsa = certificate.GetRSAPrivateKey())
        using (var ecdsa = rsa is null ? certificate.GetECDsaPrivateKey() : null)
        {
            if (rsa is null && ecdsa is null)
                throw Refused($"{PathKey}: the private key in {path} is neither RSA nor ECDSA, which is all Akka.Remote takes");
        }
        var now = DateTime.UtcNow;
        if (now < certificate.NotBefore.ToUniversalTime())
            throw Refused($"{PathKey}: the certificate in {path} ({certificate.Subject}) is not valid before {certificate.NotBefore.ToUniversalTime():u}");
        if (now > certificate.NotAfter.ToUniversalTime())
            throw Refused($"{PathKey}: the certificate in {path} ({certificate.Subject}) expired on {certificate.NotAfter.ToUniversalTime():u}; make a new one (docs/operations.md, \"Remoting TLS\")");

        var others = all.Where(c => !c.HasPrivateKey).ToList();
        var roots = new X509Certificate2Collection(others.Where(IsSelfIssued).ToArray());
        var intermediates = new X509Certificate2Collection(others.Where(c => !IsSelfIssued(c)).ToArray());
        var tls = new RemotingTls(certificate, roots, intermediates, settings.PeerValidation);
        if (settings.PeerValidation == PeerValidation.CertificateAuthority)
        {
            if (roots.Count == 0)
                throw Refused($"Messaging:Cluster:Tls:PeerValidation is CertificateAuthority, but {path} bundles no CA certificate; " +
                    "export it with the CA's certificate (openssl pkcs12 -export ... -certfile ca.crt)");
            if (tls.ChainProblem(certificate, presented: null) is { } problem)
                throw Refused($"{PathKey}: the certificate in {path} is not issued by the CA certificate bundled with it: {problem}");
        }
        return tls;
    }

    /// <summary>What Akka.Remote is given: this certificate, mutual authentication, no host name check, the peer check.</summary>
    public SslOptions SslOptions => new()
    {
        X509Certificate = Certificate,
        SuppressValidation = Validation == PeerValidation.None,
        RequireMutualAuthentication = true,
        ValidateCertificateHostname = false,
        CustomValidator = Validation == PeerValidation.None ? null : Validate,
    };

    public void LogStart(ILoggingAdapter log)
    {
        var until = Certificate.NotAfter.ToUniversalTime();
        log.Info("Remoting TLS on: certificate {Subject} (SHA-256 {Hash}), valid until {NotAfter:u}, peers checked by {PeerValidation}, mutual authentication",
            Certificate.Subject, Certificate.GetCertHashString(HashAlgorithmName.SHA256), until, Validation);
        if (until - DateTime.UtcNow < ExpiryWarning)
            log.Warning("Remoting TLS: the certificate {Subject} expires on {NotAfter:u}; once expired, nodes cannot connect to each other: replace it before (docs/operations.md, \"Remoting TLS\")",
                Certificate.Subject, until);
    }

    /// <summary>Called by Akka.Remote in every handshake, on both ends, with the certificate the other end presented.</summary>
    private bool Validate(X509Certificate2? peer, X509Chain? chain, string remote, System.Net.Security.SslPolicyErrors errors, ILoggingAdapter log)
    {
        var problem = peer is null ? "it presented no certificate" : Validation switch
        {
            // The handshake proved the peer holds the private key of what it presented; byte equality makes that ours.
            PeerValidation.SameCertificate when !peer.RawData.AsSpan().SequenceEqual(Certificate.RawData) =>
                $"its certificate {peer.Subject} (SHA-256 {peer.GetCertHashString(HashAlgorithmName.SHA256)}) is not this cluster's",
            PeerValidation.SameCertificate => OutsideValidity(peer),
            _ => ChainProblem(peer, chain),
        };
        if (problem is null)
            return true;
        log.Warning("Remoting TLS: refused a connection with {Peer}: {Problem}", remote, problem);
        return false;
    }

    private static string? OutsideValidity(X509Certificate2 certificate)
    {
        var now = DateTime.UtcNow;
        return now < certificate.NotBefore.ToUniversalTime() || now > certificate.NotAfter.ToUniversalTime()
            ? $"its certificate is valid only from {certificate.NotBefore.ToUniversalTime():u} to {certificate.NotAfter.ToUniversalTime():u}"
            : null;
    }

    /// <summary>Null when <paramref name="certificate"/> chains to a bundled CA (and every link is within its validity).</summary>
    private string? ChainProblem(X509Certificate2 certificate, X509Chain? presented)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(_roots);
        chain.ChainPolicy.ExtraStore.AddRange(_intermediates);
        if (presented is not null)
            foreach (var element in presented.ChainElements)
                chain.ChainPolicy.ExtraStore.Add(element.Certificate);
        // No CRL or OCSP for a cluster's private CA: a leaked key means a new CA (docs/operations.md).
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        if (chain.Build(certificate))
            return null;
        return $"its certificate {certificate.Subject} does not chain to this cluster's CA: " +
            string.Join("; ", chain.ChainStatus.Select(s => s.StatusInformation.Trim()).Where(s => s.Length > 0).DefaultIfEmpty("untrusted"));
    }

    private static bool IsSelfIssued(X509Certificate2 certificate) =>
        certificate.SubjectName.RawData.AsSpan().SequenceEqual(certificate.IssuerName.RawData);

    private static NodeConfigurationException Refused(string message) => new($"invalid configuration:\n  {message}");
}
