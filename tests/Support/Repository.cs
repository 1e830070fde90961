using System.Reflection;

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

    /// <summary>Debug or Release: whatever this library (and so the tests or tool using it) was built as.</summary>
    public static string Configuration =>
        typeof(Repository).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration ?? "Debug";

    /// <summary>The node built in the same <see cref="Configuration"/>; MESSAGING_NODE_DLL overrides.</summary>
    public static string NodeDll
    {
        get
        {
            var overridden = Environment.GetEnvironmentVariable("MESSAGING_NODE_DLL");
            if (!string.IsNullOrEmpty(overridden))
                return overridden;
            var dll = Path.Combine(Root, "src", "Node", "bin", Configuration, "net10.0", "Messaging.Node.dll");
            if (!File.Exists(dll))
                throw new FileNotFoundException($"The node is not built: {dll} is missing (dotnet build -c {Configuration} src/Node).", dll);
            return dll;
        }
    }
}
