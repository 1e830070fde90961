namespace Messaging.Cluster.Tests.Harness;

/// <summary>
/// A node whose wall clock is wrong, made with Debian's libfaketime (tests/prepare.sh installs it): the library is
/// preloaded into the node's process and adds an offset to what the process reads as the time of day.
/// </summary>
public static class Faketime
{
    /// <summary>The preloaded library: Debian puts it under the architecture's lib directory.</summary>
    public static string Library =>
        new[] { "/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu" }
            .Select(dir => Path.Combine(dir, "faketime", "libfaketime.so.1"))
            .FirstOrDefault(File.Exists)
        ?? throw new InvalidOperationException("libfaketime is not installed (run tests/prepare.sh, or apt-get install libfaketime)");

    /// <summary>
    /// The environment that runs a node with its wall clock <paramref name="offset"/> off (libfaketime's relative form:
    /// "+1h", "-1h", "+90s"). Only the wall clock: FAKETIME_DONT_FAKE_MONOTONIC keeps CLOCK_MONOTONIC real, as it is on
    /// a machine whose clock was set wrong (settimeofday and NTP steps do not move it). Without it, libfaketime serves
    /// the faked time of day as the monotonic clock too (seen here: Stopwatch reads ~1.8e9 s instead of the uptime), which
    /// no real machine does, and the pause guard, Akka's scheduler and failure detector all run on that clock.
    /// </summary>
    public static IReadOnlyDictionary<string, string> Offset(string offset) => new Dictionary<string, string>
    {
        ["LD_PRELOAD"] = Library,
        ["FAKETIME"] = offset,
        ["FAKETIME_DONT_FAKE_MONOTONIC"] = "1",
    };
}
