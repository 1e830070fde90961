using System.Collections.Immutable;

namespace Messaging.Messages.Tests;

/// <summary>Realistic values in every field of every protocol type, plus the edge cases the wire format must keep.</summary>
public static class ProtocolSamples
{
    private const string Alice = "alice";
    private const string Bob = "bob.b-1";
    private const string Unicode = "Grüße 👋🏽 — שלום, 你好, e\u0301 \u0000 end";
    private static readonly string Conversation = Ids.ConversationFor(Alice, Bob);

    private static readonly ChatMessage Message = new(
        Ids.MessageId(Alice, 1_764_000_000_123), Conversation, Alice, [Bob], Unicode, "client:0001", 1_764_000_000_123);

    private static readonly ChatMessage Reply = new(
        Ids.MessageId(Bob, 1_764_000_000_456), Conversation, Bob, [Alice], "ok", "c-2", 1_764_000_000_456);

    private static readonly string Family = Ids.GroupFor(Alice, "req:1");

    private static readonly ChatMessage Created = new(
        Ids.GroupMessageId(Family, 1_764_000_000_001), Family, Alice, [], "", "req:1", 1_764_000_000_001,
        new GroupChange(GroupChange.Created, [Bob, "carol"]));

    private static readonly ChatMessage GroupMessage = new(
        Ids.GroupMessageId(Family, 1_764_000_001_000), Family, Alice, [], Unicode, "client:0002", 1_764_000_001_000);

    private static readonly ChatMessage Added = new(
        Ids.GroupMessageId(Family, 1_764_000_001_001), Family, Alice, [], "", "", 1_764_000_001_001,
        new GroupChange(GroupChange.Added, ["dave"]));

    private static readonly ConversationSnapshot ConversationSnapshot = new(
        Conversation, [Alice, Bob], "Grüße 👋🏽", 1_764_000_000_456, 6, [6, 4, 4], [new StoredMessage(5, Message), new StoredMessage(6, Reply)]);

    public static readonly IReadOnlyDictionary<string, IMessagingProtocol> All = new Dictionary<string, IMessagingProtocol>
    {
        ["SendMessage"] = new SendMessage(Alice, [Bob], Unicode, "client:0001"),
        ["SendMessage, several recipients"] = new SendMessage(Alice, [Bob, "carol", "dave"], "hi", "c-9"),
        ["SendMessage, no recipients"] = new SendMessage(Alice, [], "", "c-10"),
        ["GetConversations"] = new GetConversations(Alice, 20, 50, 1_764_000_000_000),
        ["GetThread, no seqs"] = new GetThread(Alice, Conversation, 10, 25, null, null),
        ["GetThread, zero seqs"] = new GetThread(Alice, Conversation, 0, 25, 0, 0),
        ["GetThread, before only"] = new GetThread(Alice, Conversation, 0, 25, 1234, null),
        ["GetThread, after only"] = new GetThread(Alice, Conversation, 3, 7, null, long.MaxValue),
        ["GetMailboxStatus"] = new GetMailboxStatus(Bob),
        ["GetMailboxStatus, before creating a group"] = new GetMailboxStatus(Alice, Family),
        ["DeliverMessage"] = new DeliverMessage(Bob, 42, Message),
        ["ConfirmDelivery"] = new ConfirmDelivery(Alice, Bob, 42),
        ["StopMailbox"] = StopMailbox.Instance,
        ["SendResult, sent"] = new SendResult(SendOutcome.Sent, Message.MessageId, Conversation, Message.ServerTimestamp, ""),
        ["SendResult, accepted"] = new SendResult(SendOutcome.Accepted, Message.MessageId, Conversation, Message.ServerTimestamp, "waiting"),
        ["SendResult, duplicate"] = new SendResult(SendOutcome.Duplicate, Message.MessageId, Conversation, 7, "dup"),
        ["SendResult, conflict"] = SendResult.Failure(SendOutcome.Conflict, "clientMessageId 'c' was already used — ✗"),
        ["SendResult, invalid"] = SendResult.Failure(SendOutcome.Invalid, "the message text is empty"),
        ["SendResult, unavailable"] = SendResult.Failure(SendOutcome.Unavailable, "journal down"),
        ["SendResult, rate limited"] = SendResult.Failure(SendOutcome.RateLimited, "too many new conversations") with { RetryAfterMs = 61_000 },
        ["ConversationsPage"] = new ConversationsPage(
            [
                new ConversationSummary(Conversation, [Alice, Bob], "Grüße 👋🏽", 1_764_000_000_456),
                new ConversationSummary("dm~alice~carol", [Alice, "carol"], "", 1),
            ],
            true),
        ["ConversationsPage, empty"] = new ConversationsPage([], false),
        ["ThreadPage"] = new ThreadPage([new StoredMessage(5, Message), new StoredMessage(6, Reply)]),
        ["ThreadPage, empty"] = new ThreadPage([]),
        ["ConversationNotFound"] = new ConversationNotFound("dm~alice~zed"),
        ["MailboxUnavailable"] = new MailboxUnavailable("thread read timed out after 00:00:05"),
        ["MailboxStatus"] = new MailboxStatus(Alice, "mailbox-alice", 123_456, 17, 3, "akka.tcp://messaging@10.0.0.7:4053"),
        ["MailboxStatus, may not open a conversation"] = new MailboxStatus(Alice, "mailbox-alice", 1, 200, 0, "akka.tcp://messaging@10.0.0.7:4053", 3_599_000),
        ["MailboxStatus, cold conversations"] = new MailboxStatus(Alice, "mailbox-alice", 9_000, 1_000, 0, "akka.tcp://messaging@10.0.0.7:4053", 0, 123_456),
        ["MessageSent"] = new MessageSent(Message, 5, new ThreadLinks(11, 8), 42),
        ["MessageSent, first of thread"] = new MessageSent(Message, 1, ThreadLinks.None, 1),
        ["MessageReceived"] = new MessageReceived(Reply, 6, 1_764_000_000_999, new ThreadLinks(12, 0), 7),
        ["DeliveriesConfirmed"] = new DeliveriesConfirmed(Bob, 42),
        ["WriterClaimed"] = new WriterClaimed("akka.tcp://messaging@10.0.0.7:4053", 1_764_000_000_999),
        ["StaleWritesResolved"] = new StaleWritesResolved(123_456),
        ["MailboxSnapshot"] = new MailboxSnapshot(
            1_764_000_000_999,
            [ConversationSnapshot, ConversationSnapshot with { ConversationId = "dm~alice~carol", Anchors = [], Recent = [] }],
            [
                new SentRecord("client:0001", Message.MessageId, Conversation, Bob, Message.ServerTimestamp, ulong.MaxValue),
                new SentRecord("c-2", "x", Conversation, Bob, 3, Ids.TextHash(Unicode)),
                new SentRecord("c-3", "y", Conversation, Bob, 4, 0),
            ],
            [
                new OutboundSnapshot(Bob, 43, [new DeliverMessage(Bob, 42, Message), new DeliverMessage(Bob, 43, Message)]),
                new OutboundSnapshot("carol", 0, []),
            ],
            [new InboundSnapshot(Bob, 7), new InboundSnapshot("carol", 0)]),
        ["MailboxSnapshot, 1.7.0 window as held"] = new MailboxSnapshot(
            1_764_000_000_999,
            [
                ConversationSnapshot with
                {
                    Recent = [], Tally = new Tally(1, Reply.ServerTimestamp),
                    Window = new CompactWindow([[10, 0xF4, 0x9F, 0x8C], [], [12, 2, 0]], [0, 1, 0]),
                },
                ConversationSnapshot with { ConversationId = "dm~alice~carol", Tally = new Tally(0, 0) },
            ],
            [], [], []),
        ["MailboxSnapshot, empty"] = new MailboxSnapshot(0, [], [], [], []),
        ["MailboxSnapshot, 1.8.0 cold"] = new MailboxSnapshot(1_764_000_000_999, [], [], [], [], [], 0, [0, 123_456, 0, 9], 3),
        ["ConversationsArchived"] = new ConversationsArchived(
            [
                new ColdPage(3, 5, [new ColdEntry(ConversationSnapshot with { Recent = [], Tally = new Tally(2, 1_764_000_000_100) }, 7, 44)]),
                new ColdPage(3, 1, []),
            ],
            [Conversation]),
        ["ConversationRestored"] = new ConversationRestored(
            new ColdEntry(ConversationSnapshot with { Recent = [], Tally = new Tally(2, 1_764_000_000_100) }, 7, 0)),
        ["MailboxSnapshot, openings"] = new MailboxSnapshot(1_764_000_000_999, [], [], [], [], [1_764_000_000_001, 1_764_000_000_999]),
        ["MailboxSnapshot, v1.1"] = new MailboxSnapshot(
            1_764_000_001_000,
            [
                ConversationSnapshot with
                {
                    Recent = [new StoredMessage(5, Message, new Tally(3, 1_764_000_000_100)), new StoredMessage(6, Reply, new Tally(4, Reply.ServerTimestamp))],
                    DeliveredUpToSeq = 6, ReadUpToSeq = 5, Tally = new Tally(4, Reply.ServerTimestamp),
                    Delivered = new Tally(4, Reply.ServerTimestamp), Read = new Tally(3, 1_764_000_000_100),
                    Receipts = [new ParticipantReceipt(Bob, new Receipt(Message.ServerTimestamp, 1_764_000_000_000))],
                },
                ConversationSnapshot with { ConversationId = "grp~x", Kind = ConversationSummary.GroupKind, Name = "Family 👪", Tally = new Tally(0, 0) },
            ],
            [],
            [
                new OutboundSnapshot(Bob, 44,
                [
                    new DeliverMessage(Bob, 42, Message),
                    new DeliverReceipt(Bob, 43, Alice, Conversation, new Receipt(1_764_000_000_456, 1_764_000_000_456)),
                    new DeliverMessage(Bob, 44, Message),
                ]),
            ],
            [new InboundSnapshot(Bob, 7)]),
        ["DeliverReceipt"] = new DeliverReceipt(Alice, 8, Bob, Conversation, new Receipt(1_764_000_000_123, 1_764_000_000_100)),
        ["MarkReceipts, both"] = new MarkReceipts(Alice, Conversation, 6, 5),
        ["MarkReceipts, read only"] = new MarkReceipts(Alice, Conversation, null, 0),
        ["MarkReceipts, delivered only"] = new MarkReceipts(Alice, Conversation, 3, null),
        ["ReceiptRefused"] = new ReceiptRefused("above lastSeq (6)"),
        ["ConversationAnswer"] = new ConversationAnswer(new ConversationSummary(
            Conversation, [Alice, Bob], "ok", 1_764_000_000_999, ConversationSummary.DirectKind, null, 6, 5, 1,
            [new ParticipantReceipt(Bob, new Receipt(1_764_000_000_123, 0))])),
        ["ConversationAnswer, group"] = new ConversationAnswer(new ConversationSummary(
            "grp~x", [Alice, Bob, "carol"], "", 9, ConversationSummary.GroupKind, "", 0, 0, 0)),
        ["Subscribe"] = new Subscribe(Alice, 1_764_000_000_999),
        ["Subscribe, live"] = new Subscribe(Alice, long.MaxValue),
        ["LiveChanges"] = new LiveChanges(
            [
                new ConversationChange(new ConversationSummary(Conversation, [Alice, Bob], "ok", 1_764_000_000_999, LastSeq: 6),
                    [new StoredMessage(6, Reply, new Tally(4, Reply.ServerTimestamp))]),
                new ConversationChange(new ConversationSummary("dm~alice~carol", [Alice, "carol"], "", 1_764_000_001_000), []),
            ],
            false, 1_764_000_001_000),
        ["LiveChanges, empty"] = new LiveChanges([], true),
        ["SubscriptionRefused"] = new SubscriptionRefused("10 streams"),
        ["SendTyping"] = new SendTyping(Alice, Conversation),
        ["TypingSent"] = new TypingSent(1_764_000_005_000),
        ["TypingNotice"] = new TypingNotice(Bob, Conversation, Alice, 1_764_000_005_000),
        ["KeepDelivering"] = new KeepDelivering(Alice),
        ["MessageSent, v1.1"] = new MessageSent(Message, 5, new ThreadLinks(11, 8), 42, new Tally(2, 1_764_000_000_000)),
        ["MessageReceived, v1.1"] = new MessageReceived(Reply, 6, 1_764_000_000_999, new ThreadLinks(12, 0), 7, new Tally(3, Reply.ServerTimestamp)),
        ["ReceiptsMarked"] = new ReceiptsMarked(Conversation, 6, 5, new Tally(4, 9), new Tally(3, 8), 1_764_000_001_001, Bob, 45),
        ["ReceiptsMarked, no copy"] = new ReceiptsMarked(Conversation, 2, 0, new Tally(0, 0), new Tally(0, 0), 3, Bob, 0),
        ["ReceiptReceived"] = new ReceiptReceived(Conversation, Bob, new Receipt(1_764_000_000_123, 1_764_000_000_100), 1_764_000_001_002, 8),
        ["CreateGroup"] = new CreateGroup(Family, Alice, "Family 👪", [Bob, "carol"], "req:1"),
        ["GetGroup"] = new GetGroup(Family, Bob),
        ["ChangeMembers, add"] = new ChangeMembers(Family, Alice, ["dave"], []),
        ["ChangeMembers, remove"] = new ChangeMembers(Family, Alice, [], [Bob, "carol"]),
        ["LeaveGroup"] = new LeaveGroup(Family, Bob),
        ["PostToGroup"] = new PostToGroup(Family, Alice, Unicode, "client:0002"),
        ["ConfirmGroupDelivery"] = new ConfirmGroupDelivery(Family, Bob, 17),
        ["KeepGroupDelivering"] = new KeepGroupDelivering(Family),
        ["GetGroupStatus"] = new GetGroupStatus(Family),
        ["StopGroup"] = StopGroup.Instance,
        ["DeliverGroupMessage"] = new DeliverGroupMessage(Bob, 17, 16, GroupMessage, "Family 👪", []),
        ["DeliverGroupMessage, first of a member"] = new DeliverGroupMessage("dave", 18, 0, Added, "Family 👪", [Alice, Bob, "dave"]),
        ["GroupAnswer"] = new GroupAnswer(new GroupView(Family, "Family 👪", [Alice, Bob, "carol"], [Alice]), Created: true),
        ["GroupRefused"] = new GroupRefused(GroupRefusal.Forbidden, "bob is not an admin"),
        ["GroupStatus"] = new GroupStatus(new GroupView(Family, "Family", [Alice, Bob], [Alice]), 18, 40, "akka.tcp://messaging@10.0.0.7:4053", 2,
            [new MemberDelivery(Alice, 18, 0), new MemberDelivery(Bob, 16, 2)]),
        ["GroupCreated"] = new GroupCreated(Created, "Family 👪", "req:1"),
        ["GroupPosted"] = new GroupPosted(17, GroupMessage),
        ["GroupPosted, added"] = new GroupPosted(18, Added),
        ["GroupSnapshot"] = new GroupSnapshot("Family 👪", Alice, "req:1", 18, Added.ServerTimestamp, [Alice, Bob, "dave"], [Alice],
            [new GroupSentRecord(Alice, "client:0002", 17, GroupMessage.ServerTimestamp, 0xFEDC_BA98_7654_3210)],
            [new GroupPosted(17, GroupMessage), new GroupPosted(18, Added)],
            [new DeliveriesConfirmed(Alice, 18), new DeliveriesConfirmed(Bob, 16)]),
        ["GroupSnapshot, empty"] = new GroupSnapshot("", "", "", 0, 0, [], [], [], [], []),
        ["MessageReceived, group"] = new MessageReceived(Added, 3, 1_764_000_002_000, new ThreadLinks(12, 8), 18, new Tally(1, 5),
            "Family 👪", [Alice, Bob, "dave"]),
        ["ReceiptsMarked, group"] = new ReceiptsMarked(Family, 6, 5, new Tally(4, 9), new Tally(3, 8), 1_764_000_001_001, "", 0,
            [new ChannelTarget(Bob, 45), new ChannelTarget("carol", 3)]),
        ["MarkPending"] = new MarkPending("mailbox-17", Alice, true),
        ["MarkPending, cleared"] = new MarkPending("group-3", Family, false),
        ["GetPendingDeliveries"] = new GetPendingDeliveries("mailbox-17"),
        ["PendingDeliveries"] = new PendingDeliveries("mailbox-17", [Alice, Bob]),
        ["PendingDeliveries, none"] = new PendingDeliveries("group-3", []),
        ["WakeForDelivery"] = new WakeForDelivery(Alice),
        ["PendingChanged"] = new PendingChanged(Alice, true),
        ["PendingChanged, cleared"] = new PendingChanged(Family, false),
        ["DeliveryIndexSnapshot"] = new DeliveryIndexSnapshot([Alice, Family]),
        ["DeliveryIndexSnapshot, empty"] = new DeliveryIndexSnapshot([]),
        ["SendResult, forbidden"] = SendResult.Failure(SendOutcome.Forbidden, "not a member"),
        ["SendResult, not found"] = SendResult.Failure(SendOutcome.NotFound, "no such group"),
    };

    public static TheoryData<string> Names()
    {
        var data = new TheoryData<string>();
        foreach (var name in All.Keys)
            data.Add(name);
        return data;
    }

    /// <summary>Every concrete protocol type in the contracts assembly: adding one without serializer support fails a test.</summary>
    public static IReadOnlyList<Type> ProtocolTypes() => typeof(IMessagingProtocol).Assembly.GetTypes()
        .Where(t => t is { IsClass: true, IsAbstract: false } && typeof(IMessagingProtocol).IsAssignableFrom(t))
        .OrderBy(t => t.Name, StringComparer.Ordinal)
        .ToList();

    public static TheoryData<Type> ProtocolTypeData()
    {
        var data = new TheoryData<Type>();
        foreach (var type in ProtocolTypes())
            data.Add(type);
        return data;
    }
}
