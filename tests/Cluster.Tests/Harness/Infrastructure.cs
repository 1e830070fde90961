using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Reflection;
using System.Runtime.InteropServices;

namespace Messaging.Cluster.Tests.Harness;

/// <summary>Free loopback ports; never hands out the same one twice within this process.</summary>
public static class FreePorts
{
    private static readonly HashSet<int> Given = [];

    public static int Next()
    {
        lock (Given)
        {
            for (var attempt = 0; attempt < 100; attempt++)
            {
                using var listener = new TcpListener(IPAddress.Loopback, 0);
                listener.Start();
                var port = ((IPEndPoint)listener.LocalEndpoint).Port;
                listener.Stop();
                if (Given.Add(port))
                    return port;
            }
            throw new InvalidOperationException("no free loopback port found");
        }
    }
}

/// <summary>POSIX signals, sent as `kill -SIG pid` would (Kubernetes stops a pod with SIGTERM, then SIGKILL).</summary>
public static class Signals
{
    public const int SigKill = 9;
    public const int SigTerm = 15;
    public const int SigCont = 18;
    public const int SigStop = 19;

    [DllImport("libc", SetLastError = true, EntryPoint = "kill")]
    private static extern int SysKill(int pid, int signal);

    public static void Send(int pid, int signal)
    {
        if (SysKill(pid, signal) != 0)
            throw new InvalidOperationException($"kill -{signal} {pid} failed: errno {Marshal.GetLastPInvokeError()}");
    }
}

/// <summary>Runs a short command to completion and returns its output, failing with that output when it fails.</summary>
public static class Command
{
    public static async Task<string> RunAsync(string file, IEnumerable<string> args, TimeSpan timeout, bool check = true)
    {
        var psi = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in args)
            psi.ArgumentList.Add(arg);
        using var process = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {file}");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', psi.ArgumentList)} did not finish within {timeout}");
        }
        var output = await stdout + await stderr;
        if (check && process.ExitCode != 0)
            throw new InvalidOperationException(
                $"{file} {string.Join(' ', psi.ArgumentList)} exited with {process.ExitCode}:\n{output}");
        return output;
    }
}

/// <summary>Where the repository and the built node are.</summary>
public static class Paths
{
    public static string RepositoryRoot
    {
        get
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
                if (File.Exists(Path.Combine(dir.FullName, "Messaging.sln")))
                    return dir.FullName;
            throw new InvalidOperationException($"Messaging.sln not found above {AppContext.BaseDirectory}");
        }
    }

    /// <summary>The node built with the same configuration as these tests (MESSAGING_NODE_DLL overrides).</summary>
    public static string NodeDll
    {
        get
        {
            var overridden = Environment.GetEnvironmentVariable("MESSAGING_NODE_DLL");
            if (!string.IsNullOrEmpty(overridden))
                return overridden;
            var configuration = typeof(Paths).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration ?? "Debug";
            var dll = Path.Combine(RepositoryRoot, "src", "Node", "bin", configuration, "net10.0", "Messaging.Node.dll");
            if (!File.Exists(dll))
                throw new FileNotFoundException($"The node is not built: {dll} is missing (dotnet build Messaging.sln).", dll);
            return dll;
        }
    }

    /// <summary>A fresh directory for one test run's logs, data and summary; kept afterwards for diagnosis.</summary>
    public static string NewRunDirectory(string name)
    {
        var root = Environment.GetEnvironmentVariable("MESSAGING_TEST_DIR") ?? Path.Combine(Path.GetTempPath(), "messaging-cluster-tests");
        var dir = Path.Combine(root, $"{DateTime.UtcNow:yyyyMMdd-HHmmss}-{name}-{Guid.NewGuid().ToString("N")[..6]}");
        Directory.CreateDirectory(dir);
        return dir;
    }
}

/// <summary>Polls a condition until it holds or a deadline passes: the harness's only way of waiting.</summary>
public static class Eventually
{
    public static async Task<bool> TryAsync(Func<Task<bool>> condition, TimeSpan within, TimeSpan? every = null,
        CancellationToken cancel = default)
    {
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            if (await condition())
                return true;
            if (deadline.Elapsed >= within)
                return false;
            await Task.Delay(every ?? TimeSpan.FromMilliseconds(200), cancel);
        }
    }

    public static async Task AssertAsync(Func<Task<bool>> condition, TimeSpan within, Func<string> whatFailed,
        TimeSpan? every = null, CancellationToken cancel = default)
    {
        if (!await TryAsync(condition, within, every, cancel))
            throw new TimeoutException($"Not within {within.TotalSeconds:0.#} s: {whatFailed()}");
    }
}
