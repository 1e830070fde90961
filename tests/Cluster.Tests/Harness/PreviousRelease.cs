using System.Diagnostics;

namespace Messaging.Cluster.Tests.Harness;

/// <summary>
/// The previous release, built from git beside the current one: a detached `git worktree` of the commit
/// MESSAGING_UPGRADE_FROM names (default <see cref="DefaultCommit"/>) in a temp directory, and `dotnet build -c Debug`
/// of its src/Node. The worktree is kept (one per commit), so a second run reuses the build.
/// </summary>
public static class PreviousRelease
{
    /// <summary>Release 1.1.0: receipts, no groups (the commit before groups landed).</summary>
    public const string DefaultCommit = "bbebbfb^";
    public const string DefaultAppVersion = "1.1.0";

    public static string Commit => Setting("MESSAGING_UPGRADE_FROM") ?? DefaultCommit;

    /// <summary>The app-version the previous release's nodes announce (MESSAGING_UPGRADE_FROM_VERSION).</summary>
    public static string AppVersion => Setting("MESSAGING_UPGRADE_FROM_VERSION") ?? DefaultAppVersion;

    public static async Task<NodeBuild> BuildAsync(Action<string> log)
    {
        var root = Repository.Root;
        var sha = (await Command.RunAsync("git", ["-C", root, "rev-parse", "--verify", $"{Commit}^{{commit}}"], TimeSpan.FromSeconds(30))).Trim();
        var directory = Path.Combine(Path.GetTempPath(), "messaging-previous-release", sha);
        if (!File.Exists(Path.Combine(directory, "Messaging.sln")))
        {
            // A directory left half made (or a worktree git still lists) is removed first.
            await Command.ExitAndOutputAsync("git", ["-C", root, "worktree", "remove", "--force", directory], TimeSpan.FromSeconds(60));
            if (Directory.Exists(directory))
                Directory.Delete(directory, recursive: true);
            await Command.RunAsync("git", ["-C", root, "worktree", "prune"], TimeSpan.FromSeconds(30));
            log($"git worktree add {directory} {sha}");
            await Command.RunAsync("git", ["-C", root, "worktree", "add", "--detach", directory, sha], TimeSpan.FromMinutes(2));
        }
        var dll = Path.Combine(directory, "src", "Node", "bin", "Debug", "net10.0", "Messaging.Node.dll");
        log($"dotnet build -c Debug {Commit} ({sha[..10]}) src/Node");
        // Up to date after the first time: msbuild's incremental build makes a rerun take seconds.
        await BuildAsync(Path.Combine(directory, "src", "Node"));
        if (!File.Exists(dll))
            throw new FileNotFoundException($"the build of {sha} made no {dll}", dll);
        return new NodeBuild($"previous {sha[..10]}", dll, AppVersion);
    }

    /// <summary>`dotnet build`, without the MSBuild variables a `dotnet test` run may pass down (they point at its own build).</summary>
    private static async Task BuildAsync(string project)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in new[] { "build", "-c", "Debug", "-nologo", "-v", "q", project })
            psi.ArgumentList.Add(arg);
        foreach (var key in psi.Environment.Keys.Where(k => k.StartsWith("MSBuild", StringComparison.OrdinalIgnoreCase)).ToList())
            psi.Environment.Remove(key);
        using var process = Process.Start(psi) ?? throw new InvalidOperationException("could not start dotnet build");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(10));
        await process.WaitForExitAsync(timeout.Token);
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"dotnet build {project} exited with {process.ExitCode}:\n{await stdout}{await stderr}");
    }

    private static string? Setting(string name) =>
        Environment.GetEnvironmentVariable(name) is { Length: > 0 } value ? value : null;
}
