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
    internal const string DeliverReceiptManifest = "DR";
    internal const string MarkReceiptsManifest = "MRk";
    internal const string SubscribeManifest = "Sub";
    internal const string SendTypingManifest = "STy";
    internal const string TypingNoticeManifest = "TN";
    internal const string KeepDeliveringManifest = "KD";

    // replies
    internal const string SendResultManifest = "SR";
    internal const string ConversationsPageManifest = "CP";
    internal const string ThreadPageManifest = "TP";
    internal const string ConversationNotFoundManifest = "CNF";
    internal const string MailboxUnavailableManifest = "MU";
    internal const string MailboxStatusManifest = "MS";
    internal const string ReceiptRefusedManifest = "RRf";
    internal const string ConversationAnswerManifest = "CA";
    internal const string LiveChangesManifest = "LC";
    internal const string SubscriptionRefusedManifest = "SRf";
    internal const string TypingSentManifest = "TS";

    // events and snapshots: journal history, never change these
    internal const string MessageSentManifest = "MSt";
    internal const string MessageReceivedManifest = "MRc";
    internal const string DeliveriesConfirmedManifest = "DC";
    // The PostgreSQL writer fence (src/Node/JournalFence.cs) matches this manifest: it must never change.
    public const string WriterClaimedManifest = "WCl";
    internal const string StaleWritesResolvedManifest = "SWR";
    internal const string ConversationsArchivedManifest = "CAr";
    internal const string ConversationRestoredManifest = "CRs";
    internal const string MailboxSnapshotManifest = "MSn";
    // The same bytes, for a snapshot with cold conversations (1.8.0): a release before that would skip the cold index
    // and take the cold conversations for new ones, so it must not read such a snapshot at all (it stays stopped).
    internal const string ColdMailboxSnapshotManifest = "MSc";
    // 1.9.0, cold groups: the same bytes again, for an archive that takes a group out, a group's restore, and a snapshot
    // of a mailbox where a group went cold once. 1.8.0 would take a cold group for a new one (its thread and channel
    // starting over), so it must refuse these rather than read them (the mailbox stays stopped until 1.9.0 runs).
    internal const string GroupsArchivedManifest = "CAg";
    internal const string GroupRestoredManifest = "CRg";
    internal const string ColdGroupsMailboxSnapshotManifest = "MSg";
    // 1.10.0, cold channels: the same bytes again, for an archive whose page holds a channel-only entry (the channel
    // positions with someone met only in groups), a restore of one, and a snapshot of a mailbox where one went cold
    // once. 1.9 would take such an entry for a cold 1:1 conversation (an empty one brought back), so it refuses these.
    internal const string ChannelsArchivedManifest = "CAo";
    internal const string ChannelRestoredManifest = "CRo";
    internal const string ColdChannelsMailboxSnapshotManifest = "MSo";
    internal const string ReceiptsMarkedManifest = "RMk";
    internal const string ReceiptReceivedManifest = "RRc";

    // groups (v1.1): commands and replies, then journal history (never change these)
    internal const string CreateGroupManifest = "CrG";
    internal const string GetGroupManifest = "GG";
    internal const string ChangeMembersManifest = "ChM";
    internal const string LeaveGroupManifest = "LvG";
    internal const string PostToGroupManifest = "PtG";
    internal const string ConfirmGroupDeliveryManifest = "CGD";
    internal const string KeepGroupDeliveringManifest = "KGD";
    // delivery index (1.3.0)
    internal const string MarkPendingManifest = "MPd";
    internal const string GetPendingDeliveriesManifest = "GPD";
    internal const string PendingDeliveriesManifest = "PDs";
    internal const string WakeForDeliveryManifest = "WFD";
    internal const string PendingChangedManifest = "PCh";
    internal const string DeliveryIndexSnapshotManifest = "DIS";
    internal const string GetGroupStatusManifest = "GGS";
    internal const string StopGroupManifest = "SpG";
    internal const string DeliverGroupMessageManifest = "DGM";
    internal const string GroupAnswerManifest = "GA";
    internal const string GroupRefusedManifest = "GRf";
    internal const string GroupStatusManifest = "GSt";
    internal const string GroupCreatedManifest = "GCr";
    internal const string GroupPostedManifest = "GPo";
    internal const string GroupSnapshotManifest = "GSn";

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
        ConversationsArchived { Pages.IsDefault: false } a when a.Pages.Any(p => !p.Entries.IsDefault && p.Entries.Any(e => e.ChannelOnly)) =>
            ChannelsArchivedManifest,
        ConversationsArchived { ConversationIds.IsDefault: false } a when a.ConversationIds.Any(Ids.IsGroup) => GroupsArchivedManifest,
        ConversationsArchived => ConversationsArchivedManifest,
        ConversationRestored { Entry.ChannelOnly: true } => ChannelRestoredManifest,
        ConversationRestored { Entry.Conversation.ConversationId: { } id } when Ids.IsGroup(id) => GroupRestoredManifest,
        ConversationRestored => ConversationRestoredManifest,
        GetConversations => GetConversationsManifest,
        GetThread => GetThreadManifest,
        GetMailboxStatus => GetMailboxStatusManifest,
        StopMailbox => StopMailboxManifest,
        ConversationsPage => ConversationsPageManifest,
        ThreadPage => ThreadPageManifest,
        ConversationNotFound => ConversationNotFoundManifest,
        MailboxUnavailable => MailboxUnavailableManifest,
        MailboxStatus => MailboxStatusManifest,
        MailboxSnapshot { ColdChannels: true } => ColdChannelsMailboxSnapshotManifest,
        MailboxSnapshot { ColdGroups: true } => ColdGroupsMailboxSnapshotManifest,
        MailboxSnapshot { ColdPages.IsDefaultOrEmpty: false } => ColdMailboxSnapshotManifest,
        MailboxSnapshot => MailboxSnapshotManifest,
        DeliverReceipt => DeliverReceiptManifest,
        MarkReceipts => MarkReceiptsManifest,
        Subscribe => SubscribeManifest,
        SendTyping => SendTypingManifest,
        TypingNotice => TypingNoticeManifest,
        KeepDelivering => KeepDeliveringManifest,
        ReceiptRefused => ReceiptRefusedManifest,
        ConversationAnswer => ConversationAnswerManifest,
        LiveChanges => LiveChangesManifest,
        SubscriptionRefused => SubscriptionRefusedManifest,
        TypingSent => TypingSentManifest,
        ReceiptsMarked => ReceiptsMarkedManifest,
        ReceiptReceived => ReceiptReceivedManifest,
        DeliverGroupMessage => DeliverGroupMessageManifest,
        PostToGroup => PostToGroupManifest,
        ConfirmGroupDelivery => ConfirmGroupDeliveryManifest,
        GroupPosted => GroupPostedManifest,
        CreateGroup => CreateGroupManifest,
        GetGroup => GetGroupManifest,
        ChangeMembers => ChangeMembersManifest,
        LeaveGroup => LeaveGroupManifest,
        KeepGroupDelivering => KeepGroupDeliveringManifest,
        MarkPending => MarkPendingManifest,
        GetPendingDeliveries => GetPendingDeliveriesManifest,
        PendingDeliveries => PendingDeliveriesManifest,
        WakeForDelivery => WakeForDeliveryManifest,
        PendingChanged => PendingChangedManifest,
        DeliveryIndexSnapshot => DeliveryIndexSnapshotManifest,
        GetGroupStatus => GetGroupStatusManifest,
        StopGroup => StopGroupManifest,
        GroupAnswer => GroupAnswerManifest,
        GroupRefused => GroupRefusedManifest,
        GroupStatus => GroupStatusManifest,
        GroupCreated => GroupCreatedManifest,
        GroupSnapshot => GroupSnapshotManifest,
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
        ConversationsArchived m => ToProto(m).ToByteArray(),
        ConversationRestored m => new P.ConversationRestored { Entry = ToProto(m.Entry) }.ToByteArray(),
        GetConversations m => ToProto(m).ToByteArray(),
        GetThread m => ToProto(m).ToByteArray(),
        GetMailboxStatus m => new P.GetMailboxStatus { UserId = m.UserId, OpeningConversationId = m.OpeningConversationId ?? "" }.ToByteArray(),
        StopMailbox => [],
        ConversationsPage m => ToProto(m).ToByteArray(),
        ThreadPage m => ToProto(m).ToByteArray(),
        ConversationNotFound m => new P.ConversationNotFound { ConversationId = m.ConversationId }.ToByteArray(),
        MailboxUnavailable m => new P.MailboxUnavailable { Reason = m.Reason }.ToByteArray(),
        MailboxStatus m => ToProto(m).ToByteArray(),
        MailboxSnapshot m => ToProto(m).ToByteArray(),
        DeliverReceipt m => ToProto(m).ToByteArray(),
        MarkReceipts m => ToProto(m).ToByteArray(),
        Subscribe m => new P.Subscribe { UserId = m.UserId, AfterStamp = m.AfterStamp }.ToByteArray(),
        SendTyping m => new P.SendTyping { UserId = m.UserId, ConversationId = m.ConversationId }.ToByteArray(),
        TypingNotice m => new P.TypingNotice
        {
            RecipientId = m.RecipientId, ConversationId = m.ConversationId, FromUserId = m.FromUserId, Until = m.Until,
        }.ToByteArray(),
        ReceiptRefused m => new P.ReceiptRefused { Detail = m.Detail }.ToByteArray(),
        KeepDelivering m => new P.KeepDelivering { UserId = m.UserId }.ToByteArray(),
        ConversationAnswer m => ToProto(m.Conversation).ToByteArray(),
        LiveChanges m => ToProto(m).ToByteArray(),
        SubscriptionRefused m => new P.SubscriptionRefused { Reason = m.Reason }.ToByteArray(),
        TypingSent m => new P.TypingSent { Until = m.Until }.ToByteArray(),
        ReceiptsMarked m => ToProto(m).ToByteArray(),
        ReceiptReceived m => ToProto(m).ToByteArray(),
        DeliverGroupMessage m => ToProto(m).ToByteArray(),
        PostToGroup m => new P.PostToGroup
        {
            GroupId = m.GroupId, SenderId = m.SenderId, Text = m.Text, ClientMessageId = m.ClientMessageId,
        }.ToByteArray(),
        ConfirmGroupDelivery m => new P.ConfirmGroupDelivery { GroupId = m.GroupId, MemberId = m.MemberId, UpToSeq = m.UpToSeq }.ToByteArray(),
        GroupPosted m => ToProto(m).ToByteArray(),
        CreateGroup m => ToProto(m).ToByteArray(),
        GetGroup m => new P.GetGroup { GroupId = m.GroupId, UserId = m.UserId }.ToByteArray(),
        ChangeMembers m => ToProto(m).ToByteArray(),
        LeaveGroup m => new P.LeaveGroup { GroupId = m.GroupId, UserId = m.UserId }.ToByteArray(),
        KeepGroupDelivering m => new P.GroupId { GroupId_ = m.GroupId }.ToByteArray(),
        MarkPending m => new P.MarkPending { IndexId = m.IndexId, EntityId = m.EntityId, Pending = m.Pending }.ToByteArray(),
        GetPendingDeliveries m => new P.IndexId { IndexId_ = m.IndexId }.ToByteArray(),
        PendingDeliveries m => ToProto(m).ToByteArray(),
        WakeForDelivery m => new P.WakeForDelivery { EntityId = m.EntityId }.ToByteArray(),
        PendingChanged m => new P.PendingChanged { EntityId = m.EntityId, Pending = m.Pending }.ToByteArray(),
        DeliveryIndexSnapshot m => ToProto(m).ToByteArray(),
        GetGroupStatus m => new P.GroupId { GroupId_ = m.GroupId }.ToByteArray(),
        StopGroup => [],
        GroupAnswer m => new P.GroupAnswer { Group = ToProto(m.Group), Created = m.Created }.ToByteArray(),
        GroupRefused m => new P.GroupRefused { Reason = (int)m.Reason, Detail = m.Detail }.ToByteArray(),
        GroupStatus m => ToProto(m).ToByteArray(),
        GroupCreated m => new P.GroupCreated
        {
            Message = ToProto(m.Message), Name = m.Name, ClientRequestId = m.ClientRequestId,
        }.ToByteArray(),
        GroupSnapshot m => ToProto(m).ToByteArray(),
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
        ConversationsArchivedManifest or GroupsArchivedManifest or ChannelsArchivedManifest => FromProto(P.ConversationsArchived.Parser.ParseFrom(bytes)),
        ConversationRestoredManifest or GroupRestoredManifest or ChannelRestoredManifest => new ConversationRestored(FromProto(P.ConversationRestored.Parser.ParseFrom(bytes).Entry)),
        GetConversationsManifest => FromProto(P.GetConversations.Parser.ParseFrom(bytes)),
        GetThreadManifest => FromProto(P.GetThread.Parser.ParseFrom(bytes)),
        GetMailboxStatusManifest => FromProto(P.GetMailboxStatus.Parser.ParseFrom(bytes)),
        StopMailboxManifest => StopMailbox.Instance,
        ConversationsPageManifest => FromProto(P.ConversationsPage.Parser.ParseFrom(bytes)),
        ThreadPageManifest => FromProto(P.ThreadPage.Parser.ParseFrom(bytes)),
        ConversationNotFoundManifest =>
            new ConversationNotFound(P.ConversationNotFound.Parser.ParseFrom(bytes).ConversationId),
        MailboxUnavailableManifest => new MailboxUnavailable(P.MailboxUnavailable.Parser.ParseFrom(bytes).Reason),
        MailboxStatusManifest => FromProto(P.MailboxStatus.Parser.ParseFrom(bytes)),
        MailboxSnapshotManifest or ColdMailboxSnapshotManifest or ColdGroupsMailboxSnapshotManifest or ColdChannelsMailboxSnapshotManifest => FromProto(P.MailboxSnapshot.Parser.ParseFrom(bytes)),
        DeliverReceiptManifest => FromProto(P.DeliverReceipt.Parser.ParseFrom(bytes)),
        MarkReceiptsManifest => FromProto(P.MarkReceipts.Parser.ParseFrom(bytes)),
        SubscribeManifest => FromProto(P.Subscribe.Parser.ParseFrom(bytes)),
        SendTypingManifest => FromProto(P.SendTyping.Parser.ParseFrom(bytes)),
        TypingNoticeManifest => FromProto(P.TypingNotice.Parser.ParseFrom(bytes)),
        KeepDeliveringManifest => new KeepDelivering(P.KeepDelivering.Parser.ParseFrom(bytes).UserId),
        ReceiptRefusedManifest => new ReceiptRefused(P.ReceiptRefused.Parser.ParseFrom(bytes).Detail),
        ConversationAnswerManifest => new ConversationAnswer(FromProto(P.ConversationSummary.Parser.ParseFrom(bytes))),
        LiveChangesManifest => FromProto(P.LiveChanges.Parser.ParseFrom(bytes)),
        SubscriptionRefusedManifest => new SubscriptionRefused(P.SubscriptionRefused.Parser.ParseFrom(bytes).Reason),
        TypingSentManifest => new TypingSent(P.TypingSent.Parser.ParseFrom(bytes).Until),
        ReceiptsMarkedManifest => FromProto(P.ReceiptsMarked.Parser.ParseFrom(bytes)),
        ReceiptReceivedManifest => FromProto(P.ReceiptReceived.Parser.ParseFrom(bytes)),
        DeliverGroupMessageManifest => FromProto(P.DeliverGroupMessage.Parser.ParseFrom(bytes)),
        PostToGroupManifest => FromProto(P.PostToGroup.Parser.ParseFrom(bytes)),
        ConfirmGroupDeliveryManifest => FromProto(P.ConfirmGroupDelivery.Parser.ParseFrom(bytes)),
        GroupPostedManifest => FromProto(P.GroupPosted.Parser.ParseFrom(bytes)),
        CreateGroupManifest => FromProto(P.CreateGroup.Parser.ParseFrom(bytes)),
        GetGroupManifest => FromProto(P.GetGroup.Parser.ParseFrom(bytes)),
        ChangeMembersManifest => FromProto(P.ChangeMembers.Parser.ParseFrom(bytes)),
        LeaveGroupManifest => FromProto(P.LeaveGroup.Parser.ParseFrom(bytes)),
        KeepGroupDeliveringManifest => new KeepGroupDelivering(P.GroupId.Parser.ParseFrom(bytes).GroupId_),
        MarkPendingManifest => FromProto(P.MarkPending.Parser.ParseFrom(bytes)),
        GetPendingDeliveriesManifest => new GetPendingDeliveries(P.IndexId.Parser.ParseFrom(bytes).IndexId_),
        PendingDeliveriesManifest => FromProto(P.PendingDeliveries.Parser.ParseFrom(bytes)),
        WakeForDeliveryManifest => new WakeForDelivery(P.WakeForDelivery.Parser.ParseFrom(bytes).EntityId),
        PendingChangedManifest => FromProto(P.PendingChanged.Parser.ParseFrom(bytes)),
        DeliveryIndexSnapshotManifest => new DeliveryIndexSnapshot(ToImmutable(P.DeliveryIndexSnapshot.Parser.ParseFrom(bytes).EntityIds)),
        GetGroupStatusManifest => new GetGroupStatus(P.GroupId.Parser.ParseFrom(bytes).GroupId_),
        StopGroupManifest => StopGroup.Instance,
        GroupAnswerManifest => FromProto(P.GroupAnswer.Parser.ParseFrom(bytes)),
        GroupRefusedManifest => FromProto(P.GroupRefused.Parser.ParseFrom(bytes)),
        GroupStatusManifest => FromProto(P.GroupStatus.Parser.ParseFrom(bytes)),
        GroupCreatedManifest => FromProto(P.GroupCreated.Parser.ParseFrom(bytes)),
        GroupSnapshotManifest => FromProto(P.GroupSnapshot.Parser.ParseFrom(bytes)),
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
        if (m.System is { } change)
        {
            proto.System = new P.GroupChange { Action = change.Action };
            AddStrings(proto.System.UserIds, change.UserIds);
        }
        return proto;
    }

    private static ChatMessage FromProto(P.ChatMessage? m, string owner)
    {
        if (m is null)
            throw new SerializationException($"{owner} has no message");
        return new ChatMessage(
            m.MessageId, m.ConversationId, m.SenderId, ToImmutable(m.RecipientIds), m.Text, m.ClientMessageId,
            m.ServerTimestamp, m.System is { } change ? new GroupChange(change.Action, ToImmutable(change.UserIds)) : null);
    }

    private static P.StoredMessage ToProto(StoredMessage m) =>
        new() { Seq = m.Seq, Message = ToProto(m.Message), Tally = ToProto(m.Tally) };

    private static StoredMessage FromProto(P.StoredMessage m) =>
        new(m.Seq, FromProto(m.Message, nameof(StoredMessage)), FromProto(m.Tally));

    private static P.Tally? ToProto(Tally? t) =>
        t is { } tally ? new P.Tally { FromOthers = tally.FromOthers, LastFromOthersAt = tally.LastFromOthersAt } : null;

    private static Tally? FromProto(P.Tally? t) => t is null ? null : new Tally(t.FromOthers, t.LastFromOthersAt);

    private static void AddReceipts(RepeatedField<P.ParticipantReceipt> target, ImmutableArray<ParticipantReceipt> source)
    {
        if (source.IsDefaultOrEmpty)
            return;
        foreach (var r in source)
        {
            target.Add(new P.ParticipantReceipt
            {
                UserId = r.UserId, DeliveredUpTo = r.Receipt.DeliveredUpTo, ReadUpTo = r.Receipt.ReadUpTo,
                JoinedAt = r.JoinedAt, LeftAt = r.LeftAt,
            });
        }
    }

    private static ImmutableArray<ParticipantReceipt> ToReceipts(RepeatedField<P.ParticipantReceipt> source) =>
        ToImmutable(source, static r => new ParticipantReceipt(r.UserId, new Receipt(r.DeliveredUpTo, r.ReadUpTo), r.JoinedAt, r.LeftAt));

    private static P.ConversationSummary ToProto(ConversationSummary c)
    {
        var proto = new P.ConversationSummary
        {
            ConversationId = c.ConversationId,
            Snippet = c.Snippet,
            LastUpdatedTimestamp = c.LastUpdatedTimestamp,
            Kind = c.Kind == ConversationSummary.DirectKind ? "" : c.Kind,
            LastSeq = c.LastSeq,
            ReadUpToSeq = c.ReadUpToSeq,
            UnreadCount = c.UnreadCount,
        };
        if (c.Name is { } name)
            proto.Name = name;
        AddStrings(proto.ParticipantIds, c.ParticipantIds);
        AddReceipts(proto.Receipts, c.Receipts);
        return proto;
    }

    private static ConversationSummary FromProto(P.ConversationSummary c) => new(
        c.ConversationId, ToImmutable(c.ParticipantIds), c.Snippet, c.LastUpdatedTimestamp,
        c.Kind.Length == 0 ? ConversationSummary.DirectKind : c.Kind, c.HasName ? c.Name : null,
        c.LastSeq, c.ReadUpToSeq, c.UnreadCount, ToReceipts(c.Receipts));

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

    private static P.DeliverReceipt ToProto(DeliverReceipt d) => new()
    {
        RecipientId = d.RecipientId,
        ChannelSeq = d.ChannelSeq,
        SenderId = d.SenderId,
        ConversationId = d.ConversationId,
        DeliveredUpTo = d.Receipt.DeliveredUpTo,
        ReadUpTo = d.Receipt.ReadUpTo,
    };

    private static DeliverReceipt FromProto(P.DeliverReceipt d) => new(
        d.RecipientId, d.ChannelSeq, d.SenderId, d.ConversationId, new Receipt(d.DeliveredUpTo, d.ReadUpTo));

    private static P.MarkReceipts ToProto(MarkReceipts m)
    {
        var proto = new P.MarkReceipts { UserId = m.UserId, ConversationId = m.ConversationId };
        if (m.DeliveredUpToSeq is { } delivered)
            proto.DeliveredUpToSeq = delivered;
        if (m.ReadUpToSeq is { } read)
            proto.ReadUpToSeq = read;
        return proto;
    }

    private static MarkReceipts FromProto(P.MarkReceipts m) => new(
        m.UserId, m.ConversationId, m.HasDeliveredUpToSeq ? m.DeliveredUpToSeq : null, m.HasReadUpToSeq ? m.ReadUpToSeq : null);

    private static Subscribe FromProto(P.Subscribe m) => new(m.UserId, m.AfterStamp);

    private static SendTyping FromProto(P.SendTyping m) => new(m.UserId, m.ConversationId);

    private static TypingNotice FromProto(P.TypingNotice m) => new(m.RecipientId, m.ConversationId, m.FromUserId, m.Until);

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
        RetryAfterMs = r.RetryAfterMs,
    };

    private static SendResult FromProto(P.SendResult r) =>
        new((SendOutcome)(int)r.Outcome, r.MessageId, r.ConversationId, r.ServerTimestamp, r.Detail, r.RetryAfterMs);

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
        AddReceipts(proto.Receipts, page.Receipts);
        return proto;
    }

    private static ThreadPage FromProto(P.ThreadPage page) =>
        new(ToImmutable(page.Messages, static m => FromProto(m)), ToReceipts(page.Receipts));

    private static P.LiveChanges ToProto(LiveChanges live)
    {
        var proto = new P.LiveChanges { CaughtUp = live.CaughtUp, UpTo = live.UpTo };
        if (!live.Changes.IsDefaultOrEmpty)
        {
            foreach (var change in live.Changes)
            {
                var c = new P.ConversationChange { Conversation = ToProto(change.Conversation) };
                AddStored(c.Messages, change.Messages);
                proto.Changes.Add(c);
            }
        }
        return proto;
    }

    private static LiveChanges FromProto(P.LiveChanges live) => new(
        ToImmutable(live.Changes, static c => new ConversationChange(
            c.Conversation is null
                ? throw new SerializationException("ConversationChange has no conversation")
                : FromProto(c.Conversation),
            ToImmutable(c.Messages, static m => FromProto(m)))),
        live.CaughtUp,
        live.UpTo);

    private static P.MailboxStatus ToProto(MailboxStatus s) => new()
    {
        UserId = s.UserId,
        PersistenceId = s.PersistenceId,
        LastSequenceNr = s.LastSequenceNr,
        Conversations = s.Conversations,
        PendingDeliveries = s.PendingDeliveries,
        NodeAddress = s.NodeAddress,
        OpeningWaitMs = s.OpeningWaitMs,
        ColdConversations = s.ColdConversations,
        LoneChannels = s.LoneChannels,
    };

    private static MailboxStatus FromProto(P.MailboxStatus s) => new(
        s.UserId, s.PersistenceId, s.LastSequenceNr, s.Conversations, s.PendingDeliveries, s.NodeAddress, s.OpeningWaitMs,
        s.ColdConversations, s.LoneChannels);

    private static GetMailboxStatus FromProto(P.GetMailboxStatus m) =>
        new(m.UserId, m.OpeningConversationId.Length == 0 ? null : m.OpeningConversationId);

    // ---------------- events ----------------

    private static P.MessageSent ToProto(MessageSent e) => new()
    {
        Message = ToProto(e.Message), Seq = e.Seq, Links = ToProto(e.Links), ChannelSeq = e.ChannelSeq, Tally = ToProto(e.Tally),
    };

    private static MessageSent FromProto(P.MessageSent e) =>
        new(FromProto(e.Message, nameof(MessageSent)), e.Seq, FromProto(e.Links), e.ChannelSeq, FromProto(e.Tally));

    private static P.MessageReceived ToProto(MessageReceived e)
    {
        var proto = new P.MessageReceived
        {
            Message = ToProto(e.Message),
            Seq = e.Seq,
            Stamp = e.Stamp,
            Links = ToProto(e.Links),
            ChannelSeq = e.ChannelSeq,
            Tally = ToProto(e.Tally),
        };
        if (e.GroupName is { } name)
            proto.GroupName = name;
        AddStrings(proto.GroupMembers, e.GroupMembers);
        return proto;
    }

    private static MessageReceived FromProto(P.MessageReceived e) => new(
        FromProto(e.Message, nameof(MessageReceived)), e.Seq, e.Stamp, FromProto(e.Links), e.ChannelSeq, FromProto(e.Tally),
        e.HasGroupName ? e.GroupName : null, ToImmutable(e.GroupMembers));

    private static P.ReceiptsMarked ToProto(ReceiptsMarked e)
    {
        var proto = new P.ReceiptsMarked
        {
            ConversationId = e.ConversationId,
            DeliveredUpToSeq = e.DeliveredUpToSeq,
            ReadUpToSeq = e.ReadUpToSeq,
            Delivered = ToProto(e.Delivered),
            Read = ToProto(e.Read),
            Stamp = e.Stamp,
            OtherId = e.OtherId,
            ChannelSeq = e.ChannelSeq,
        };
        foreach (var copy in e.Copies)
            proto.Copies.Add(new P.ChannelTarget { RecipientId = copy.RecipientId, ChannelSeq = copy.ChannelSeq });
        return proto;
    }

    private static ReceiptsMarked FromProto(P.ReceiptsMarked e) => new(
        e.ConversationId, e.DeliveredUpToSeq, e.ReadUpToSeq, FromProto(e.Delivered) ?? default, FromProto(e.Read) ?? default,
        e.Stamp, e.OtherId, e.ChannelSeq, ToImmutable(e.Copies, static c => new ChannelTarget(c.RecipientId, c.ChannelSeq)));

    private static P.ReceiptReceived ToProto(ReceiptReceived e) => new()
    {
        ConversationId = e.ConversationId,
        FromUserId = e.FromUserId,
        DeliveredUpTo = e.Receipt.DeliveredUpTo,
        ReadUpTo = e.Receipt.ReadUpTo,
        Stamp = e.Stamp,
        ChannelSeq = e.ChannelSeq,
    };

    private static ReceiptReceived FromProto(P.ReceiptReceived e) =>
        new(e.ConversationId, e.FromUserId, new Receipt(e.DeliveredUpTo, e.ReadUpTo), e.Stamp, e.ChannelSeq);

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
        proto.Openings.AddRange(s.Openings);
        if (s.StaleUpTo is { } staleUpTo)
            proto.StaleUpTo = staleUpTo;
        proto.ColdPages.AddRange(s.ColdPages);
        proto.ColdCount = s.ColdCount;
        proto.ColdGroups = s.ColdGroups;
        proto.ColdChannels = s.ColdChannels;
        return proto;
    }

    private static MailboxSnapshot FromProto(P.MailboxSnapshot s) => new(
        s.LastStamp,
        ToImmutable(s.Conversations, static c => FromProto(c)),
        ToImmutable(s.Dedup, static r => FromProto(r)),
        ToImmutable(s.Outbound, static o => FromProto(o)),
        ToImmutable(s.Inbound, static i => new InboundSnapshot(i.SenderId, i.LastSeq)),
        [.. s.Openings],
        s.HasStaleUpTo ? s.StaleUpTo : null,
        [.. s.ColdPages],
        s.ColdCount,
        s.ColdGroups,
        s.ColdChannels);

    // ---------------- cold conversations (1.8.0) ----------------

    private static P.ConversationsArchived ToProto(ConversationsArchived e)
    {
        var proto = new P.ConversationsArchived();
        foreach (var page in e.Pages)
        {
            var p = new P.ColdPage { Depth = page.Depth, Bits = page.Bits };
            p.Entries.Capacity = page.Entries.Length;
            foreach (var entry in page.Entries)
                p.Entries.Add(ToProto(entry));
            proto.Pages.Add(p);
        }
        AddStrings(proto.ConversationIds, e.ConversationIds);
        return proto;
    }

    private static ConversationsArchived FromProto(P.ConversationsArchived e) => new(
        ToImmutable(e.Pages, static p => new ColdPage(p.Depth, p.Bits, ToImmutable(p.Entries, static c => FromProto(c)))),
        ToImmutable(e.ConversationIds));

    private static P.ColdEntry ToProto(ColdEntry e) => new()
    {
        Conversation = ToProto(e.Conversation),
        InboundSeq = e.InboundSeq,
        OutboundSeq = e.OutboundSeq,
        ChannelOnly = e.ChannelOnly,
    };

    private static ColdEntry FromProto(P.ColdEntry e) =>
        new(FromProto(e.Conversation ?? throw new SerializationException("a cold entry without its conversation")), e.InboundSeq, e.OutboundSeq, e.ChannelOnly);

    private static P.ConversationSnapshot ToProto(ConversationSnapshot c)
    {
        var proto = new P.ConversationSnapshot
        {
            ConversationId = c.ConversationId,
            Snippet = c.Snippet,
            LastUpdatedTimestamp = c.LastUpdatedTimestamp,
            LastSeq = c.LastSeq,
            Kind = c.Kind == ConversationSummary.DirectKind ? "" : c.Kind,
            DeliveredUpToSeq = c.DeliveredUpToSeq,
            ReadUpToSeq = c.ReadUpToSeq,
            Tally = ToProto(c.Tally),
            // Absent when zero, so a snapshot without receipts is the bytes it was before v1.1 (plus its tally).
            Delivered = c.Delivered == default ? null : ToProto(c.Delivered),
            Read = c.Read == default ? null : ToProto(c.Read),
        };
        if (c.Name is { } name)
            proto.Name = name;
        AddReceipts(proto.Receipts, c.Receipts);
        AddStrings(proto.ParticipantIds, c.ParticipantIds);
        if (!c.Anchors.IsDefaultOrEmpty)
        {
            proto.Anchors.Capacity = c.Anchors.Length;
            foreach (var anchor in c.Anchors)
                proto.Anchors.Add(anchor);
        }
        AddStored(proto.Recent, c.Recent);
        if (c.Window is { } window)
        {
            if (window.Messages.Length != window.Senders.Length)
                throw new SerializationException(
                    $"the window of {c.ConversationId} has {window.Messages.Length} messages and {window.Senders.Length} senders");
            proto.Window.Capacity = window.Messages.Length;
            foreach (var message in window.Messages)
                proto.Window.Add(UnsafeByteOperations.UnsafeWrap(message)); // a window message's bytes never change
            proto.WindowSenders.AddRange(window.Senders);
        }
        if (!c.UnreadSenders.IsDefault)
        {
            proto.UnreadSendersKnown = true;
            AddStrings(proto.UnreadSenders, c.UnreadSenders);
        }
        return proto;
    }

    private static CompactWindow? FromProto(RepeatedField<ByteString> messages, RepeatedField<int> senders)
    {
        if (messages.Count == 0 && senders.Count == 0)
            return null;
        if (messages.Count != senders.Count)
            throw new SerializationException($"a snapshot's window has {messages.Count} messages and {senders.Count} senders");
        var bytes = ImmutableArray.CreateBuilder<byte[]>(messages.Count);
        foreach (var message in messages)
        {
            // The parser gives each bytes field an array of its own, exactly its size: taken as it is, not copied.
            bytes.Add(System.Runtime.InteropServices.MemoryMarshal.TryGetArray(message.Memory, out var segment)
                      && segment is { Offset: 0, Array: { } array } && segment.Count == array.Length
                ? array
                : message.ToByteArray());
        }
        return new CompactWindow(bytes.MoveToImmutable(), [.. senders]);
    }

    private static ConversationSnapshot FromProto(P.ConversationSnapshot c) => new(
        c.ConversationId,
        ToImmutable(c.ParticipantIds),
        c.Snippet,
        c.LastUpdatedTimestamp,
        c.LastSeq,
        ToImmutable(c.Anchors, static a => a),
        ToImmutable(c.Recent, static m => FromProto(m)),
        c.Kind.Length == 0 ? ConversationSummary.DirectKind : c.Kind,
        c.HasName ? c.Name : null,
        c.DeliveredUpToSeq,
        c.ReadUpToSeq,
        FromProto(c.Tally),
        FromProto(c.Delivered) ?? default,
        FromProto(c.Read) ?? default,
        ToReceipts(c.Receipts),
        FromProto(c.Window, c.WindowSenders),
        c.UnreadSendersKnown ? ToImmutable(c.UnreadSenders) : default);

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
            foreach (var copy in o.Pending)
            {
                if (copy is DeliverMessage d)
                    proto.Pending.Add(ToProto(d));
                else if (copy is DeliverReceipt r)
                    proto.PendingReceipts.Add(ToProto(r));
                else
                    throw Unsupported(copy);
            }
        }
        return proto;
    }

    /// <summary>Messages and receipts share the channel's numbers: one queue again, in channel order.</summary>
    private static OutboundSnapshot FromProto(P.OutboundSnapshot o)
    {
        if (o.PendingReceipts.Count == 0)
            return new(o.RecipientId, o.LastSeq, ToImmutable(o.Pending, static d => (IChannelCopy)FromProto(d)));
        var copies = o.Pending.Select(d => (IChannelCopy)FromProto(d))
            .Concat(o.PendingReceipts.Select(r => (IChannelCopy)FromProto(r)))
            .OrderBy(c => c.ChannelSeq)
            .ToImmutableArray();
        return new(o.RecipientId, o.LastSeq, copies);
    }

    // ---------------- groups ----------------

    private static P.DeliverGroupMessage ToProto(DeliverGroupMessage d)
    {
        var proto = new P.DeliverGroupMessage
        {
            RecipientId = d.RecipientId, ChannelSeq = d.ChannelSeq, PreviousSeq = d.PreviousSeq, Message = ToProto(d.Message),
            Name = d.Name,
        };
        AddStrings(proto.Members, d.Members);
        return proto;
    }

    private static DeliverGroupMessage FromProto(P.DeliverGroupMessage d) => new(
        d.RecipientId, d.ChannelSeq, d.PreviousSeq, FromProto(d.Message, nameof(DeliverGroupMessage)), d.Name, ToImmutable(d.Members));

    private static PostToGroup FromProto(P.PostToGroup m) => new(m.GroupId, m.SenderId, m.Text, m.ClientMessageId);

    private static ConfirmGroupDelivery FromProto(P.ConfirmGroupDelivery m) => new(m.GroupId, m.MemberId, m.UpToSeq);

    private static P.GroupPosted ToProto(GroupPosted e) => new() { Seq = e.Seq, Message = ToProto(e.Message) };

    private static GroupPosted FromProto(P.GroupPosted e) => new(e.Seq, FromProto(e.Message, nameof(GroupPosted)));

    private static P.CreateGroup ToProto(CreateGroup m)
    {
        var proto = new P.CreateGroup { GroupId = m.GroupId, CreatorId = m.CreatorId, Name = m.Name, ClientRequestId = m.ClientRequestId };
        AddStrings(proto.MemberIds, m.MemberIds);
        return proto;
    }

    private static CreateGroup FromProto(P.CreateGroup m) =>
        new(m.GroupId, m.CreatorId, m.Name, ToImmutable(m.MemberIds), m.ClientRequestId);

    private static GetGroup FromProto(P.GetGroup m) => new(m.GroupId, m.UserId);

    private static P.ChangeMembers ToProto(ChangeMembers m)
    {
        var proto = new P.ChangeMembers { GroupId = m.GroupId, UserId = m.UserId };
        AddStrings(proto.Add, m.Add);
        AddStrings(proto.Remove, m.Remove);
        return proto;
    }

    private static ChangeMembers FromProto(P.ChangeMembers m) => new(m.GroupId, m.UserId, ToImmutable(m.Add), ToImmutable(m.Remove));

    private static LeaveGroup FromProto(P.LeaveGroup m) => new(m.GroupId, m.UserId);

    private static P.GroupView ToProto(GroupView g)
    {
        var proto = new P.GroupView { GroupId = g.GroupId, Name = g.Name };
        AddStrings(proto.Members, g.Members);
        AddStrings(proto.Admins, g.Admins);
        return proto;
    }

    private static GroupView FromProto(P.GroupView? g) => g is null
        ? throw new SerializationException("a group answer has no group")
        : new(g.GroupId, g.Name, ToImmutable(g.Members), ToImmutable(g.Admins));

    private static GroupAnswer FromProto(P.GroupAnswer m) => new(FromProto(m.Group), m.Created);

    private static GroupRefused FromProto(P.GroupRefused m) => new((GroupRefusal)m.Reason, m.Detail);

    private static P.GroupStatus ToProto(GroupStatus s)
    {
        var proto = new P.GroupStatus
        {
            Group = ToProto(s.Group), LastSeq = s.LastSeq, LastSequenceNr = s.LastSequenceNr, NodeAddress = s.NodeAddress,
            PendingMessages = s.PendingMessages,
        };
        foreach (var d in s.Deliveries)
            proto.Deliveries.Add(new P.MemberDelivery { UserId = d.UserId, ConfirmedSeq = d.ConfirmedSeq, Pending = d.Pending });
        return proto;
    }

    private static GroupStatus FromProto(P.GroupStatus s) => new(
        FromProto(s.Group), s.LastSeq, s.LastSequenceNr, s.NodeAddress, s.PendingMessages,
        ToImmutable(s.Deliveries, static d => new MemberDelivery(d.UserId, d.ConfirmedSeq, d.Pending)));

    private static GroupCreated FromProto(P.GroupCreated e) =>
        new(FromProto(e.Message, nameof(GroupCreated)), e.Name, e.ClientRequestId);

    private static P.GroupSnapshot ToProto(GroupSnapshot s)
    {
        var proto = new P.GroupSnapshot
        {
            Name = s.Name, CreatorId = s.CreatorId, ClientRequestId = s.ClientRequestId, LastSeq = s.LastSeq, LastStamp = s.LastStamp,
        };
        AddStrings(proto.Members, s.Members);
        AddStrings(proto.Admins, s.Admins);
        foreach (var r in s.Dedup)
        {
            proto.Dedup.Add(new P.GroupSentRecord
            {
                SenderId = r.SenderId, ClientMessageId = r.ClientMessageId, Seq = r.Seq, ServerTimestamp = r.ServerTimestamp,
                TextHash = r.TextHash,
            });
        }
        foreach (var posted in s.Window)
            proto.Window.Add(ToProto(posted));
        foreach (var c in s.Confirmed)
            proto.Confirmed.Add(ToProto(c));
        return proto;
    }

    private static GroupSnapshot FromProto(P.GroupSnapshot s) => new(
        s.Name, s.CreatorId, s.ClientRequestId, s.LastSeq, s.LastStamp, ToImmutable(s.Members), ToImmutable(s.Admins),
        ToImmutable(s.Dedup, static r => new GroupSentRecord(r.SenderId, r.ClientMessageId, r.Seq, r.ServerTimestamp, r.TextHash)),
        ToImmutable(s.Window, static p => FromProto(p)),
        ToImmutable(s.Confirmed, static c => FromProto(c)));

    // ---------------- collections ----------------
    // A default ImmutableArray is written as empty and read back as ImmutableArray.Empty: protobuf has no "absent"
    // list, and a default array in a record is a bug waiting for its first foreach anyway.

    // ---- delivery index ----

    private static MarkPending FromProto(P.MarkPending m) => new(m.IndexId, m.EntityId, m.Pending);

    private static P.PendingDeliveries ToProto(PendingDeliveries m)
    {
        var proto = new P.PendingDeliveries { IndexId = m.IndexId };
        AddStrings(proto.EntityIds, m.EntityIds);
        return proto;
    }

    private static PendingDeliveries FromProto(P.PendingDeliveries m) => new(m.IndexId, ToImmutable(m.EntityIds));

    private static PendingChanged FromProto(P.PendingChanged m) => new(m.EntityId, m.Pending);

    private static P.DeliveryIndexSnapshot ToProto(DeliveryIndexSnapshot m)
    {
        var proto = new P.DeliveryIndexSnapshot();
        AddStrings(proto.EntityIds, m.EntityIds);
        return proto;
    }

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
