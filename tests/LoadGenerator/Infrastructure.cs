using System.Reflection;

namespace Messaging.LoadGenerator;

public static class Paths
{
    public static string Configuration =>
        typeof(Paths).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration ?? "Debug";

    /// <summary>The node built with this tool's configuration (Release under the documented command).</summary>
    public static string NodeDll => Repository.NodeDll(Configuration);
}
