using System.Security.Cryptography;

namespace Messaging.Cluster.Tests.Harness;

public sealed record ClusterOptions
{
    public int Nodes { get; init; } = 3;
    public TimeSpan ReadyWithin { get; init; } = TimeSpan.FromSeconds(90);
    public TimeSpan ExitWithin { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Extra environment for every node (e.g. shorter failure-detection settings for tests).</summary>
    public IReadOnlyDictionary<string, string> Environment { get; init; } = new Dictionary<string, string>();

    /// <summary>What the first nodes run: the node built beside these tests unless given.</summary>
    public NodeBuild Build { get; init; } = NodeBuild.Current;

    /// <summary>PostgreSQL servers the journal is spread over (<see cref="DatabaseLayout"/>); 1: today's one server.</summary>
    public int DatabaseServers { get; init; } = 1;

    /// <summary>Where nodes and databases run: each in a network namespace of its own (<see cref="NetworkLab"/>), or on loopback when null.</summary>
    public ITestNetwork? Network { get; init; }
    /// <summary>
    /// Extra environment for one node by slot name (node1, node2, ...), over <see cref="Environment"/> and kept across
    /// its restarts (e.g. <see cref="Faketime"/> for a node whose clock is wrong).
    /// </summary>
    public IReadOnlyDictionary<string, IReadOnlyDictionary<string, string>> NodeEnvironment { get; init; } =
        new Dictionary<string, IReadOnlyDictionary<string, string>>();
}

/// <summary>
/// How the nodes' journal is laid out over the scenario's PostgreSQL servers: one server on the one-server keys, or
/// servers db1..dbN with the logical partitions split evenly between them in ranges (Messaging:Persistence:Partitions).
/// </summary>
public sealed record DatabaseLayout(IReadOnlyList<PostgresServer> Servers)
{
    private const int Partitions = 256;

    public static string NameOf(int index) => $"db{index + 1}";

    /// <summary>Partition p is on server p * N / 256.</summary>
    public int ServerIndexOf(int partition) => partition * Servers.Count / Partitions;

    public string PartitionMap => string.Join(',', Enumerable.Range(0, Servers.Count).Select(i =>
    {
        var partitions = Enumerable.Range(0, Partitions).Where(p => ServerIndexOf(p) == i).ToList();
        return $"{partitions[0]}-{partitions[^1]}={NameOf(i)}";
    }));

    /// <summary>The environment a node reads its journal's servers from, as docs/operations.md shows it.</summary>
    public Dictionary<string, string> Environment()
    {
        var env = new Dictionary<string, string> { ["Messaging__Persistence__Provider"] = "PostgreSql" };
        if (Servers.Count == 1)
            env["Messaging__Persistence__ConnectionString"] = Servers[0].ConnectionString;
        else
        {
            for (var i = 0; i < Servers.Count; i++)
                env[$"Messaging__Persistence__Servers__{NameOf(i)}__ConnectionString"] = Servers[i].ConnectionString;
            env["Messaging__Persistence__Partitions"] = PartitionMap;
        }
        return env;
    }
}

/// <summary>
/// A build of the node: its Messaging.Node.dll (null: the one built beside these tests) and the app-version its nodes
/// announce (null: the build's own). Only environment keys every release knows go to a node, since a node refuses
/// keys under Messaging it does not know.
/// </summary>
public sealed record NodeBuild(string Label, string? Dll, string? AppVersion)
{
    public static NodeBuild Current { get; } = new("current", null, null);
}

/// <summary>
/// Several node processes on loopback sharing one PostgreSQL (or several: <see cref="DatabaseLayout"/>) and one signing
/// key, each with its own remoting and HTTP port. Slots keep their ports across restarts (as a StatefulSet pod keeps its
/// name); a replacement gets new ones.
/// </summary>
public sealed class TestCluster : IAsyncDisposable
{
    private readonly List<NodeProcess> _slots = [];
    private readonly List<NodeProcess> _retired = [];
    private readonly Action<string> _log;
    private readonly object _gate = new();
    private readonly HashSet<NodeProcess> _draining = [];
    private readonly Dictionary<string, NodeBuild> _builds = [];
    private int _named;

    private TestCluster(string directory, DatabaseLayout databases, ClusterOptions options, Action<string> log)
    {
        Directory = directory;
        Databases = databases;
        Options = options;
        _log = log;
        // Not valid base64 (the dashes), so a node cannot read it as anything but its UTF-8 bytes.
        SigningKey = $"cluster-test-key-{Convert.ToHexString(RandomNumberGenerator.GetBytes(24))}";
        AdminToken = $"cluster-admin-{Convert.ToHexString(RandomNumberGenerator.GetBytes(16))}";
    }

    public string Directory { get; }
    public DatabaseLayout Databases { get; }
    public ClusterOptions Options { get; }
    public string SigningKey { get; }
    public string AdminToken { get; }
    public IReadOnlyList<string> SeedNodes { get; private set; } = [];

    public IReadOnlyList<NodeProcess> Nodes { get { lock (_gate) return [.. _slots]; } }

    /// <summary>The nodes a load balancer would send to now: ready once, running, not frozen, not shutting down.</summary>
    public IReadOnlyList<Uri> ServingEndpoints
    {
        get
        {
            lock (_gate)
                return [.. _slots.Where(n => n.HasBeenReady && n.IsRunning && !n.IsFrozen && !_draining.Contains(n)).Select(n => n.HttpUri)];
        }
    }

    public static Task<TestCluster> StartAsync(PostgresServer postgres, string directory, Action<string> log,
        ClusterOptions options) =>
        StartAsync(new DatabaseLayout([postgres]), directory, log, options);

    public static async Task<TestCluster> StartAsync(DatabaseLayout databases, string directory, Action<string> log,
        ClusterOptions options)
    {
        var cluster = new TestCluster(directory, databases, options, log);
        try
        {
            var ports = Enumerable.Range(0, options.Nodes).Select(_ => (Http: FreePorts.Next(), Remoting: FreePorts.Next())).ToList();
            cluster.SeedNodes = [.. ports.Select((p, i) => $"akka.tcp://messaging@{cluster.HostOf($"node{i + 1}")}:{p.Remoting}")];
            cluster._named = options.Nodes;
            for (var i = 0; i < options.Nodes; i++)
                cluster._slots.Add(cluster.NewNode($"node{i + 1}", ports[i].Http, ports[i].Remoting, 1));
            foreach (var node in cluster._slots)
                node.Start();
            await Task.WhenAll(cluster._slots.Select(n => n.WaitReadyAsync(options.ReadyWithin)));
            log($"cluster of {options.Nodes} ready: {string.Join(", ", cluster._slots.Select(n => $"{n.Name} http {n.HttpPort} akka {n.RemotingPort} pid {n.Pid}"))}");
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    /// <summary>Every environment variable a node gets; also what docs/operations.md tells a person to set.</summary>
    public IReadOnlyDictionary<string, string> EnvironmentFor(string name, int remotingPort)
    {
        var env = new Dictionary<string, string>(Databases.Environment())
        {
            ["Messaging__DataDirectory"] = Path.Combine(Directory, name, "data"),
            ["Messaging__Cluster__Hostname"] = HostOf(name),
            ["Messaging__Cluster__Port"] = remotingPort.ToString(),
            ["Messaging__Cluster__SeedNodes"] = string.Join(',', SeedNodes),
            ["Messaging__Auth__SigningKey"] = SigningKey,
            ["Messaging__Admin__Token"] = AdminToken,
            ["DOTNET_gcServer"] = "0", // several nodes on 2 cores: workstation GC keeps each one small
        };
        foreach (var (key, value) in Options.Environment)
            env[key] = value;
        foreach (var (key, value) in Options.NodeEnvironment.GetValueOrDefault(name) ?? new Dictionary<string, string>())
            env[key] = value;
        return env;
    }

    private NodeProcess NewNode(string name, int httpPort, int remotingPort, int incarnation, NodeBuild? build = null,
        IReadOnlyList<string>? seedNodes = null)
    {
        build ??= Options.Build;
        // Each incarnation gets a fresh admin port (the admin listener is the operator's, not the load balancer's).
        var adminPort = FreePorts.Next();
        var environment = new Dictionary<string, string>(EnvironmentFor(name, remotingPort))
        {
            ["Messaging__Admin__Port"] = adminPort.ToString(),
        };
        // In a network namespace of its own, loopback is the node's alone: the admin listener binds the node's address.
        if (Options.Network is not null)
            environment["Messaging__Admin__Hostname"] = HostOf(name);
        if (build.AppVersion is not null)
            environment["Messaging__Cluster__AppVersion"] = build.AppVersion;
        if (seedNodes is not null)
            environment["Messaging__Cluster__SeedNodes"] = string.Join(',', seedNodes);
        lock (_gate)
            _builds[name] = build;
        return new(name, httpPort, Path.Combine(Directory, name), environment, incarnation: incarnation)
        {
            RemotingPort = remotingPort,
            AdminPort = adminPort,
            Dll = build.Dll,
            Host = HostOf(name),
            Launcher = Options.Network?.LauncherOf(name) ?? [],
        };
    }

    private string HostOf(string name) => Options.Network?.AddressOf(name) ?? "127.0.0.1";

    /// <summary>The build a node runs.</summary>
    public NodeBuild BuildOf(NodeProcess node)
    {
        lock (_gate)
            return _builds[node.Name];
    }

    /// <summary>
    /// A node of <paramref name="build"/> on new ports, joining through the members running now (the first seed nodes
    /// may be gone), as a Deployment's surge pod joins before an old one leaves. Returns once it is an Up member.
    /// </summary>
    public async Task<NodeProcess> AddAsync(NodeBuild build)
    {
        var name = $"node{Interlocked.Increment(ref _named)}";
        var seeds = Nodes.Where(n => n.IsRunning).Select(n => n.AkkaAddress).ToList();
        var next = NewNode(name, FreePorts.Next(), FreePorts.Next(), 1, build, seeds);
        lock (_gate)
            _slots.Add(next);
        await next.StartAsync(Options.ReadyWithin);
        _log($"{name} ({build.Label}, app-version {build.AppVersion ?? "its own"}) up (http {next.HttpPort}, akka {next.RemotingPort}, pid {next.Pid})");
        return next;
    }

    /// <summary>SIGTERM <paramref name="node"/>, wait for its exit and take it out of the slots.</summary>
    public async Task RetireAsync(NodeProcess node)
    {
        var slot = Nodes.ToList().IndexOf(node);
        if (slot < 0)
            throw new InvalidOperationException($"{node.Name} is not a running slot");
        await StopGracefullyAsync(slot);
        lock (_gate)
        {
            _slots.Remove(node);
            _retired.Add(node);
        }
    }

    /// <summary>SIGTERM, wait for a clean exit, start again on the same ports and wait until ready.</summary>
    public async Task RestartGracefullyAsync(int slot)
    {
        var old = Nodes[slot];
        await StopGracefullyAsync(slot);
        var next = NewNode(old.Name, old.HttpPort, old.RemotingPort, old.Incarnation + 1);
        lock (_gate)
        {
            _retired.Add(old);
            _slots[slot] = next;
        }
        await next.StartAsync(Options.ReadyWithin);
        _log($"{next.Name} #{next.Incarnation} ready (pid {next.Pid})");
    }

    public async Task StopGracefullyAsync(int slot)
    {
        var node = Nodes[slot];
        if (!node.IsRunning)
        {
            _log($"{node.Name} already exited ({node.ExitCode})");
            return;
        }
        lock (_gate)
            _draining.Add(node);
        _log($"SIGTERM {node.Name} (pid {node.Pid})");
        node.Terminate();
        if (!await node.WaitForExitAsync(Options.ExitWithin))
            throw new TimeoutException($"{node.Name} did not exit within {Options.ExitWithin.TotalSeconds:0} s of SIGTERM.\n{node.Tail()}");
        _log($"{node.Name} exited with {node.ExitCode}");
    }

    public async Task KillAsync(int slot)
    {
        var node = Nodes[slot];
        _log($"SIGKILL {node.Name} (pid {node.Pid})");
        node.Kill();
        await node.WaitForExitAsync(TimeSpan.FromSeconds(10));
    }

    /// <summary>
    /// SIGKILL <paramref name="slot"/> and start its next incarnation at once on the same HTTP and remoting ports, as
    /// Kubernetes restarts a killed container in the same pod (same IP, same port 4053): the cluster sees a new uid at
    /// a member's address. Returns once the new process runs; <see cref="NodeProcess.WaitReadyAsync"/> waits for it.
    /// </summary>
    public async Task<NodeProcess> KillAndRestartAsync(int slot)
    {
        var old = Nodes[slot];
        _log($"SIGKILL {old.Name} (pid {old.Pid}), restarting it on the same ports");
        old.Kill();
        await old.WaitForExitAsync(TimeSpan.FromSeconds(10));
        var next = NewNode(old.Name, old.HttpPort, old.RemotingPort, old.Incarnation + 1);
        lock (_gate)
        {
            _retired.Add(old);
            _slots[slot] = next;
        }
        next.Start();
        _log($"{next.Name} #{next.Incarnation} started (pid {next.Pid}, akka {next.RemotingPort})");
        return next;
    }

    /// <summary>A new node on new ports in place of <paramref name="slot"/>, joining through the seed nodes.</summary>
    public async Task<NodeProcess> ReplaceAsync(int slot)
    {
        var old = Nodes[slot];
        var next = NewNode($"{old.Name}r", FreePorts.Next(), FreePorts.Next(), 1);
        lock (_gate)
        {
            _retired.Add(old);
            _slots[slot] = next;
        }
        await next.StartAsync(Options.ReadyWithin);
        _log($"replacement {next.Name} ready (http {next.HttpPort}, akka {next.RemotingPort}, pid {next.Pid})");
        return next;
    }

    public void Freeze(int slot)
    {
        _log($"SIGSTOP {Nodes[slot].Name} (pid {Nodes[slot].Pid})");
        Nodes[slot].Freeze();
    }

    public void Thaw(int slot)
    {
        _log($"SIGCONT {Nodes[slot].Name} (pid {Nodes[slot].Pid})");
        Nodes[slot].Thaw();
    }

    public async ValueTask DisposeAsync()
    {
        List<NodeProcess> all;
        lock (_gate)
            all = [.. _slots, .. _retired];
        // Graceful first so logs end cleanly, then whatever is left is killed.
        foreach (var node in all.Where(n => n.IsRunning && !n.IsFrozen))
        {
            try { node.Terminate(); }
            catch (InvalidOperationException) { }
        }
        await Task.WhenAll(all.Select(n => n.WaitForExitAsync(TimeSpan.FromSeconds(20))));
        foreach (var node in all)
            await node.DisposeAsync();
    }
}
