using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Reflection;

namespace Messaging.LoadGenerator;

// FreePorts, Command and Paths follow tests/Cluster.Tests/Harness/Infrastructure.cs (branch `cluster`), copied
// rather than referenced because that file lives in a test project; keep the two in step.

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
            throw new InvalidOperationException($"{file} {string.Join(' ', psi.ArgumentList)} exited with {process.ExitCode}:\n{output}");
        return output;
    }
}

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

    public static string Configuration =>
        typeof(Paths).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration ?? "Debug";

    /// <summary>The node built with this tool's configuration (Release under the documented command); MESSAGING_NODE_DLL overrides.</summary>
    public static string NodeDll
    {
        get
        {
            var overridden = Environment.GetEnvironmentVariable("MESSAGING_NODE_DLL");
            if (!string.IsNullOrEmpty(overridden))
                return overridden;
            var dll = Path.Combine(RepositoryRoot, "src", "Node", "bin", Configuration, "net10.0", "Messaging.Node.dll");
            if (!File.Exists(dll))
                throw new FileNotFoundException($"The node is not built: {dll} is missing (dotnet build -c {Configuration} src/Node).", dll);
            return dll;
        }
    }
}
