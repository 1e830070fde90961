using System.Collections.Immutable;
using System.Runtime.Serialization;
using Akka.Actor;
using Akka.Serialization;
using Google.Protobuf;
using Google.Protobuf.Collections;
using P = Messaging.Messages.Serialization.Proto;

namespace Messaging.Messages.Serialization;

/// <summary>
/// Protobuf serializer for every <see cref="IMessagingProtocol"/> type: on the wire between nodes, in the journal
/// and in the snapshot store. Records are mapped to the generated messages in Proto/*.proto by hand, so a contract can
/// be renamed or reshaped without touching the stored bytes.
/// </summary>
/// <remarks>
/// Events and snapshots are history: a manifest below, once written to a journal, is never changed or reused, and
/// neither is a field number in the .proto files. A new shape gets new fields (or a new manifest) and old bytes stay
/// readable forever. Replies and commands are only on the wire, but keep the same rule so that a rolling upgrade
/// works.
/// </remarks>
public sealed class MessagingSerializer : SerializerWithStringManifest
{
    public const int SerializerId = 771;

    // commands
    internal const string SendMessageManifest = "SM";
    internal const string GetConversationsManifest = "GC";
    internal const string GetThreadManifest = "GT";
    internal const string GetMailboxStatusManifest = "GMS";
    internal const string DeliverMessageManifest = "DM";
    internal const string ConfirmDeliveryManifest = "CD";
    internal const string StopMailboxManifest = "Stp";

    // replies
    internal const string SendResultManifest = "SR";
    internal const string ConversationsPageManifest = "CP";
    internal const string ThreadPageManifest = "TP";
    internal const string ConversationNotFoundManifest = "CNF";
    internal const string MailboxUnavailableManifest = "MU";
    internal const string MailboxStatusManifest = "MS";

    // events and snapshots: journal history, never change these
    internal const string MessageSentManifest = "MSt";
    internal const string MessageReceivedManifest = "MRc";
    internal const string DeliveriesConfirmedManifest = "DC";
    // The PostgreSQL writer fence (src/Node/JournalFence.cs) matches this manifest: it must never change.
    public const string WriterClaimedManifest = "WCl";
    internal const string StaleWritesResolvedManifest = "SWR";
    internal const string MailboxSnapshotManifest = "MSn";

    public MessagingSerializer(ExtendedActorSystem system) : base(system)
    {
    }

    public override int Identifier => SerializerId;

    // Hot types first: a type pattern switch tests the cases in order.
    public override string Manifest(object o) => o switch
    {
        SendMessage => SendMessageManifest,
        DeliverMessage => DeliverMessageManifest,
        ConfirmDelivery => ConfirmDeliveryManifest,
        SendResult => SendResultManifest,
        MessageSent => MessageSentManifest,
        MessageReceived => MessageReceivedManifest,
        DeliveriesConfirmed => DeliveriesConfirmedManifest,
        WriterClaimed => WriterClaimedManifest,
        StaleWritesResolved => StaleWritesResolvedManifest,
        GetConversations => GetConversationsManifest,
        GetThread => GetThreadManifest,
        GetMailboxStatus => GetMailboxStatusManifest,
        StopMailbox => StopMailboxManifest,
        ConversationsPage => ConversationsPageManifest,
        ThreadPage => ThreadPageManifest,
        ConversationNotFound => ConversationNotFoundManifest,
        MailboxUnavailable => MailboxUnavailableManifest,
        MailboxStatus => MailboxStatusManifest,
        MailboxSnapshot => MailboxSnapshotManifest,
        _ => throw Unsupported(o),
    };

    public override byte[] ToBinary(object obj) => obj switch
    {
        SendMessage m => ToProto(m).ToByteArray(),
        DeliverMessage m => ToProto(m).ToByteArray(),
        ConfirmDelivery m => ToProto(m).ToByteArray(),
        SendResult m => ToProto(m).ToByteArray(),
        MessageSent m => ToProto(m).ToByteArray(),
        MessageReceived m => ToProto(m).ToByteArray(),
        DeliveriesConfirmed m => ToProto(m).ToByteArray(),
        WriterClaimed m => new P.WriterClaimed { Node = m.Node, ClaimedAt = m.ClaimedAt }.ToByteArray(),
        StaleWritesResolved m => new P.StaleWritesResolved { UpToJournalSeq = m.UpToJournalSeq }.ToByteArray(),
        GetConversations m => ToProto(m).ToByteArray(),
        GetThread m => ToProto(m).ToByteArray(),
        GetMailboxStatus m => new P.GetMailboxStatus { UserId = m.UserId }.ToByteArray(),
        StopMailbox => [],
        ConversationsPage m => ToProto(m).ToByteArray(),
        ThreadPage m => ToProto(m).ToByteArray(),
        ConversationNotFound m => new P.ConversationNotFound { ConversationId = m.ConversationId }.ToByteArray(),
        MailboxUnavailable m => new P.MailboxUnavailable { Reason = m.Reason }.ToByteArray(),
        MailboxStatus m => ToProto(m).ToByteArray(),
        MailboxSnapshot m => ToProto(m).ToByteArray(),
        _ => throw Unsupported(obj),
    };

    public override object FromBinary(byte[] bytes, string manifest) => manifest switch
    {
        SendMessageManifest => FromProto(P.SendMessage.Parser.ParseFrom(bytes)),
        DeliverMessageManifest => FromProto(P.DeliverMessage.Parser.ParseFrom(bytes)),
        ConfirmDeliveryManifest => FromProto(P.ConfirmDelivery.Parser.ParseFrom(bytes)),
        SendResultManifest => FromProto(P.SendResult.Parser.ParseFrom(bytes)),
        MessageSentManifest => FromProto(P.MessageSent.Parser.ParseFrom(bytes)),
        MessageReceivedManifest => FromProto(P.MessageReceived.Parser.ParseFrom(bytes)),
        DeliveriesConfirmedManifest => FromProto(P.DeliveriesConfirmed.Parser.ParseFrom(bytes)),
        WriterClaimedManifest => FromProto(P.WriterClaimed.Parser.ParseFrom(bytes)),
        StaleWritesResolvedManifest => new StaleWritesResolved(P.StaleWritesResolved.Parser.ParseFrom(bytes).UpToJournalSeq),
        GetConversationsManifest => FromProto(P.GetConversations.Parser.ParseFrom(bytes)),
        GetThreadManifest => FromProto(P.GetThread.Parser.ParseFrom(bytes)),
        GetMailboxStatusManifest => new GetMailboxStatus(P.GetMailboxStatus.Parser.ParseFrom(bytes).UserId),
        StopMailboxManifest => StopMailbox.Instance,
        ConversationsPageManifest => FromProto(P.ConversationsPage.Parser.ParseFrom(bytes)),
        ThreadPageManifest => FromProto(P.ThreadPage.Parser.ParseFrom(bytes)),
        ConversationNotFoundManifest =>
            new ConversationNotFound(P.ConversationNotFound.Parser.ParseFrom(bytes).ConversationId),
        MailboxUnavailableManifest => new MailboxUnavailable(P.MailboxUnavailable.Parser.ParseFrom(bytes).Reason),
        MailboxStatusManifest => FromProto(P.MailboxStatus.Parser.ParseFrom(bytes)),
        MailboxSnapshotManifest => FromProto(P.MailboxSnapshot.Parser.ParseFrom(bytes)),
        _ => throw new SerializationException(
            $"{nameof(MessagingSerializer)} (id {SerializerId}) has no type for manifest '{manifest}'. Bytes written " +
            "by a newer version, or a manifest that was changed: manifests of stored events must never change."),
    };

    private static SerializationException Unsupported(object? o) => new(
        $"{nameof(MessagingSerializer)} cannot serialize {o?.GetType().FullName ?? "null"}: every " +
        $"{nameof(IMessagingProtocol)} type needs a manifest and a mapping here.");

    // ---------------- shared parts ----------------

    private static P.ChatMessage ToProto(ChatMessage m)
    {
        var proto = new P.ChatMessage
        {
            MessageId = m.MessageId,
            ConversationId = m.ConversationId,
            SenderId = m.SenderId,
            Text = m.Text,
            ClientMessageId = m.ClientMessageId,
            ServerTimestamp = m.ServerTimestamp,
        };
        AddStrings(proto.RecipientIds, m.RecipientIds);
        return proto;
    }

    private static ChatMessage FromProto(P.ChatMessage? m, string owner)
    {
        if (m is null)
            throw new SerializationException($"{owner} has no message");
        return new ChatMessage(
            m.MessageId, m.ConversationId, m.SenderId, ToImmutable(m.RecipientIds), m.Text, m.ClientMessageId,
            m.ServerTimestamp);
    }

    private static P.StoredMessage ToProto(StoredMessage m) => new() { Seq = m.Seq, Message = ToProto(m.Message) };

    private static StoredMessage FromProto(P.StoredMessage m) =>
        new(m.Seq, FromProto(m.Message, nameof(StoredMessage)));

    private static P.ConversationSummary ToProto(ConversationSummary c)
    {
        var proto = new P.ConversationSummary
        {
            ConversationId = c.ConversationId,
            Snippet = c.Snippet,
            LastUpdatedTimestamp = c.LastUpdatedTimestamp,
        };
        AddStrings(proto.ParticipantIds, c.ParticipantIds);
        return proto;
    }

    private static ConversationSummary FromProto(P.ConversationSummary c) =>
        new(c.ConversationId, ToImmutable(c.ParticipantIds), c.Snippet, c.LastUpdatedTimestamp);

    private static P.ThreadLinks ToProto(ThreadLinks l) => new() { Previous = l.Previous, Skip = l.Skip };

    private static ThreadLinks FromProto(P.ThreadLinks? l) =>
        l is null || (l.Previous == 0 && l.Skip == 0) ? ThreadLinks.None : new ThreadLinks(l.Previous, l.Skip);

    // ---------------- commands ----------------

    private static P.SendMessage ToProto(SendMessage m)
    {
        var proto = new P.SendMessage { SenderId = m.SenderId, Text = m.Text, ClientMessageId = m.ClientMessageId };
        AddStrings(proto.RecipientIds, m.RecipientIds);
        return proto;
    }

    private static SendMessage FromProto(P.SendMessage m) =>
        new(m.SenderId, ToImmutable(m.RecipientIds), m.Text, m.ClientMessageId);

    private static P.GetConversations ToProto(GetConversations q) => new()
    {
        UserId = q.UserId, Offset = q.Offset, Count = q.Count, AfterTimestamp = q.AfterTimestamp,
    };

    private static GetConversations FromProto(P.GetConversations q) =>
        new(q.UserId, q.Offset, q.Count, q.AfterTimestamp);

    private static P.GetThread ToProto(GetThread q)
    {
        var proto = new P.GetThread
        {
            UserId = q.UserId, ConversationId = q.ConversationId, Offset = q.Offset, Count = q.Count,
        };
        // proto3 optional: setting the field (even to 0) marks it present; null leaves it absent.
        if (q.BeforeSeq is { } before)
            proto.BeforeSeq = before;
        if (q.AfterSeq is { } after)
            proto.AfterSeq = after;
        return proto;
    }

    private static GetThread FromProto(P.GetThread q) => new(
        q.UserId, q.ConversationId, q.Offset, q.Count,
        q.HasBeforeSeq ? q.BeforeSeq : null,
        q.HasAfterSeq ? q.AfterSeq : null);

    private static P.DeliverMessage ToProto(DeliverMessage d) => new()
    {
        RecipientId = d.RecipientId, ChannelSeq = d.ChannelSeq, Message = ToProto(d.Message),
    };

    private static DeliverMessage FromProto(P.DeliverMessage d) =>
        new(d.RecipientId, d.ChannelSeq, FromProto(d.Message, nameof(DeliverMessage)));

    private static P.ConfirmDelivery ToProto(ConfirmDelivery c) => new()
    {
        SenderId = c.SenderId, RecipientId = c.RecipientId, UpToSeq = c.UpToSeq,
    };

    private static ConfirmDelivery FromProto(P.ConfirmDelivery c) => new(c.SenderId, c.RecipientId, c.UpToSeq);

    // ---------------- replies ----------------

    private static P.SendResult ToProto(SendResult r) => new()
    {
        // The proto enum has SendOutcome's numbers; an outcome added later still round-trips as its number.
        Outcome = (P.SendOutcome)(int)r.Outcome,
        MessageId = r.MessageId,
        ConversationId = r.ConversationId,
        ServerTimestamp = r.ServerTimestamp,
        Detail = r.Detail,
    };

    private static SendResult FromProto(P.SendResult r) =>
        new((SendOutcome)(int)r.Outcome, r.MessageId, r.ConversationId, r.ServerTimestamp, r.Detail);

    private static P.ConversationsPage ToProto(ConversationsPage page)
    {
        var proto = new P.ConversationsPage { HasChanges = page.HasChanges };
        if (!page.Conversations.IsDefaultOrEmpty)
        {
            proto.Conversations.Capacity = page.Conversations.Length;
            foreach (var c in page.Conversations)
                proto.Conversations.Add(ToProto(c));
        }
        return proto;
    }

    private static ConversationsPage FromProto(P.ConversationsPage page) =>
        new(ToImmutable(page.Conversations, static c => FromProto(c)), page.HasChanges);

    private static P.ThreadPage ToProto(ThreadPage page)
    {
        var proto = new P.ThreadPage();
        AddStored(proto.Messages, page.Messages);
        return proto;
    }

    private static ThreadPage FromProto(P.ThreadPage page) =>
        new(ToImmutable(page.Messages, static m => FromProto(m)));

    private static P.MailboxStatus ToProto(MailboxStatus s) => new()
    {
        UserId = s.UserId,
        PersistenceId = s.PersistenceId,
        LastSequenceNr = s.LastSequenceNr,
        Conversations = s.Conversations,
        PendingDeliveries = s.PendingDeliveries,
        NodeAddress = s.NodeAddress,
    };

    private static MailboxStatus FromProto(P.MailboxStatus s) => new(
        s.UserId, s.PersistenceId, s.LastSequenceNr, s.Conversations, s.PendingDeliveries, s.NodeAddress);

    // ---------------- events ----------------

    private static P.MessageSent ToProto(MessageSent e) => new()
    {
        Message = ToProto(e.Message), Seq = e.Seq, Links = ToProto(e.Links), ChannelSeq = e.ChannelSeq,
    };

    private static MessageSent FromProto(P.MessageSent e) =>
        new(FromProto(e.Message, nameof(MessageSent)), e.Seq, FromProto(e.Links), e.ChannelSeq);

    private static P.MessageReceived ToProto(MessageReceived e) => new()
    {
        Message = ToProto(e.Message),
        Seq = e.Seq,
        Stamp = e.Stamp,
        Links = ToProto(e.Links),
        ChannelSeq = e.ChannelSeq,
    };

    private static MessageReceived FromProto(P.MessageReceived e) => new(
        FromProto(e.Message, nameof(MessageReceived)), e.Seq, e.Stamp, FromProto(e.Links), e.ChannelSeq);

    private static P.DeliveriesConfirmed ToProto(DeliveriesConfirmed e) =>
        new() { RecipientId = e.RecipientId, UpToSeq = e.UpToSeq };

    private static DeliveriesConfirmed FromProto(P.DeliveriesConfirmed e) => new(e.RecipientId, e.UpToSeq);

    private static WriterClaimed FromProto(P.WriterClaimed e) => new(e.Node, e.ClaimedAt);

    // ---------------- snapshot ----------------

    private static P.MailboxSnapshot ToProto(MailboxSnapshot s)
    {
        var proto = new P.MailboxSnapshot { LastStamp = s.LastStamp };
        if (!s.Conversations.IsDefaultOrEmpty)
        {
            proto.Conversations.Capacity = s.Conversations.Length;
            foreach (var c in s.Conversations)
                proto.Conversations.Add(ToProto(c));
        }
        if (!s.Dedup.IsDefaultOrEmpty)
        {
            proto.Dedup.Capacity = s.Dedup.Length;
            foreach (var r in s.Dedup)
                proto.Dedup.Add(ToProto(r));
        }
        if (!s.Outbound.IsDefaultOrEmpty)
        {
            proto.Outbound.Capacity = s.Outbound.Length;
            foreach (var o in s.Outbound)
                proto.Outbound.Add(ToProto(o));
        }
        if (!s.Inbound.IsDefaultOrEmpty)
        {
            proto.Inbound.Capacity = s.Inbound.Length;
            foreach (var i in s.Inbound)
                proto.Inbound.Add(new P.InboundSnapshot { SenderId = i.SenderId, LastSeq = i.LastSeq });
        }
        return proto;
    }

    private static MailboxSnapshot FromProto(P.MailboxSnapshot s) => new(
        s.LastStamp,
        ToImmutable(s.Conversations, static c => FromProto(c)),
        ToImmutable(s.Dedup, static r => FromProto(r)),
        ToImmutable(s.Outbound, static o => FromProto(o)),
        ToImmutable(s.Inbound, static i => new InboundSnapshot(i.SenderId, i.LastSeq)));

    private static P.ConversationSnapshot ToProto(ConversationSnapshot c)
    {
        var proto = new P.ConversationSnapshot
        {
            ConversationId = c.ConversationId,
            Snippet = c.Snippet,
            LastUpdatedTimestamp = c.LastUpdatedTimestamp,
            LastSeq = c.LastSeq,
        };
        AddStrings(proto.ParticipantIds, c.ParticipantIds);
        if (!c.Anchors.IsDefaultOrEmpty)
        {
            proto.Anchors.Capacity = c.Anchors.Length;
            foreach (var anchor in c.Anchors)
                proto.Anchors.Add(anchor);
        }
        AddStored(proto.Recent, c.Recent);
        return proto;
    }

    private static ConversationSnapshot FromProto(P.ConversationSnapshot c) => new(
        c.ConversationId,
        ToImmutable(c.ParticipantIds),
        c.Snippet,
        c.LastUpdatedTimestamp,
        c.LastSeq,
        ToImmutable(c.Anchors, static a => a),
        ToImmutable(c.Recent, static m => FromProto(m)));

    private static P.SentRecord ToProto(SentRecord r) => new()
    {
        ClientMessageId = r.ClientMessageId,
        MessageId = r.MessageId,
        ConversationId = r.ConversationId,
        RecipientId = r.RecipientId,
        ServerTimestamp = r.ServerTimestamp,
        TextHash = r.TextHash,
    };

    private static SentRecord FromProto(P.SentRecord r) => new(
        r.ClientMessageId, r.MessageId, r.ConversationId, r.RecipientId, r.ServerTimestamp, r.TextHash);

    private static P.OutboundSnapshot ToProto(OutboundSnapshot o)
    {
        var proto = new P.OutboundSnapshot { RecipientId = o.RecipientId, LastSeq = o.LastSeq };
        if (!o.Pending.IsDefaultOrEmpty)
        {
            proto.Pending.Capacity = o.Pending.Length;
            foreach (var d in o.Pending)
                proto.Pending.Add(ToProto(d));
        }
        return proto;
    }

    private static OutboundSnapshot FromProto(P.OutboundSnapshot o) =>
        new(o.RecipientId, o.LastSeq, ToImmutable(o.Pending, static d => FromProto(d)));

    // ---------------- collections ----------------
    // A default ImmutableArray is written as empty and read back as ImmutableArray.Empty: protobuf has no "absent"
    // list, and a default array in a record is a bug waiting for its first foreach anyway.

    private static void AddStrings(RepeatedField<string> target, ImmutableArray<string> source)
    {
        if (source.IsDefaultOrEmpty)
            return;
        if (source.Length > 1)
            target.Capacity = source.Length;
        foreach (var s in source)
            target.Add(s);
    }

    private static void AddStored(RepeatedField<P.StoredMessage> target, ImmutableArray<StoredMessage> source)
    {
        if (source.IsDefaultOrEmpty)
            return;
        target.Capacity = source.Length;
        foreach (var m in source)
            target.Add(ToProto(m));
    }

    private static ImmutableArray<string> ToImmutable(RepeatedField<string> source) => source.Count switch
    {
        0 => ImmutableArray<string>.Empty,
        1 => ImmutableArray.Create(source[0]), // 1:1 messages: the common case
        _ => ToImmutable(source, static s => s),
    };

    private static ImmutableArray<TOut> ToImmutable<TIn, TOut>(RepeatedField<TIn> source, Func<TIn, TOut> map)
    {
        if (source.Count == 0)
            return ImmutableArray<TOut>.Empty;
        var builder = ImmutableArray.CreateBuilder<TOut>(source.Count);
        for (var i = 0; i < source.Count; i++)
            builder.Add(map(source[i]));
        return builder.MoveToImmutable();
    }
}
