using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Reflection;
using System.Runtime.InteropServices;

namespace Messaging.Cluster.Tests.Harness;

/// <summary>Where the repository and the built node are.</summary>
public static class Paths
{
    /// <summary>The node built with the same configuration as these tests (MESSAGING_NODE_DLL overrides).</summary>
    public static string NodeDll => Repository.NodeDll(
        typeof(Paths).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration ?? "Debug");

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
