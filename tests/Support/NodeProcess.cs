using System.Diagnostics;

namespace Messaging.Testing;

/// <summary>
/// A node as its own process on 127.0.0.1 (`dotnet Messaging.Node.dll ARGUMENTS --urls http://127.0.0.1:PORT`), configured
/// only through the arguments and environment variables the README documents. Signals reach the node itself, as a
/// container runtime's would; its stdout and stderr go straight to files in <see cref="Directory"/> (NAME.K.out/.err,
/// K counting incarnations), so they survive a hung test and can be read after the fact. <see cref="Dll"/> runs
/// another server the same way (the benchmark's baseline).
/// </summary>
public sealed class NodeProcess : IAsyncDisposable
{
    private readonly IReadOnlyDictionary<string, string> _environment;
    private readonly IReadOnlyList<string> _arguments;
    private Process? _process;

    public NodeProcess(string name, int httpPort, string directory, IReadOnlyDictionary<string, string>? environment = null,
        IEnumerable<string>? arguments = null, int incarnation = 1)
    {
        Name = name;
        HttpPort = httpPort;
        Directory = directory;
        Incarnation = incarnation;
        _environment = environment ?? new Dictionary<string, string>();
        _arguments = [.. arguments ?? []];
    }

    public string Name { get; }
    public int HttpPort { get; }
    public string Directory { get; }
    public int Incarnation { get; }
    /// <summary>What `dotnet` runs: the node built beside these tests unless given.</summary>
    public string? Dll { get; init; }
    /// <summary>The remoting and admin ports the environment gives the node, when the caller fixes them.</summary>
    public int RemotingPort { get; init; }
    public int AdminPort { get; init; }
    /// <summary>The address the node binds HTTP and remoting to: loopback unless it runs in a network namespace of its own.</summary>
    public string Host { get; init; } = "127.0.0.1";
    /// <summary>A command the node is started under, e.g. `ip netns exec NS` to run it in a network namespace.</summary>
    public IReadOnlyList<string> Launcher { get; init; } = [];
    public Uri HttpUri => new($"http://{Host}:{HttpPort}");
    /// <summary>The admin listener: on loopback, or on <see cref="Host"/> when the node runs in a namespace of its own.</summary>
    public Uri AdminUri => new($"http://{Host}:{AdminPort}");
    /// <summary>akka.ssl.tcp for a node with remoting TLS on.</summary>
    public string RemotingProtocol { get; init; } = "akka.tcp";
    public string AkkaAddress => $"{RemotingProtocol}://messaging@{Host}:{RemotingPort}";
    public string StdoutPath => Path.Combine(Directory, $"{Name}.{Incarnation}.out");
    public string StderrPath => Path.Combine(Directory, $"{Name}.{Incarnation}.err");
    public int Pid => _process?.Id ?? throw new InvalidOperationException($"{Name} was not started");
    public bool IsRunning => _process is { HasExited: false };
    public bool IsFrozen { get; private set; }
    /// <summary>Passed its readiness check once: a load balancer would send it traffic from then on.</summary>
    public bool HasBeenReady { get; private set; }
    public int? ExitCode => _process is { HasExited: true } p ? p.ExitCode : null;

    public void Start()
    {
        if (_process is not null)
            throw new InvalidOperationException($"{Name} #{Incarnation} was already started; make a new NodeProcess");
        System.IO.Directory.CreateDirectory(Directory);
        var psi = new ProcessStartInfo("/bin/sh") { UseShellExecute = false, WorkingDirectory = Directory };
        // exec: the pid we signal is the node's own, as a container runtime's would be; setsid: its own session, so
        // signals meant for the test runner's terminal or process group never reach it. A launcher execs too.
        const string script = "out=$1 err=$2; shift 2; exec setsid \"$@\" >\"$out\" 2>\"$err\"";
        string[] args = ["-c", script, "sh", StdoutPath, StderrPath, .. Launcher, "dotnet",
            Dll ?? Repository.NodeDll, .. _arguments, "--urls", HttpUri.ToString().TrimEnd('/')];
        foreach (var arg in args)
            psi.ArgumentList.Add(arg);
        foreach (var (key, value) in _environment)
            psi.Environment[key] = value;
        _process = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {Name}");
    }

    /// <summary><see cref="Start"/>, then <see cref="WaitReadyAsync"/>.</summary>
    public async Task StartAsync(TimeSpan readyWithin)
    {
        Start();
        await WaitReadyAsync(readyWithin);
    }

    public Task<bool> IsReadyAsync() => Readiness.IsReadyAsync(HttpUri);

    public async Task WaitReadyAsync(TimeSpan within)
    {
        await Readiness.WaitAsync($"{Name} #{Incarnation}", HttpUri, within,
            exited: () => _process is { HasExited: true } p ? $"exited with {p.ExitCode}" : null, log: () => Tail());
        HasBeenReady = true;
    }

    /// <summary>SIGTERM, as Kubernetes stops a pod: the node should leave the cluster and hand its shards off.</summary>
    public void Terminate() => Signal(Signals.SigTerm);

    /// <summary>SIGKILL: no shutdown, no flush.</summary>
    public void Kill() => Signal(Signals.SigKill);

    public void Freeze()
    {
        Signal(Signals.SigStop);
        IsFrozen = true;
    }

    public void Thaw()
    {
        Signal(Signals.SigCont);
        IsFrozen = false;
    }

    private void Signal(int signal)
    {
        if (!IsRunning)
            throw new InvalidOperationException($"{Name} is not running (exit code {ExitCode})");
        Signals.Send(Pid, signal);
    }

    public async Task<bool> WaitForExitAsync(TimeSpan within)
    {
        if (_process is null)
            return true;
        using var cts = new CancellationTokenSource(within);
        try
        {
            await _process.WaitForExitAsync(cts.Token);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    /// <summary>The last lines of the node's output, for failure messages.</summary>
    public string Tail()
    {
        const int lines = 40;
        static IEnumerable<string> Last(string path) => File.Exists(path) ? File.ReadLines(path).TakeLast(lines) : [];
        return $"--- {StdoutPath} (tail) ---\n{string.Join('\n', Last(StdoutPath))}\n" +
               $"--- {StderrPath} (tail) ---\n{string.Join('\n', Last(StderrPath))}";
    }

    public async ValueTask DisposeAsync()
    {
        if (_process is null)
            return;
        if (!_process.HasExited)
        {
            try
            {
                if (IsFrozen)
                    Signals.Send(_process.Id, Signals.SigCont);
                Signals.Send(_process.Id, Signals.SigKill);
            }
            catch (InvalidOperationException) { /* exited meanwhile */ }
            await WaitForExitAsync(TimeSpan.FromSeconds(10));
        }
        _process.Dispose();
    }
}

/// <summary>The node's readiness endpoint, polled as a load balancer would: the one way tests wait for a node to serve.</summary>
public static class Readiness
{
    public const string Path = "/healthz/ready";

    private static readonly HttpClient Probe = new(new SocketsHttpHandler
    {
        ConnectTimeout = TimeSpan.FromSeconds(2),
        PooledConnectionLifetime = TimeSpan.FromSeconds(2),
    })
    { Timeout = TimeSpan.FromSeconds(3) };

    public static async Task<bool> IsReadyAsync(Uri baseAddress)
    {
        try
        {
            using var response = await Probe.GetAsync(new Uri(baseAddress, Path));
            return response.IsSuccessStatusCode;
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            return false;
        }
    }

    /// <summary>
    /// Polls until <paramref name="name"/> at <paramref name="baseAddress"/> is ready. <paramref name="exited"/> says
    /// why it never will (a process that exited), ending the wait early; <paramref name="log"/> adds its output to a failure.
    /// </summary>
    public static async Task WaitAsync(string name, Uri baseAddress, TimeSpan within, Func<string?>? exited = null,
        Func<string>? log = null)
    {
        var ready = await Eventually.TryAsync(async () =>
        {
            if (exited?.Invoke() is { } reason)
                throw new InvalidOperationException($"{name} {reason} before it was ready.\n{log?.Invoke()}");
            return await IsReadyAsync(baseAddress);
        }, within);
        if (!ready)
            throw new TimeoutException($"{name} not ready within {within.TotalSeconds:0} s.\n{log?.Invoke()}");
    }
}
