using Messaging.Actors;

namespace Messaging.Node;

/// <summary>
/// <c>Messaging:Persistence</c> beyond one server: the journal spread over several PostgreSQL servers by logical
/// partition (docs/architecture.md, "The journal over several database servers"). Without <c>Servers</c> nothing
/// changes: one server, <c>ConnectionString</c>, or the SQLite file.
/// </summary>
public sealed partial class NodeSettings
{
    public sealed partial class PersistenceSettings
    {
        /// <summary>PostgreSQL servers by name (letters, digits, '-'); each holds the partitions <see cref="Partitions"/> gives it.</summary>
        public Dictionary<string, PersistenceServerSettings> Servers { get; set; } = new(StringComparer.OrdinalIgnoreCase);

        /// <summary>Which server each logical partition is on (<see cref="PartitionMap"/>: <c>0-127=a,128-255=b</c>); required with <see cref="Servers"/>.</summary>
        public string? Partitions { get; set; }
    }

    public sealed class PersistenceServerSettings
    {
        public string? ConnectionString { get; set; }
    }

    /// <summary>
    /// The servers the journal is on: those of <c>Servers</c>, the one holding partition 0 also Akka's default plugins;
    /// or the one of today's keys (unnamed: Akka's default plugin ids, as before).
    /// </summary>
    public IReadOnlyList<JournalServer> JournalServers
    {
        get
        {
            if (Persistence.Servers.Count == 0)
                return [new JournalServer(null, ConnectionString)];
            var home = PartitionMap.Parse(Persistence.Partitions, Persistence.Servers.Keys).ServerByPartition?[0];
            return [.. Persistence.Servers
                .Select(server => new JournalServer(server.Key.ToLowerInvariant(), server.Value.ConnectionString ?? "")
                {
                    IsDefault = string.Equals(server.Key, home, StringComparison.OrdinalIgnoreCase),
                })
                .OrderBy(server => server.Name, StringComparer.Ordinal)];
        }
    }

    /// <summary>Which journal and snapshot store each mailbox and group writes (valid settings only).</summary>
    public JournalPartitions JournalPartitions
    {
        get
        {
            var servers = JournalServers;
            if (Persistence.Servers.Count == 0)
                return JournalPartitions.AllOn(servers[0].Plugins);
            var byName = servers.ToDictionary(server => server.Name!);
            var (map, problems) = PartitionMap.Parse(Persistence.Partitions, byName.Keys);
            return map is null
                ? throw new InvalidOperationException(string.Join("; ", problems))
                : new JournalPartitions([.. map.Select(name => byName[name].Plugins)]);
        }
    }

    private IEnumerable<string> ValidatePersistence()
    {
        if (Persistence.Servers.Count == 0)
        {
            if (Persistence.Provider == PersistenceProvider.PostgreSql && string.IsNullOrWhiteSpace(Persistence.ConnectionString))
                yield return "Messaging:Persistence:ConnectionString is required when Messaging:Persistence:Provider is PostgreSql " +
                    "(or Messaging:Persistence:Servers, for several servers)";
            if (Persistence.Partitions is not null)
                yield return "Messaging:Persistence:Partitions places partitions on Messaging:Persistence:Servers, and there are none " +
                    "(with one server leave it out)";
            yield break;
        }

        if (Persistence.Provider != PersistenceProvider.PostgreSql)
            yield return "Messaging:Persistence:Servers needs Messaging:Persistence:Provider PostgreSql (SQLite is one file for one node)";
        if (!string.IsNullOrWhiteSpace(Persistence.ConnectionString))
            yield return "Messaging:Persistence:ConnectionString and Messaging:Persistence:Servers exclude each other: " +
                "with several servers each has its own Messaging:Persistence:Servers:<name>:ConnectionString";
        foreach (var (name, server) in Persistence.Servers.OrderBy(s => s.Key, StringComparer.Ordinal))
        {
            var key = $"Messaging:Persistence:Servers:{name}";
            if (name.Length > 40 || !name.All(c => char.IsAsciiLetterOrDigit(c) || c == '-') || !char.IsAsciiLetterOrDigit(name[0]))
                yield return $"{key}: '{name}' is not a server name: up to 40 letters, digits and '-', starting with a letter or digit (it names the server's journal plugin)";
            if (string.IsNullOrWhiteSpace(server.ConnectionString))
                yield return $"{key}:ConnectionString is required";
            else if (server.ConnectionString.Contains(Placeholder, StringComparison.OrdinalIgnoreCase))
                yield return $"{key}:ConnectionString still holds the placeholder '{Placeholder}' of k8s/secret.example.yaml: " +
                    "create the Secret with real values (the command is in that file)";
        }
        if (string.IsNullOrWhiteSpace(Persistence.Partitions))
            yield return "Messaging:Persistence:Partitions is required with Messaging:Persistence:Servers: which server each of the " +
                $"{JournalPartitions.Count} partitions is on, e.g. 0-{JournalPartitions.Count / 2 - 1}=a,{JournalPartitions.Count / 2}-{JournalPartitions.Count - 1}=b";
        else
            foreach (var problem in PartitionMap.Parse(Persistence.Partitions, Persistence.Servers.Keys).Problems)
                yield return problem;
    }
}
