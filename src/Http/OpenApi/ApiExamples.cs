using Messaging.Messages;

namespace Messaging.Http.OpenApi;

/// <summary>The operations' examples, as DTOs: alice writes to bob (the README's walk-through).</summary>
internal static class ApiExamples
{
    private const string Alice = "alice";
    private const string Bob = "bob";
    private const string ClientMessageId = "3f1c7a52-0001";
    private const long SentAt = 1_795_829_866_554;
    private static readonly string Conversation = Ids.ConversationFor(Alice, Bob);
    private static readonly string MessageId = Ids.MessageId(Alice, SentAt);

    public static readonly SendMessageRequest SendRequest = new(null, [Bob], "hi bob", ClientMessageId);

    public static readonly SendMessageResponse Sent = new(nameof(SendOutcome.Sent), MessageId, Conversation, SentAt);
    public static readonly SendMessageResponse Accepted = Sent with { SendStatus = nameof(SendOutcome.Accepted) };
    public static readonly SendMessageResponse Duplicate = Sent with { SendStatus = nameof(SendOutcome.Duplicate) };

    private static readonly ConversationDto AliceAndBob = new(
        Conversation, [Alice, Bob], "hi bob", SentAt + 141, ConversationSummary.DirectKind, null, LastSeq: 42, ReadUpToSeq: 40,
        UnreadCount: 2, new Dictionary<string, ReceiptDto> { [Bob] = new(SentAt, SentAt - 10_000) });

    public static readonly ConversationListResponse Conversations = new([AliceAndBob], IsDBupdate: true);

    public static readonly ReceiptsRequest ReceiptsRequest = new(null, 42);

    public static readonly ConversationDto ConversationAfterReceipt =
        AliceAndBob with { LastUpdatedTimestamp = SentAt + 2_000, ReadUpToSeq = 42, UnreadCount = 0 };

    public static readonly ConversationListResponse NoChanges = new([], IsDBupdate: false);

    public static readonly ThreadMessagesResponse Thread = new(
        [new ThreadMessageDto(MessageId, Conversation, 1, Alice, [Bob], "hi bob", ClientMessageId, SentAt, "delivered")]);

    private const long RepliedAt = SentAt + 4_000;

    /// <summary>
    /// alice's live stream, as the wire carries it: bob reads her message (a receipt, no messages), types, a
    /// keep-alive while he does, then his reply is stored in her mailbox (with the message, unread).
    /// </summary>
    public static readonly string LiveStream = string.Concat(
        LiveEvents.Event(new ConversationEventDto(
            AliceAndBob with
            {
                LastUpdatedTimestamp = SentAt + 1_850, LastSeq = 1, ReadUpToSeq = 0, UnreadCount = 0,
                Receipts = new Dictionary<string, ReceiptDto> { [Bob] = new(SentAt, SentAt) },
            },
            [])),
        LiveEvents.Event(new TypingEventDto(Conversation, Bob, Until: SentAt + 2_000 + 5_000)),
        LiveEvents.KeepAliveComment,
        LiveEvents.Event(new ConversationEventDto(
            AliceAndBob with
            {
                Snippet = "hi alice", LastUpdatedTimestamp = RepliedAt + 97, LastSeq = 2, ReadUpToSeq = 0, UnreadCount = 1,
                Receipts = new Dictionary<string, ReceiptDto> { [Bob] = new(SentAt, SentAt) },
            },
            [new ThreadMessageDto(Ids.MessageId(Bob, RepliedAt), Conversation, 2, Bob, [Alice], "hi alice", "9b2e41d0-0001", RepliedAt)])));

    private static readonly string Family = Ids.GroupFor(Alice, "7d2c1e90-0001");

    public static readonly SendMessageRequest GroupSendRequest = new(null, null, "dinner at 8?", ClientMessageId, Family);

    public static readonly CreateGroupRequest CreateGroup = new("Family", [Bob, "carol"], "7d2c1e90-0001");

    public static readonly GroupDto Group = new(Family, "Family", [Alice, Bob, "carol"], [Alice]);

    public static readonly MembersRequest AddMember = new(["dave"], null);

    public static readonly GroupDto GroupWithDave = Group with { ParticipantIds = [Alice, Bob, "carol", "dave"] };
}
