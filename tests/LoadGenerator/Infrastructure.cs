using System.Reflection;

namespace Messaging.LoadGenerator;

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
