namespace Messaging.Node.Admin;

/// <summary>Plain aligned text for people; <c>--json</c> is the form for scripts.</summary>
internal static class Tables
{
    public static void Cluster(ClusterView view, TextWriter o)
    {
        o.WriteLine($"Seen from {view.Self}; leader {view.Leader ?? "(none)"}");
        Write(o, ["ADDRESS", "STATUS", "REACHABLE", "APP-VERSION", "ROLES", "LEADER", "SELF"],
            view.Members.Select(m => new[]
            {
                m.Address, m.Status, m.Reachable ? "yes" : "NO", m.AppVersion,
                m.Roles.Count == 0 ? "-" : string.Join(',', m.Roles), m.IsLeader ? "leader" : "", m.IsSelf ? "*" : "",
            }));
        var up = view.Members.Count(m => m.Status == "Up");
        var unreachable = view.Members.Count(m => !m.Reachable);
        o.WriteLine($"{view.Members.Count} members, {up} Up, {unreachable} unreachable");
    }

    public static void Change(MemberChange change, TextWriter o) =>
        o.WriteLine($"{change.Address}: {change.Status} ({change.Note})");

    public static void Changes(List<MemberChange> changes, TextWriter o)
    {
        if (changes.Count == 0)
        {
            o.WriteLine("no member is unreachable: nothing downed");
            return;
        }
        foreach (var change in changes)
            Change(change, o);
    }

    public static void Regions(List<RegionView> regions, TextWriter o) =>
        Write(o, ["TYPE", "NODES", "ADDRESSES"],
            regions.Select(r => new[] { r.TypeName, r.Nodes.Count.ToString(), string.Join(' ', r.Nodes) }));

    public static void Stats(ShardingStatsView stats, TextWriter o)
    {
        o.WriteLine($"{stats.TypeName}: {stats.HostedShards} of {stats.ShardCount} shards allocated, {stats.Entities} active mailboxes");
        Write(o, ["NODE", "SHARDS", "MAILBOXES", "FAILED"],
            stats.Nodes.Select(n => new[]
            {
                n.Address, n.Shards.ToString(), n.Entities.ToString(),
                n.FailedShards.Count == 0 ? "" : string.Join(',', n.FailedShards),
            }));
    }

    public static void Shard(ShardView shard, TextWriter o)
    {
        o.WriteLine($"shard {shard.ShardId} on {shard.Node}: {shard.EntityCount} active mailboxes");
        foreach (var entity in shard.Entities)
            o.WriteLine($"  {entity}");
    }

    public static void Mailbox(MailboxView m, TextWriter o)
    {
        Write(o, ["FIELD", "VALUE"],
        [
            ["user", m.UserId],
            ["shard", m.ShardId],
            ["node", m.Node ?? "(shard not allocated)"],
            ["active", m.Active ? "yes" : "no"],
            ["sequence-nr", m.SequenceNr?.ToString() ?? "(not read)"],
            ["conversations", m.Conversations?.ToString() ?? "(not read)"],
            ["cold-conversations", m.ColdConversations?.ToString() ?? "(not read)"],
            ["lone-channels", m.LoneChannels?.ToString() ?? "(not read)"],
            ["pending-deliveries", m.PendingDeliveries?.ToString() ?? "(not read)"],
            ["started-by-query", m.StartedByQuery ? "yes" : "no"],
        ]);
        o.WriteLine(m.Note);
    }

    public static void Group(GroupAdminView g, TextWriter o)
    {
        Write(o, ["FIELD", "VALUE"],
        [
            ["group", g.ConversationId],
            ["name", g.Name],
            ["shard", g.ShardId],
            ["node", g.Node],
            ["last-seq", g.LastSeq.ToString()],
            ["sequence-nr", g.SequenceNr.ToString()],
            ["members", $"{g.Members.Count}: {string.Join(", ", g.Members)}"],
            ["admins", string.Join(", ", g.Admins)],
            ["pending-messages", g.PendingMessages.ToString()],
        ]);
        if (g.PendingDeliveries.Count == 0)
        {
            o.WriteLine("every member has confirmed every message");
            return;
        }
        Write(o, ["MEMBER", "CONFIRMED-SEQ", "PENDING"],
            g.PendingDeliveries.Select(d => new[] { d.UserId, d.ConfirmedSeq.ToString(), d.Pending.ToString() }));
    }

    private static void Write(TextWriter o, string[] header, IEnumerable<string[]> rows)
    {
        var all = rows.Prepend(header).ToList();
        var widths = header.Select((_, i) => all.Max(r => r[i].Length)).ToArray();
        foreach (var row in all)
            o.WriteLine(string.Join("  ", row.Select((cell, i) => i == row.Length - 1 ? cell : cell.PadRight(widths[i]))).TrimEnd());
    }
}
