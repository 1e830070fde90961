using Akka.Cluster.Sharding;
using Messaging.Messages;

namespace Messaging.Actors;

/// <summary>Routes every <see cref="IMailboxCommand"/> to its user's mailbox; the shard count never changes.</summary>
public sealed class MailboxMessageExtractor(int shardCount) : HashCodeMessageExtractor(shardCount)
{
    public override string? EntityId(object message) => message switch
    {
        IMailboxCommand command => command.MailboxId,
        _ => null,
    };
}
