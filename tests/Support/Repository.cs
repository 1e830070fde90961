namespace Messaging.Testing;

/// <summary>Where the repository and the built node are, for the tools that run the node as a process.</summary>
public static class Repository
{
    public static string Root
    {
        get
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
                if (File.Exists(Path.Combine(dir.FullName, "Messaging.sln")))
                    return dir.FullName;
            throw new InvalidOperationException($"Messaging.sln not found above {AppContext.BaseDirectory}");
        }
    }

    /// <summary>The node built in <paramref name="configuration"/> (Debug, Release); MESSAGING_NODE_DLL overrides.</summary>
    public static string NodeDll(string configuration)
    {
        var overridden = Environment.GetEnvironmentVariable("MESSAGING_NODE_DLL");
        if (!string.IsNullOrEmpty(overridden))
            return overridden;
        var dll = Path.Combine(Root, "src", "Node", "bin", configuration, "net10.0", "Messaging.Node.dll");
        if (!File.Exists(dll))
            throw new FileNotFoundException($"The node is not built: {dll} is missing (dotnet build -c {configuration} src/Node).", dll);
        return dll;
    }
}
