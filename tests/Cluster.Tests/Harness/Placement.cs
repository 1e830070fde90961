using Npgsql;

namespace Messaging.Cluster.Tests.Harness;

/// <summary>
/// Where the journal put each entity, read from every server in SQL: each entity's events, snapshots and writer claim
/// on the server its partition names and on no other, anything else persistent on the default server (partition 0's),
/// and every server with a real share. The partitions are computed by PostgreSQL from the stored ids (the first byte
/// of SHA-256: the node's hash, worked out independently).
/// </summary>
public static class Placement
{
    public sealed record Result(IReadOnlyList<string> Violations, string Summary);

    /// <param name="entities">Persistence ids that must have events somewhere (every user and group of the load).</param>
    public static async Task<Result> CheckAsync(DatabaseLayout layout, IReadOnlyCollection<string> entities)
    {
        var violations = new List<string>();
        var holders = new Dictionary<string, List<int>>(StringComparer.Ordinal); // persistence id -> servers with its events
        var summary = new List<string>();
        for (var server = 0; server < layout.Servers.Count; server++)
        {
            var name = DatabaseLayout.NameOf(server);
            var counts = new Dictionary<string, (int Entities, long Rows)>();
            var others = 0;
            foreach (var (table, persistenceId, partition, rows) in await RowsAsync(layout.Servers[server]))
            {
                // A mailbox or group by its partition; anything else (delivery indexes, sharding's remembered
                // entities) on the default server, the one holding partition 0.
                var entity = persistenceId.StartsWith("mailbox-", StringComparison.Ordinal) || persistenceId.StartsWith("group-", StringComparison.Ordinal);
                var home = layout.ServerIndexOf(entity ? partition : 0);
                if (home != server)
                    violations.Add($"{rows} {table} row(s) of {persistenceId} (partition {partition}) on {name}: " +
                        (entity ? $"its partition is on {DatabaseLayout.NameOf(home)}" : $"the default server is {DatabaseLayout.NameOf(home)}"));
                else if (!entity)
                    others++;
                if (table == "journal")
                    (holders.TryGetValue(persistenceId, out var list) ? list : holders[persistenceId] = []).Add(server);
                var (e, r) = counts.GetValueOrDefault(table);
                counts[table] = (e + 1, r + rows);
            }
            summary.Add($"{name}: " + string.Join(", ", counts.OrderBy(c => c.Key).Select(c => $"{c.Key} {c.Value.Rows} rows of {c.Value.Entities} ids")) +
                (others > 0 ? $"; {others} of these ids no mailbox or group" : ""));
        }

        foreach (var entity in entities)
        {
            if (!holders.TryGetValue(entity, out var servers))
                violations.Add($"{entity} has no events on any server");
            else if (servers.Count > 1)
                violations.Add($"{entity} has events on {string.Join(" and ", servers.Select(DatabaseLayout.NameOf))}");
        }
        // Each server holds at least half an even share of the entities: the map spreads them, not one server.
        var expected = entities.Where(holders.ContainsKey).ToList();
        for (var server = 0; server < layout.Servers.Count; server++)
        {
            var held = expected.Count(e => holders[e].Contains(server));
            if (held * layout.Servers.Count * 2 < expected.Count)
                violations.Add($"{DatabaseLayout.NameOf(server)} holds {held} of {expected.Count} entities: not a real share");
        }
        return new Result(violations, string.Join("; ", summary));
    }

    private static async Task<List<(string Table, string PersistenceId, int Partition, long Rows)>> RowsAsync(PostgresServer server)
    {
        await using var connection = new NpgsqlConnection(server.ConnectionString);
        await connection.OpenAsync();
        // A server whose snapshot store was never used has no snapshot table yet.
        var present = new List<string>();
        foreach (var (label, table) in new[] { ("journal", "journal"), ("snapshot", "snapshot"), ("claim", "journal_writer") })
        {
            await using var exists = new NpgsqlCommand($"SELECT to_regclass('{table}') IS NOT NULL", connection);
            if (await exists.ExecuteScalarAsync() is true)
                present.Add($"SELECT '{label}' AS t, persistence_id, count(*) AS n FROM {table} GROUP BY persistence_id");
        }
        if (present.Count == 0)
            return [];
        await using var command = new NpgsqlCommand(
            "SELECT t, persistence_id, get_byte(sha256(convert_to(persistence_id, 'UTF8')), 0), n FROM (" +
            string.Join(" UNION ALL ", present) + ") AS placed", connection);
        await using var reader = await command.ExecuteReaderAsync();
        var rows = new List<(string, string, int, long)>();
        while (await reader.ReadAsync())
            rows.Add((reader.GetString(0), reader.GetString(1), reader.GetInt32(2), reader.GetInt64(3)));
        return rows;
    }
}
