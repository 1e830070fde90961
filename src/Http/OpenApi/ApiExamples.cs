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
}
