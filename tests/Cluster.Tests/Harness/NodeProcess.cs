using System.Diagnostics;

namespace Messaging.Cluster.Tests.Harness;

/// <summary>
/// One node process (`dotnet Messaging.Node.dll`) on loopback, configured only through the environment variables the
/// README documents. Its stdout and stderr go straight to files (node-N.K.out/.err, K counting incarnations), so they
/// survive a hung test and can be read after the fact.
/// </summary>
public sealed class NodeProcess : IAsyncDisposable
{
    private static readonly HttpClient Probe = new(new SocketsHttpHandler
    {
        ConnectTimeout = TimeSpan.FromSeconds(2),
        PooledConnectionLifetime = TimeSpan.FromSeconds(2),
    })
    { Timeout = TimeSpan.FromSeconds(3) };

    private readonly IReadOnlyDictionary<string, string> _environment;
    private Process? _process;

    public NodeProcess(string name, int httpPort, int remotingPort, string directory,
        IReadOnlyDictionary<string, string> environment, int incarnation = 1)
    {
        Name = name;
        HttpPort = httpPort;
        RemotingPort = remotingPort;
        Directory = directory;
        Incarnation = incarnation;
        _environment = environment;
    }

    public string Name { get; }
    public int HttpPort { get; }
    public int RemotingPort { get; }
    public string Directory { get; }
    public int Incarnation { get; }
    public Uri HttpUri => new($"http://127.0.0.1:{HttpPort}");
    public int AdminPort { get; init; }
    public Uri AdminUri => new($"http://127.0.0.1:{AdminPort}");
    public string AkkaAddress => $"akka.tcp://messaging@127.0.0.1:{RemotingPort}";
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
        var psi = new ProcessStartInfo("/bin/sh") { UseShellExecute = false };
        // exec: the pid we signal is the node's own, as a container runtime's would be; setsid: its own session, so
        // signals meant for the test runner's terminal or process group never reach it.
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add($"exec setsid dotnet \"$MESSAGING_NODE_DLL_PATH\" --urls {HttpUri.ToString().TrimEnd('/')} >\"$MESSAGING_NODE_OUT\" 2>\"$MESSAGING_NODE_ERR\"");
        psi.Environment["MESSAGING_NODE_DLL_PATH"] = Paths.NodeDll;
        psi.Environment["MESSAGING_NODE_OUT"] = StdoutPath;
        psi.Environment["MESSAGING_NODE_ERR"] = StderrPath;
        foreach (var (key, value) in _environment)
            psi.Environment[key] = value;
        _process = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {Name}");
    }

    public async Task<bool> IsReadyAsync()
    {
        try
        {
            using var response = await Probe.GetAsync(new Uri(HttpUri, "/healthz/ready"));
            return response.IsSuccessStatusCode;
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            return false;
        }
    }

    public async Task WaitReadyAsync(TimeSpan within)
    {
        var ready = await Eventually.TryAsync(async () =>
        {
            if (_process is { HasExited: true })
                throw new InvalidOperationException($"{Name} exited with {_process.ExitCode} before it was ready.\n{Tail()}");
            return await IsReadyAsync();
        }, within, TimeSpan.FromMilliseconds(250));
        if (!ready)
            throw new TimeoutException($"{Name} not ready within {within.TotalSeconds:0} s.\n{Tail()}");
        HasBeenReady = true;
    }

    /// <summary>SIGTERM, as Kubernetes stops a pod: the node should leave the cluster and hand its shards off.</summary>
    public void Terminate() => Signal(Signals.SigTerm);

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
    public string Tail(int lines = 40)
    {
        static IEnumerable<string> Last(string path, int n) =>
            File.Exists(path) ? File.ReadLines(path).TakeLast(n) : [];
        return $"--- {StdoutPath} (tail) ---\n{string.Join('\n', Last(StdoutPath, lines))}\n" +
               $"--- {StderrPath} (tail) ---\n{string.Join('\n', Last(StderrPath, lines))}";
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
