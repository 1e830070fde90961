using Akka.Actor;

namespace Messaging.Node;

/// <summary>How a node decides that the other end of a remoting connection belongs to its cluster.</summary>
public enum PeerValidation
{
    /// <summary>The peer presents this node's own certificate, byte for byte (one certificate shared by the cluster).</summary>
    SameCertificate,

    /// <summary>The peer's certificate is issued by a CA certificate bundled in this node's PKCS#12 file.</summary>
    CertificateAuthority,

    /// <summary>Any certificate (Akka's suppress-validation): encryption only, no check of who the peer is.</summary>
    None,
}

/// <summary>The <c>Messaging:Cluster:Tls</c> section: TLS for Akka remoting (docs/operations.md, "Remoting TLS").</summary>
public sealed partial class NodeSettings
{
    public sealed class TlsSettings
    {
        /// <summary>Off by default, so a node runs with no setup; every node of a cluster must agree.</summary>
        public bool Enabled { get; set; }

        /// <summary>A PKCS#12 (.pfx) file holding the certificate and its private key (and, for CertificateAuthority, the CA).</summary>
        public string? CertificatePath { get; set; }

        public string? CertificatePassword { get; set; }

        public PeerValidation PeerValidation { get; set; } = PeerValidation.SameCertificate;
    }

    /// <summary>The scheme of every cluster address: Akka.Remote names a TLS transport's addresses akka.ssl.tcp.</summary>
    public static string RemotingProtocol(TlsSettings tls) => tls.Enabled ? "akka.ssl.tcp" : "akka.tcp";

    /// <summary>What can be checked without reading the certificate; <see cref="RemotingTls.Load"/> checks the file at start.</summary>
    private IEnumerable<string> ValidateTls()
    {
        var tls = Cluster.Tls;
        if (tls.Enabled && string.IsNullOrWhiteSpace(tls.CertificatePath))
            yield return "Messaging:Cluster:Tls:CertificatePath is required when Messaging:Cluster:Tls:Enabled is true " +
                "(a PKCS#12 .pfx file with the certificate and its private key; docs/operations.md, \"Remoting TLS\")";
        var protocol = RemotingProtocol(tls);
        foreach (var seed in Cluster.SeedNodeList)
        {
            // A seed of the other scheme is never reached: TLS and plain nodes cannot talk to each other.
            if (Address.TryParse(seed, out var address) && address.Protocol != protocol)
                yield return $"Messaging:Cluster:SeedNodes: '{seed}' is an {address.Protocol} address, but with " +
                    $"Messaging:Cluster:Tls:Enabled {(tls.Enabled ? "true" : "false")} this cluster's addresses are " +
                    $"{protocol}://{NodeApp.ActorSystemName}@host:port";
        }
    }
}
