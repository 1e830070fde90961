namespace Messaging.Messages;

/// <summary>
/// Marks every type that crosses the network or enters the journal. Each one is bound to
/// <see cref="Serialization.MessagingSerializer"/>; a test fails if one resolves to any other serializer.
/// </summary>
public interface IMessagingProtocol;

/// <summary>A message addressed to one user's mailbox; <see cref="MailboxId"/> routes it through sharding.</summary>
public interface IMailboxCommand : IMessagingProtocol
{
    string MailboxId { get; }
}

/// <summary>An event in a mailbox's journal.</summary>
public interface IMailboxEvent : IMessagingProtocol;
