using System.Collections.Immutable;

namespace Messaging.Messages;

/// <summary>
/// A message to one delivery index: the entities (mailboxes or groups) of a slice of their shard space that have
/// copies their recipients did not confirm in time. <see cref="IndexId"/> routes it through sharding.
/// </summary>
public interface IDeliveryIndexCommand : IMessagingProtocol
{
    string IndexId { get; }
}

public interface IDeliveryIndexEvent : IMessagingProtocol;

/// <summary>
/// An entity has copies its recipients have not confirmed for a redelivery interval (or stops with copies still
/// unconfirmed): the index keeps waking it until it reports <paramref name="Pending"/> false.
/// </summary>
public sealed record MarkPending(string IndexId, string EntityId, bool Pending) : IDeliveryIndexCommand;

/// <summary>For operators and tests: which entities an index is keeping awake.</summary>
public sealed record GetPendingDeliveries(string IndexId) : IDeliveryIndexCommand;

public sealed record PendingDeliveries(string IndexId, ImmutableArray<string> EntityIds) : IMessagingProtocol
{
    /// <summary>Never a default array (protobuf reads "absent" as empty, and so does everyone else).</summary>
    public ImmutableArray<string> EntityIds { get; init; } = EntityIds.IsDefault ? [] : EntityIds;
}

/// <summary>
/// From a delivery index to a mailbox or group it keeps awake: start (recovering from the journal) if not running,
/// resend what is unconfirmed, and answer <see cref="MarkPending"/> false if nothing is. Routed by the entity's id
/// through the shard region of its type.
/// </summary>
public sealed record WakeForDelivery(string EntityId) : IMailboxCommand, IGroupCommand
{
    public string MailboxId => EntityId;

    public string GroupId => EntityId;
}

/// <summary>An index took an entity in (<paramref name="Pending"/>) or let it go.</summary>
public sealed record PendingChanged(string EntityId, bool Pending) : IDeliveryIndexEvent;

/// <summary>An index's whole state: the entities it keeps awake.</summary>
public sealed record DeliveryIndexSnapshot(ImmutableArray<string> EntityIds) : IMessagingProtocol
{
    /// <summary>Never a default array (protobuf reads "absent" as empty, and so does everyone else).</summary>
    public ImmutableArray<string> EntityIds { get; init; } = EntityIds.IsDefault ? [] : EntityIds;
}
