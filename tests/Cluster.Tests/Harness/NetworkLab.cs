using System.Runtime.InteropServices;

namespace Messaging.Cluster.Tests.Harness;

/// <summary>Where a test host (a node by its name, or a database server) runs: its address and the command that starts it there.</summary>
public interface ITestNetwork
{
    /// <summary>The host name of the scenario's database server <paramref name="index"/>.</summary>
    static string DatabaseHost(int index) => index == 0 ? "pg" : $"pg{index + 1}";

    string AddressOf(string host);
    IReadOnlyList<string> LauncherOf(string host);
}

/// <summary>
/// A private network on this machine: one network namespace per host (node1..nodeN, pg), each with a veth pair to a
/// bridge in the root namespace, which also holds an address, so the test process reaches every host as a client
/// would. Partitions are nftables rules in a host's own namespace that drop everything to and from some peers' addresses
/// (input and output, so both directions; no RST, as a real partition: connections hang until their timeouts), and a
/// heal deletes them. Everything is named with <see cref="Prefix"/>; what an earlier run left (it crashed or was
/// killed) is removed at the start, processes still in its namespaces included, and <see cref="DisposeAsync"/> removes
/// this run's even when the test failed. Needs root, iproute2 (`ip`) and nftables (`nft`); one run at a time.
/// </summary>
public sealed class NetworkLab : ITestNetwork, IAsyncDisposable
{
    public const string Prefix = "msgnet";
    private const string Subnet = "10.213.0"; // a /24 unlikely to clash with anything on a test machine
    private const string Bridge = Prefix + "-br";
    private const string Table = Prefix;
    private static readonly TimeSpan CommandTimeout = TimeSpan.FromSeconds(30);

    private readonly Dictionary<string, string> _addresses = [];
    private readonly Dictionary<string, HashSet<string>> _cuts = [];
    private readonly Action<string> _log;

    private NetworkLab(Action<string> log) => _log = line =>
    {
        try { log(line); }
        catch (Exception e) when (e is ObjectDisposedException or InvalidOperationException) { /* the test's log is gone */ }
    };

    /// <summary>The test process's own address on the bridge.</summary>
    public static string RootAddress => $"{Subnet}.1";

    /// <summary>Why partitions cannot be made here (null: they can): not root, or `ip` / `nft` missing.</summary>
    public static string? Unavailable()
    {
        if (geteuid() != 0)
            return "network partitions need root (network namespaces, veth pairs, nftables)";
        string[] missing = [.. new[] { ("ip", "iproute2"), ("nft", "nftables") }
            .Where(t => !OnPath(t.Item1)).Select(t => $"`{t.Item1}` (apt-get install -y {t.Item2})")];
        return missing.Length == 0 ? null : $"network partitions need {string.Join(" and ", missing)}";
    }

    /// <summary>Namespaces for <paramref name="hosts"/> on a fresh bridge, after removing an earlier run's leftovers.</summary>
    public static async Task<NetworkLab> CreateAsync(IEnumerable<string> hosts, Action<string> log)
    {
        var lab = new NetworkLab(log);
        log = lab._log;
        try
        {
            await CleanLeftoversAsync(log);
            await Ip("link", "add", Bridge, "type", "bridge");
            await Ip("addr", "add", $"{RootAddress}/24", "dev", Bridge);
            await Ip("link", "set", Bridge, "up");
            var octet = 10;
            foreach (var host in hosts)
            {
                var ns = Namespace(host);
                var address = $"{Subnet}.{octet++}";
                await Ip("netns", "add", ns);
                // The root end is named after the namespace (at most 15 characters), the namespace's end eth0.
                await Ip("link", "add", ns, "type", "veth", "peer", "name", "eth0", "netns", ns);
                await Ip("link", "set", ns, "master", Bridge, "up");
                await Ip("-n", ns, "link", "set", "lo", "up");
                await Ip("-n", ns, "addr", "add", $"{address}/24", "dev", "eth0");
                await Ip("-n", ns, "link", "set", "eth0", "up");
                lab._addresses[host] = address;
            }
            log($"network: bridge {Bridge} {RootAddress}/24; {string.Join(", ", lab._addresses.Select(a => $"{a.Key} {a.Value} (netns {Namespace(a.Key)})"))}");
            return lab;
        }
        catch
        {
            await lab.DisposeAsync();
            throw;
        }
    }

    public string AddressOf(string host) => _addresses.TryGetValue(host, out var address)
        ? address
        : throw new InvalidOperationException($"no namespace for {host} in this network (hosts: {string.Join(", ", _addresses.Keys)})");

    public IReadOnlyList<string> LauncherOf(string host)
    {
        _ = AddressOf(host); // a host of this network only
        return ["ip", "netns", "exec", Namespace(host)];
    }

    /// <summary>Drop everything between <paramref name="host"/> and each of <paramref name="peers"/>, both ways, from now on.</summary>
    public async Task CutAsync(string host, params string[] peers)
    {
        if (!_cuts.TryGetValue(host, out var cut))
            _cuts[host] = cut = [];
        foreach (var peer in peers)
            cut.Add(AddressOf(peer));
        await WriteRulesAsync(host, cut);
        _log($"network: {host} cut from {string.Join(", ", peers)} (nft table inet {Table} in netns {Namespace(host)} drops {string.Join(", ", cut)})");
    }

    /// <summary>Delete every rule: all hosts reach each other again.</summary>
    public async Task HealAsync()
    {
        foreach (var host in _cuts.Keys.ToList())
        {
            await Nft(host, "delete", "table", "inet", Table);
            _cuts.Remove(host);
        }
        _log("network: healed (every nft table deleted)");
    }

    private static async Task WriteRulesAsync(string host, IReadOnlyCollection<string> addresses)
    {
        var set = string.Join(", ", addresses);
        // Declared then deleted then written: replaces the table in one transaction whether it existed or not.
        var rules = $$"""
            table inet {{Table}}
            delete table inet {{Table}}
            table inet {{Table}} {
              chain input { type filter hook input priority -10; policy accept; ip saddr { {{set}} } drop; }
              chain output { type filter hook output priority -10; policy accept; ip daddr { {{set}} } drop; }
            }
            """;
        var file = Path.Combine(Path.GetTempPath(), $"{Prefix}-{host}-{Guid.NewGuid():N}.nft");
        await File.WriteAllTextAsync(file, rules + "\n");
        try { await Nft(host, "-f", file); }
        finally { File.Delete(file); }
    }

    private static string Namespace(string host) => $"{Prefix}-{host}";

    private static Task<string> Ip(params string[] args) => Command.RunAsync("ip", args, CommandTimeout);

    private static Task<string> Nft(string host, params string[] args) =>
        Command.RunAsync("ip", ["netns", "exec", Namespace(host), "nft", .. args], CommandTimeout);

    /// <summary>An earlier run's namespaces (with whatever still runs in them) and bridge, found by the prefix.</summary>
    private static async Task CleanLeftoversAsync(Action<string> log)
    {
        var namespaces = (await Ip("netns", "list"))
            .Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(line => line.Split(' ')[0])
            .Where(name => name.StartsWith(Prefix + "-", StringComparison.Ordinal))
            .ToList();
        foreach (var ns in namespaces)
            await RemoveNamespaceAsync(ns, log);
        if ((await Command.ExitAndOutputAsync("ip", ["link", "show", Bridge], CommandTimeout)).Exit == 0)
        {
            log($"network: removing a leftover bridge {Bridge}");
            await Ip("link", "del", Bridge);
        }
    }

    private static async Task RemoveNamespaceAsync(string ns, Action<string>? log)
    {
        // A namespace lives on while a process is in it; its processes are this harness's own (nodes, PostgreSQL).
        var pids = (await Command.ExitAndOutputAsync("ip", ["netns", "pids", ns], CommandTimeout)).Output
            .Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(p => int.TryParse(p, out var pid) ? pid : 0).Where(pid => pid > 0).ToList();
        if (log is not null)
            log($"network: removing leftover netns {ns}{(pids.Count > 0 ? $" and killing its processes {string.Join(", ", pids)}" : "")}");
        foreach (var pid in pids)
        {
            try { Signals.Send(pid, Signals.SigKill); }
            catch (InvalidOperationException) { /* gone meanwhile */ }
        }
        // Its veth pair goes with it (the root end too).
        await Command.ExitAndOutputAsync("ip", ["netns", "del", ns], CommandTimeout);
    }

    public async ValueTask DisposeAsync()
    {
        // The processes in them were stopped by their owners before this (dispose order); any still there are killed.
        foreach (var host in _addresses.Keys)
            await RemoveNamespaceAsync(Namespace(host), null);
        if ((await Command.ExitAndOutputAsync("ip", ["link", "show", Bridge], CommandTimeout)).Exit == 0)
            await Command.ExitAndOutputAsync("ip", ["link", "del", Bridge], CommandTimeout);
        _log("network: namespaces and bridge removed");
    }

    private static bool OnPath(string tool) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin").Split(':')
        .Append("/usr/sbin").Append("/sbin")
        .Any(dir => File.Exists(Path.Combine(dir, tool)));

    [DllImport("libc")]
    private static extern uint geteuid();
}
