namespace Messaging.EndToEnd.Tests;

/// <summary>k8s/validate.sh (Kubernetes schemas and the deployment's rules) passes on k8s/ and fails on broken copies.</summary>
public sealed class KubernetesManifestSpecs
{
    private static readonly string Root = Repository.Root;
    private static string K8s => Path.Combine(Root, "k8s");

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Should_validate_the_manifests_in_k8s()
    {
        var (exit, output) = await Validate(K8s);
        Assert.True(exit == 0, output);
        Assert.Contains("0 problems", output);
    }

    [Theory]
    [InlineData("deployment.yaml", "replicas: 3", "replicas: three", "spec/replicas must be integer")]
    [InlineData("deployment.yaml", "maxUnavailable: 0", "maxUnavailable: 1", "maxUnavailable must be 0")]
    [InlineData("deployment.yaml", "terminationGracePeriodSeconds: 60", "terminationGracePeriodSeconds: 20", "terminationGracePeriodSeconds must exceed")]
    [InlineData("services.yaml", "publishNotReadyAddresses: true", "publishNotReadyAddresses: false", "publishNotReadyAddresses")]
    [InlineData("networkpolicy.yaml", "- podSelector:\n            matchLabels:\n              app.kubernetes.io/name: messaging",
        "- ipBlock:\n            cidr: 0.0.0.0/0", "port remoting must be open only to this app's pods")]
    [InlineData("networkpolicy.yaml", "policyTypes:\n    - Ingress", "policyTypes:\n    - Egress", "must govern Ingress")]
    [InlineData("rbac.yaml", "verbs: [\"get\", \"watch\", \"list\"]", "verbs: [\"get\"]", "get, watch and list on pods")]
    [InlineData("deployment.yaml", "name: Messaging__Cluster__Tls__Enabled\n              value: \"true\"",
        "name: Messaging__Cluster__Tls__Enabled\n              value: \"false\"", "Messaging__Cluster__Tls__Enabled must be \"true\"")]
    [InlineData("deployment.yaml", "value: /etc/messaging/remoting-tls/remoting.pfx", "value: /data/remoting.pfx",
        "CertificatePath must be a file of a mounted Secret")]
    [InlineData("deployment.yaml", "secret:\n            secretName: messaging-remoting-tls\n            optional: true\n            defaultMode: 0440\n" +
        "            items:\n              - key: remoting.pfx\n                path: remoting.pfx", "emptyDir: {}",
        "CertificatePath must be a file of a mounted Secret")]
    [InlineData("deployment.yaml", "valueFrom:\n                secretKeyRef:\n                  name: messaging-remoting-tls\n                  key: remoting-tls-password\n                  optional: true",
        "value: in-the-manifest", "the remoting certificate's password must come from a Secret")]
    [InlineData("deployment.yaml", "value: SameCertificate", "value: None", "PeerValidation None accepts any certificate")]
    public async Task Should_reject_a_broken_manifest(string file, string good, string bad, string expected)
    {
        var copy = Directory.CreateTempSubdirectory("messaging-k8s-").FullName;
        foreach (var manifest in Directory.GetFiles(K8s, "*.yaml"))
            File.Copy(manifest, Path.Combine(copy, Path.GetFileName(manifest)));
        var text = await File.ReadAllTextAsync(Path.Combine(copy, file), Ct);
        Assert.Contains(good, text);
        await File.WriteAllTextAsync(Path.Combine(copy, file), text.Replace(good, bad), Ct);

        var (exit, output) = await Validate(copy);

        Assert.True(exit == 1, $"exit {exit}: {output}");
        Assert.Contains(expected, output);
    }

    // The first run installs npm packages.
    private static Task<(int Exit, string Output)> Validate(string directory) =>
        Command.ExitAndOutputAsync("bash", [Path.Combine(K8s, "validate.sh"), directory], TimeSpan.FromMinutes(3));
}
