using System.Collections.Immutable;
using Akka.Actor;
using Akka.Cluster;
using Akka.Cluster.Sharding;
using Messaging.Actors;
using Messaging.Messages;
using Microsoft.AspNetCore.Http;

namespace Messaging.Node.Admin;

/// <summary>A failed admin operation: the HTTP status and a detail an operator can act on.</summary>
public sealed class AdminProblem(int status, string detail) : Exception(detail)
{
    public int Status { get; } = status;
}

/// <summary>
/// The jobs Petabridge.Cmd does for a cluster, done here against this node's own view: membership from
/// <see cref="Cluster.State"/>, sharding from the real mailbox shard region (a proxy would answer empty).
/// </summary>
/// <param name="shardCount">The mailbox shard count (<c>Messaging:Cluster:ShardCount</c>), to say where a user's mailbox lives.</param>
public sealed class ClusterAdmin(ActorSystem system, AdminOptions options, int shardCount)
{
    private Cluster Cluster => Cluster.Get(system);

    private IActorRef MailboxRegion => ClusterSharding.Get(system).ShardRegion(MailboxHosting.TypeName);

    // ---------------- cluster ----------------

    public ClusterView Show()
    {
        var state = Cluster.State;
        var unreachable = state.Unreachable.Select(m => m.Address).ToHashSet();
        var members = state.Members.Concat(state.Unreachable.Where(u => !state.Members.Contains(u)))
            .OrderBy(m => m.Address, Member.AddressOrdering)
            .Select(m => new MemberView(
                m.Address.ToString(),
                m.Status.ToString(),
                !unreachable.Contains(m.Address),
                [.. m.Roles.Order(StringComparer.Ordinal)],
                m.AppVersion.ToString(),
                m.Address.Equals(state.Leader),
                m.Address.Equals(Cluster.SelfAddress)))
            .ToList();
        return new ClusterView(Cluster.SelfAddress.ToString(), state.Leader?.ToString(), members);
    }

    public async Task<MemberChange> LeaveAsync(string? address, CancellationToken cancellationToken)
    {
        var member = address is null ? Cluster.SelfMember : FindMember(address);
        Cluster.Leave(member.Address);
        if (member.Address.Equals(Cluster.SelfAddress))
            return new MemberChange(member.Address.ToString(), MemberStatus.Leaving.ToString(),
                "this node is leaving: it hands its shards off, then shuts down");
        var status = await WaitForAsync(member.Address,
            s => s is null or MemberStatus.Leaving or MemberStatus.Exiting or MemberStatus.Removed or MemberStatus.Down,
            "to start leaving", cancellationToken);
        return new MemberChange(member.Address.ToString(), status?.ToString() ?? "Removed",
            "the member is leaving: it hands its shards off, then shuts down");
    }

    public async Task<MemberChange> DownAsync(string address, CancellationToken cancellationToken)
    {
        var member = FindMember(address);
        Cluster.Down(member.Address);
        if (member.Address.Equals(Cluster.SelfAddress))
            return new MemberChange(member.Address.ToString(), MemberStatus.Down.ToString(),
                "this node downed itself and shuts down");
        var status = await WaitForAsync(member.Address, s => s is null or MemberStatus.Down or MemberStatus.Removed,
            "to be marked Down", cancellationToken);
        return new MemberChange(member.Address.ToString(), status?.ToString() ?? "Removed",
            "downed: its shards move to the remaining nodes once the leader removes it");
    }

    public async Task<IReadOnlyList<MemberChange>> DownUnreachableAsync(CancellationToken cancellationToken)
    {
        var unreachable = Cluster.State.Unreachable.Select(m => m.Address).ToList();
        foreach (var address in unreachable)
            Cluster.Down(address);
        var changes = new List<MemberChange>();
        foreach (var address in unreachable)
        {
            var status = await WaitForAsync(address, s => s is null or MemberStatus.Down or MemberStatus.Removed,
                "to be marked Down", cancellationToken);
            changes.Add(new MemberChange(address.ToString(), status?.ToString() ?? "Removed", "downed (was unreachable)"));
        }
        return changes;
    }

    private Member FindMember(string text)
    {
        if (!Address.TryParse(text, out var address) || address.Port is null)
            throw new AdminProblem(StatusCodes.Status400BadRequest,
                $"'{text}' is not a cluster address like akka.tcp://{system.Name}@host:4053");
        var state = Cluster.State;
        return state.Members.Concat(state.Unreachable).FirstOrDefault(m => m.Address.Equals(address))
               ?? throw new AdminProblem(StatusCodes.Status404NotFound,
                   $"no cluster member has the address {text}; members: " +
                   string.Join(", ", state.Members.Select(m => m.Address.ToString())));
    }

    /// <summary>Polls this node's view until the member's status (null once removed) satisfies <paramref name="done"/>.</summary>
    private async Task<MemberStatus?> WaitForAsync(
        Address address, Func<MemberStatus?, bool> done, string what, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + options.OperationTimeout;
        while (true)
        {
            var status = Cluster.State.Members.FirstOrDefault(m => m.Address.Equals(address))?.Status;
            if (done(status))
                return status;
            if (DateTime.UtcNow > deadline)
                throw new AdminProblem(StatusCodes.Status504GatewayTimeout,
                    $"{address} did not come {what} within {options.OperationTimeout.TotalSeconds:0.#} s (it is {status}); " +
                    "the command was sent and may still take effect: check with `cluster show`");
            await Task.Delay(50, cancellationToken);
        }
    }

    // ---------------- sharding ----------------

    public async Task<IReadOnlyList<RegionView>> RegionsAsync(CancellationToken cancellationToken)
    {
        var sharding = ClusterSharding.Get(system);
        var views = new List<RegionView>();
        foreach (var typeName in sharding.ShardTypeNames.Order(StringComparer.Ordinal))
        {
            var regions = await AskAsync<CurrentRegions>(sharding.ShardRegion(typeName), GetCurrentRegions.Instance,
                $"the {typeName} shard region", cancellationToken);
            views.Add(new RegionView(typeName,
                [.. regions.Regions.OrderBy(a => a, Member.AddressOrdering).Select(a => a.ToString())]));
        }
        return views;
    }

    public async Task<ShardingStatsView> StatsAsync(CancellationToken cancellationToken)
    {
        var stats = await ClusterStatsAsync(cancellationToken);
        var nodes = stats.Regions
            .OrderBy(r => r.Key, Member.AddressOrdering)
            .Select(r => new NodeShardsView(
                r.Key.ToString(), r.Value.Stats.Count, r.Value.Stats.Values.Sum(),
                [.. r.Value.Failed.Order(StringComparer.Ordinal)]))
            .ToList();
        return new ShardingStatsView(MailboxHosting.TypeName, shardCount,
            nodes.Sum(n => n.Shards), nodes.Sum(n => n.Entities), nodes);
    }

    public async Task<ShardView> ShardAsync(string shardId, CancellationToken cancellationToken)
    {
        if (!int.TryParse(shardId, out var number) || number < 0 || number >= shardCount
            || number.ToString(System.Globalization.CultureInfo.InvariantCulture) != shardId)
            throw new AdminProblem(StatusCodes.Status404NotFound,
                $"no shard '{shardId}': {MailboxHosting.TypeName} shard ids are 0 to {shardCount - 1}");
        var node = await ShardHomeAsync(shardId, cancellationToken)
                   ?? throw new AdminProblem(StatusCodes.Status404NotFound,
                       $"shard {shardId} is not allocated to any node: none of its mailboxes is active");
        var entities = await ShardEntitiesAsync(node, shardId, cancellationToken);
        return new ShardView(shardId, node.ToString(), entities?.Count ?? 0,
            [.. (entities ?? []).Order(StringComparer.Ordinal)]);
    }

    public async Task<MailboxView> MailboxAsync(string userId, bool readStatus, CancellationToken cancellationToken)
    {
        if (!Ids.IsValidUserId(userId))
            throw new AdminProblem(StatusCodes.Status400BadRequest, $"userId must be {Ids.UserIdRule}");
        var shardId = new MailboxMessageExtractor(shardCount).ShardId(userId, new GetMailboxStatus(userId));
        var home = await ShardHomeAsync(shardId, cancellationToken);
        var active = home is not null && (await ShardEntitiesAsync(home, shardId, cancellationToken))?.Contains(userId) == true;
        if (!readStatus)
            return new MailboxView(userId, shardId, home?.ToString(), active, false, null, null, null,
                active ? "active; its sequence number was not read (that would need the mailbox itself)"
                    : "not active: no node holds it in memory; nothing was started");

        var status = await AskAsync<object>(MailboxRegion, new GetMailboxStatus(userId), "the mailbox", cancellationToken);
        if (status is not MailboxStatus mailbox)
            throw new AdminProblem(StatusCodes.Status503ServiceUnavailable,
                $"the mailbox answered {status.GetType().Name} instead of its status");
        return new MailboxView(userId, shardId, mailbox.NodeAddress, active, !active, mailbox.LastSequenceNr,
            mailbox.Conversations, mailbox.PendingDeliveries,
            active ? "active; sequence number read from the running mailbox"
                : "was not active: reading its sequence number started it (it recovered from the journal and passivates when idle)",
            mailbox.ColdConversations, mailbox.LoneChannels);
    }

    /// <summary>A group's members, admins, where it lives and what it still has to deliver (this starts it if it is not active).</summary>
    public async Task<GroupAdminView> GroupAsync(string groupId, CancellationToken cancellationToken)
    {
        if (!Ids.IsValidConversationId(groupId) || !Ids.IsGroup(groupId))
            throw new AdminProblem(StatusCodes.Status400BadRequest, $"a group's conversation id starts with {Ids.GroupPrefix}");
        var groups = ClusterSharding.Get(system).ShardRegion(Messaging.Actors.Groups.GroupHosting.TypeName);
        var status = await AskAsync<object>(groups, new GetGroupStatus(groupId), "the group", cancellationToken);
        if (status is not GroupStatus group)
            throw new AdminProblem(StatusCodes.Status503ServiceUnavailable, $"the group answered {status.GetType().Name} instead of its status");
        if (group.LastSeq == 0)
            throw new AdminProblem(StatusCodes.Status404NotFound, $"there is no group '{groupId}'");
        var shardId = new Messaging.Actors.Groups.GroupMessageExtractor(shardCount).ShardId(groupId, new GetGroupStatus(groupId));
        return new GroupAdminView(groupId, group.Group.Name, shardId, group.NodeAddress, group.LastSeq, group.LastSequenceNr,
            group.Group.Members, group.Group.Admins, group.PendingMessages,
            [.. group.Deliveries.Where(d => d.Pending > 0).Select(d => new MemberDeliveryView(d.UserId, d.ConfirmedSeq, d.Pending))]);
    }

    private async Task<ClusterShardingStats> ClusterStatsAsync(CancellationToken cancellationToken) =>
        await AskAsync<ClusterShardingStats>(MailboxRegion, new GetClusterShardingStats(options.OperationTimeout),
            "the shard regions", cancellationToken, options.OperationTimeout + TimeSpan.FromSeconds(1));

    /// <summary>The node whose region hosts the shard, from every region's own statistics; null when none does.</summary>
    private async Task<Address?> ShardHomeAsync(string shardId, CancellationToken cancellationToken)
    {
        var stats = await ClusterStatsAsync(cancellationToken);
        return stats.Regions.Where(r => r.Value.Stats.ContainsKey(shardId)).Select(r => r.Key).FirstOrDefault();
    }

    /// <summary>Asks the region on <paramref name="node"/> (not the entities: nothing is started) which entities the shard has.</summary>
    private async Task<IImmutableSet<string>?> ShardEntitiesAsync(Address node, string shardId, CancellationToken cancellationToken)
    {
        var local = MailboxRegion;
        var path = new RootActorPath(node) / local.Path.Elements;
        var region = node.Equals(Cluster.SelfAddress) ? (ICanTell)local : system.ActorSelection(path);
        var state = region switch
        {
            IActorRef actor => await AskAsync<CurrentShardRegionState>(actor, GetShardRegionState.Instance,
                $"the shard region on {node}", cancellationToken),
            ActorSelection selection => await AskSelectionAsync(selection, node, cancellationToken),
            _ => throw new InvalidOperationException(),
        };
        return state.Shards.FirstOrDefault(s => s.ShardId == shardId)?.EntityIds;
    }

    private async Task<CurrentShardRegionState> AskSelectionAsync(ActorSelection selection, Address node, CancellationToken cancellationToken)
    {
        try
        {
            return await selection.Ask<CurrentShardRegionState>(GetShardRegionState.Instance, options.OperationTimeout, cancellationToken);
        }
        catch (AskTimeoutException)
        {
            throw Timeout($"the shard region on {node}");
        }
    }

    private async Task<T> AskAsync<T>(IActorRef target, object message, string what, CancellationToken cancellationToken,
        TimeSpan? timeout = null)
    {
        try
        {
            return await target.Ask<T>(message, timeout ?? options.OperationTimeout, cancellationToken);
        }
        catch (AskTimeoutException)
        {
            throw Timeout(what);
        }
    }

    private AdminProblem Timeout(string what) => new(StatusCodes.Status504GatewayTimeout,
        $"{what} did not answer within {options.OperationTimeout.TotalSeconds:0.#} s");
}

public sealed record ClusterView(string Self, string? Leader, IReadOnlyList<MemberView> Members);

public sealed record MemberView(
    string Address, string Status, bool Reachable, IReadOnlyList<string> Roles, string AppVersion, bool IsLeader, bool IsSelf);

public sealed record MemberChange(string Address, string Status, string Note);

public sealed record RegionView(string TypeName, IReadOnlyList<string> Nodes);

public sealed record ShardingStatsView(
    string TypeName, int ShardCount, int HostedShards, int Entities, IReadOnlyList<NodeShardsView> Nodes);

public sealed record NodeShardsView(string Address, int Shards, int Entities, IReadOnlyList<string> FailedShards);

public sealed record ShardView(string ShardId, string Node, int EntityCount, IReadOnlyList<string> Entities);

public sealed record GroupAdminView(
    string ConversationId,
    string Name,
    string ShardId,
    string Node,
    long LastSeq,
    long SequenceNr,
    IReadOnlyList<string> Members,
    IReadOnlyList<string> Admins,
    int PendingMessages,
    IReadOnlyList<MemberDeliveryView> PendingDeliveries);

/// <summary>A member (or former member) with copies the group has not seen confirmed.</summary>
public sealed record MemberDeliveryView(string UserId, long ConfirmedSeq, int Pending);

public sealed record MailboxView(
    string UserId,
    string ShardId,
    string? Node,
    bool Active,
    bool StartedByQuery,
    long? SequenceNr,
    int? Conversations,
    int? PendingDeliveries,
    string Note,
    long? ColdConversations = null,
    int? LoneChannels = null);
