using System.ComponentModel;
using System.ComponentModel.DataAnnotations;
using System.Security.Claims;
using System.Text;
using System.Text.Json;
using Messaging.Actors.Upgrades;
using Messaging.Http.OpenApi;
using Messaging.Messages;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;

namespace Messaging.Http;

/// <summary>The /v1 routes of API.md: send, list conversations, read a thread, receipts, typing (live events: <see cref="LiveEvents"/>).</summary>
public static class MessagingApi
{
    /// <summary>Message text must be under 64 KiB of UTF-8.</summary>
    public const int MaxMessageBytes = 65_535;

    public const string Tag = "messaging";

    public const int DefaultConversationCount = 20;
    public const int MaxConversationCount = 100;
    public const int DefaultThreadCount = 50;
    public const int MaxThreadCount = 200;

    private const string Int64Max = "9223372036854775807";
    private const string Unauthenticated = "no token, bad signature, expired, wrong issuer or audience";
    private const string Unavailable = "the cluster cannot answer now";
    private const string ReadRateExceeded = "this user's read rate (conversation lists and thread pages) is exceeded";

    public static IEndpointRouteBuilder MapMessagingApi(this IEndpointRouteBuilder endpoints)
    {
        var v1 = endpoints.MapGroup("/v1").RequireAuthorization().WithTags(Tag);

        v1.MapPost("/messages", SendMessage)
            .WithName("sendMessage")
            .WithSummary("Send a message to one user or to a group (idempotent per clientMessageId)")
            .WithMetadata(SendRoute.Metadata)
            .RequireRateLimiting(SendRateLimiting.Policy)
            .Accepts<SendMessageRequest>("application/json")
            .DescribeSuccess(
                "The message is stored: sendStatus Sent (durable in the sender's and the recipient's mailbox), Accepted " +
                "(durable in the sender's; the recipient's copy is guaranteed to follow) or Duplicate (this clientMessageId " +
                "was already sent with the same recipient and text: the original's ids, nothing stored twice).",
                ApiExamples.SendRequest,
                ("sent", ApiExamples.Sent), ("accepted", ApiExamples.Accepted), ("duplicate", ApiExamples.Duplicate))
            .ProducesFailure(StatusCodes.Status400BadRequest,
                "malformed JSON, unknown members, missing or malformed fields, empty text, bad ids, wrong recipient count, " +
                "both or neither of recipientIds and conversationId",
                SendStatus.Invalid)
            .ProducesFailure(StatusCodes.Status401Unauthorized, Unauthenticated, SendStatus.Unauthorized)
            .ProducesFailure(StatusCodes.Status403Forbidden, "senderId is not the token's user, or the sender is not a member of the group",
                SendStatus.Forbidden)
            .ProducesFailure(StatusCodes.Status404NotFound, "there is no such group", SendStatus.NotFound)
            .ProducesFailure(StatusCodes.Status409Conflict,
                "the clientMessageId was already used by this sender with other recipients or other text", SendStatus.Conflict)
            .ProducesFailure(StatusCodes.Status413PayloadTooLarge,
                "the text is 64 KiB or more of UTF-8, or the body is far larger (refused without being read whole)",
                SendStatus.TooLarge)
            .ProducesFailure(StatusCodes.Status429TooManyRequests,
                "this user's send rate is exceeded, or they opened too many new conversations lately (first messages to users they have no conversation with)",
                SendStatus.RateLimited)
            .ProducesFailure(StatusCodes.Status503ServiceUnavailable,
                "the cluster cannot take the write now; retrying with the same clientMessageId is safe", SendStatus.Unavailable);

        v1.MapGet("/users/{userId}/conversations", FetchConversation)
            .WithName("fetchConversation")
            .WithSummary("A user's conversations changed after lastUpdatedTimestamp, newest first")
            .RequireRateLimiting(SendRateLimiting.ReadPolicy)
            .DescribeSuccess(
                "The page of conversations; isDBupdate false (and no conversations) when nothing changed since lastUpdatedTimestamp. " +
                "The list holds the user's most recently changed conversations, up to the node's MaxConversationsInMemory " +
                "(1,000 by default); an older conversation (1:1 or group) leaves it until it changes again, and its thread is still read by its id.",
                null, ("changes", ApiExamples.Conversations), ("current", ApiExamples.NoChanges))
            .ProducesFailure(StatusCodes.Status400BadRequest, "a malformed userId, or offset or count out of range or not a number")
            .ProducesFailure(StatusCodes.Status401Unauthorized, Unauthenticated)
            .ProducesFailure(StatusCodes.Status403Forbidden, "userId is not the token's user")
            .ProducesFailure(StatusCodes.Status429TooManyRequests, ReadRateExceeded)
            .ProducesFailure(StatusCodes.Status503ServiceUnavailable, Unavailable);

        v1.MapGet("/users/{userId}/conversations/{conversationId}/messages", GetThreadMessages)
            .WithName("getThreadMessages")
            .WithSummary("A page of one conversation, oldest first")
            .RequireRateLimiting(SendRateLimiting.ReadPolicy)
            .DescribeSuccess("The page of messages, oldest first.", null, ("page", ApiExamples.Thread))
            .ProducesFailure(StatusCodes.Status400BadRequest,
                "a malformed userId or conversationId, or offset, count, beforeSeq or afterSeq out of range or not a number")
            .ProducesFailure(StatusCodes.Status401Unauthorized, Unauthenticated)
            .ProducesFailure(StatusCodes.Status403Forbidden, "userId is not the token's user")
            .ProducesFailure(StatusCodes.Status404NotFound, "this user has no such conversation")
            .ProducesFailure(StatusCodes.Status429TooManyRequests, ReadRateExceeded)
            .ProducesFailure(StatusCodes.Status503ServiceUnavailable,
                Unavailable + ", an older page was not read from the journal in time, or this user already has as many " +
                "older pages being read as a mailbox allows at once");

        v1.MapPost("/users/{userId}/conversations/{conversationId}/receipts", PostReceipts)
            .WithName("postReceipts")
            .WithSummary("Move this user's delivered / read markers in a conversation (idempotent; markers only move forward)")
            .Accepts<ReceiptsRequest>("application/json")
            .DescribeSuccess(
                "The conversation after the receipt, durable in this user's mailbox; the other participants' copies " +
                "follow over the guaranteed channel. A marker at or below the current one changes nothing and still answers 200.",
                ApiExamples.ReceiptsRequest, ("updated", ApiExamples.ConversationAfterReceipt))
            .ProducesFailure(StatusCodes.Status400BadRequest,
                "malformed JSON, unknown members, no marker, a negative marker or one above the conversation's lastSeq")
            .ProducesFailure(StatusCodes.Status401Unauthorized, Unauthenticated)
            .ProducesFailure(StatusCodes.Status403Forbidden, "userId is not the token's user")
            .ProducesFailure(StatusCodes.Status404NotFound, "this user has no such conversation")
            .ProducesFailure(StatusCodes.Status503ServiceUnavailable, Unavailable + "; retrying is safe");

        v1.MapPost("/users/{userId}/conversations/{conversationId}/typing", PostTyping)
            .WithName("postTyping")
            .WithSummary("Tell the other participants' open live streams that this user is typing (5 s, never stored)")
            .RequireRateLimiting(SendRateLimiting.TypingPolicy)
            .Produces(StatusCodes.Status204NoContent)
            .DescribeSuccess(
                "Passed on: the other participants' open live streams get a typing event lasting 5 s. Best effort and " +
                "never stored, so nobody listening is no failure.",
                null)
            .ProducesFailure(StatusCodes.Status400BadRequest, "a malformed userId or conversationId")
            .ProducesFailure(StatusCodes.Status401Unauthorized, Unauthenticated)
            .ProducesFailure(StatusCodes.Status403Forbidden, "userId is not the token's user, or they are no longer a member of the group")
            .ProducesFailure(StatusCodes.Status404NotFound, "this user has no such conversation")
            .ProducesFailure(StatusCodes.Status429TooManyRequests, "this user's typing rate is exceeded")
            .ProducesFailure(StatusCodes.Status503ServiceUnavailable, Unavailable);

        return endpoints;
    }

    // ---------------- POST /v1/users/{userId}/conversations/{conversationId}/receipts ----------------

    private static async Task<Results<Ok<ConversationDto>, ProblemHttpResult>> PostReceipts(
        [Id(IdKind.User)] string userId, [Id(IdKind.Conversation)] string conversationId, HttpContext http,
        ClaimsPrincipal principal, MailboxClient mailboxes, ClusterFeatures features, MessagingApiOptions options,
        CancellationToken cancellationToken)
    {
        if (CheckConversation(userId, conversationId, principal, "a token may only move its own user's markers") is { } problem)
            return problem;
        var (request, invalid) = await ReadBody(http, options, MessagingJsonContext.Default.ReceiptsRequest,
            "deliveredUpToSeq and readUpToSeq", cancellationToken);
        if (invalid is not null)
            return invalid;
        if (request!.DeliveredUpToSeq is null && request.ReadUpToSeq is null)
            return Problems.Of(StatusCodes.Status400BadRequest, "give deliveredUpToSeq, readUpToSeq or both");
        if (request.DeliveredUpToSeq < 0 || request.ReadUpToSeq < 0)
            return Problems.Of(StatusCodes.Status400BadRequest, "deliveredUpToSeq and readUpToSeq must be >= 0");
        // A receipt is journaled (ReceiptsMarked) and crosses nodes (DeliverReceipt): none may exist while a node
        // that cannot read them is in the cluster, or could come back to it.
        if (features.StateOf(Feature.Receipts) is { Enabled: false } off)
            return Problems.FeatureOff(off, http);

        var answer = await mailboxes.MarkReceiptsAsync(
            new MarkReceipts(userId, conversationId, request.DeliveredUpToSeq, request.ReadUpToSeq), cancellationToken);
        if (!answer.Answered)
            return Problems.For(answer.Failure, http, options);
        return TypedResults.Ok(Views.Conversation(answer.Reply.Conversation));
    }

    // ---------------- POST /v1/users/{userId}/conversations/{conversationId}/typing ----------------

    private static async Task<Results<NoContent, ProblemHttpResult>> PostTyping(
        [Id(IdKind.User)] string userId, [Id(IdKind.Conversation)] string conversationId, HttpContext http,
        ClaimsPrincipal principal, MailboxClient mailboxes, MessagingApiOptions options, CancellationToken cancellationToken)
    {
        if (CheckConversation(userId, conversationId, principal, "a token may only type as its own user") is { } problem)
            return problem;
        var answer = await mailboxes.TypingAsync(new SendTyping(userId, conversationId), cancellationToken);
        if (!answer.Answered)
            return Problems.For(answer.Failure, http, options);
        return TypedResults.NoContent();
    }

    /// <summary>A small JSON body, with the contract's 400 for malformed JSON and unknown members.</summary>
    internal static async Task<(T?, ProblemHttpResult?)> ReadBody<T>(
        HttpContext http, MessagingApiOptions options, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type,
        string allowed, CancellationToken cancellationToken) where T : class
    {
        if (http.Request.ContentLength > options.MaxRequestBodyBytes)
        {
            http.Response.Headers.Connection = "close";
            // 400, not 413: API.md gives these routes no 413, and no valid body comes near the limit.
            return (null, Problems.Of(StatusCodes.Status400BadRequest,
                $"the request body is larger than {options.MaxRequestBodyBytes} bytes; a receipt is a small JSON object"));
        }
        try
        {
            var body = await JsonSerializer.DeserializeAsync(http.Request.Body, type, cancellationToken);
            return body is null
                ? (null, Problems.Of(StatusCodes.Status400BadRequest, "the request body must be a JSON object"))
                : (body, null);
        }
        catch (JsonException ex)
        {
            var where = string.IsNullOrEmpty(ex.Path) || ex.Path == "$" ? "" : $" at {ex.Path}";
            var detail = ex.Message.Contains("could not be mapped to any .NET member", StringComparison.Ordinal)
                ? $"unknown member{where}: only {allowed} are allowed"
                : $"malformed JSON body{where}: a JSON object with {allowed} is expected";
            return (null, Problems.Of(StatusCodes.Status400BadRequest, detail));
        }
    }

    // ---------------- POST /v1/messages ----------------

    private static async Task<Results<Ok<SendMessageResponse>, ProblemHttpResult>> SendMessage(
        HttpContext http, ClaimsPrincipal principal, MailboxClient mailboxes, ClusterFeatures features, MessagingApiOptions options,
        CancellationToken cancellationToken)
    {
        var startedAt = System.Diagnostics.Stopwatch.GetTimestamp();
        var result = await Send(http, principal, mailboxes, features, options, cancellationToken);
        HttpMetrics.RecordSend(result, startedAt);
        return result;
    }

    private static async Task<Results<Ok<SendMessageResponse>, ProblemHttpResult>> Send(
        HttpContext http, ClaimsPrincipal principal, MailboxClient mailboxes, ClusterFeatures features, MessagingApiOptions options,
        CancellationToken cancellationToken)
    {
        var (request, problem) = await ReadSendRequest(http, options, cancellationToken);
        if (problem is not null)
            return problem;

        var userId = principal.UserId();
        if (request!.SenderId is { } senderId && senderId != userId)
            return Problems.Send(StatusCodes.Status403Forbidden, SendStatus.Forbidden,
                "senderId must be the token's user");
        if ((ValidateAddress(request, userId) ?? ValidateContent(request)) is { } invalid)
            return invalid;

        if (request.ConversationId is not null && features.StateOf(Feature.Groups) is { Enabled: false } off)
            return Problems.FeatureOff(off, http);

        // A group's send goes to the group, which orders it; a 1:1 send to the sender's mailbox, which does.
        var answer = request.ConversationId is { } groupId
            ? await mailboxes.PostToGroupAsync(new PostToGroup(groupId, userId, request.Message!, request.ClientMessageId!), cancellationToken)
            : await mailboxes.SendAsync(
                new SendMessage(userId, [request.RecipientIds![0]!], request.Message!, request.ClientMessageId!), cancellationToken);
        if (!answer.Answered)
            return Problems.For(answer.Failure, http, options);
        var ok = answer.Reply;
        return TypedResults.Ok(new SendMessageResponse(ok.Outcome.ToString(), ok.MessageId, ok.ConversationId, ok.ServerTimestamp));
    }

    /// <summary>
    /// Reads the body itself, so malformed JSON gets the contract's problem details, and caps it first, so a huge
    /// body is refused from its Content-Length (or as soon as it passes the cap) without being read whole.
    /// </summary>
    private static async Task<(SendMessageRequest?, ProblemHttpResult?)> ReadSendRequest(
        HttpContext http, MessagingApiOptions options, CancellationToken cancellationToken)
    {
        var limit = options.MaxRequestBodyBytes;
        // Built only when needed: a problem result per request was garbage on every successful send.
        ProblemHttpResult TooLarge() => Problems.Send(StatusCodes.Status413PayloadTooLarge, SendStatus.TooLarge,
            $"the request body is larger than {limit} bytes");
        if (http.Request.ContentLength > limit)
        {
            http.Response.Headers.Connection = "close"; // don't drain a body we refused
            return (null, TooLarge());
        }
        if (http.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } sizeFeature)
            sizeFeature.MaxRequestBodySize = limit;

        try
        {
            var request = await JsonSerializer.DeserializeAsync(
                http.Request.Body, MessagingJsonContext.Default.SendMessageRequest, cancellationToken);
            return request is null
                ? (null, Invalid("the request body must be a JSON object"))
                : (request, null);
        }
        catch (JsonException ex)
        {
            return (null, Invalid(DescribeJsonError(ex)));
        }
        catch (BadHttpRequestException ex) when (ex.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            http.Response.Headers.Connection = "close";
            return (null, TooLarge());
        }
    }

    /// <summary>Says what is wrong in the client's terms, without .NET type names.</summary>
    private static string DescribeJsonError(JsonException ex)
    {
        var where = string.IsNullOrEmpty(ex.Path) || ex.Path == "$" ? "" : $" at {ex.Path}";
        if (ex.Message.Contains("could not be mapped to any .NET member", StringComparison.Ordinal))
            return $"unknown member{where}: only senderId, recipientIds, conversationId, message and clientMessageId are allowed";
        if (ex.Message.Contains("Duplicate", StringComparison.OrdinalIgnoreCase))
            return $"member given twice{where}: each of senderId, recipientIds, conversationId, message and clientMessageId at most once";
        return ex.LineNumber is { } line
            ? $"malformed JSON body{where} (line {line + 1}, byte {ex.BytePositionInLine + 1}): the body must be a JSON object with senderId, recipientIds, message and clientMessageId"
            : $"malformed JSON body{where}";
    }

    /// <summary>Exactly one of recipientIds (one user, 1:1) and conversationId (a group).</summary>
    private static ProblemHttpResult? ValidateAddress(SendMessageRequest request, string userId)
    {
        if (request.ConversationId is { } conversationId)
        {
            if (request.RecipientIds is not null)
                return Invalid("give recipientIds (1:1) or a group's conversationId, not both");
            return Ids.IsValidConversationId(conversationId) && Ids.IsGroup(conversationId)
                ? null
                : Invalid($"conversationId must be a group's ({Ids.GroupPrefix}...); a 1:1 message names its recipient in recipientIds");
        }
        if (request.RecipientIds is null)
            return Invalid("recipientIds is required: exactly one user id (or a group's conversationId instead)");
        if (request.RecipientIds.Count > 1)
            return Invalid("exactly one recipient: several people talk in a group (send with the group's conversationId)");
        if (request.RecipientIds.Count == 0)
            return Invalid("recipientIds must name exactly one recipient");
        if (!Ids.IsValidUserId(request.RecipientIds[0]))
            return Invalid($"recipientIds[0] must be {Ids.UserIdRule}");
        if (request.RecipientIds[0] == userId)
            return Invalid("the recipient must not be the sender");
        return null;
    }

    private static ProblemHttpResult? ValidateContent(SendMessageRequest request)
    {
        if (request.Message is null)
            return Invalid("message is required");
        if (request.Message.Length == 0)
            return Invalid("message must not be empty");
        if (Encoding.UTF8.GetByteCount(request.Message) > MaxMessageBytes)
            return Problems.Send(StatusCodes.Status413PayloadTooLarge, SendStatus.TooLarge,
                $"message must be under 64 KiB of UTF-8 (at most {MaxMessageBytes} bytes)");
        if (request.ClientMessageId is null)
            return Invalid("clientMessageId is required");
        if (!Ids.IsValidClientMessageId(request.ClientMessageId))
            return Invalid("clientMessageId must be 1-128 characters of [A-Za-z0-9._:-]");
        return null;
    }

    private static ProblemHttpResult Invalid(string detail) =>
        Problems.Send(StatusCodes.Status400BadRequest, SendStatus.Invalid, detail);

    // ---------------- GET /v1/users/{userId}/conversations ----------------

    private static async Task<Results<Ok<ConversationListResponse>, ProblemHttpResult>> FetchConversation(
        [Id(IdKind.User)] string userId, HttpContext http, ClaimsPrincipal principal, MailboxClient mailboxes,
        MessagingApiOptions options, CancellationToken cancellationToken,
        [Range(0, int.MaxValue), DefaultValue(0), Description("Conversations to skip, after the lastUpdatedTimestamp filter.")]
        int? offset = null,
        [Range(1, MaxConversationCount), DefaultValue(DefaultConversationCount)] int? count = null,
        [DefaultValue(0L), Description("Only conversations stamped after this (the largest stamp the client has seen).")]
        long? lastUpdatedTimestamp = null)
    {
        if (CheckUser(userId, principal) is { } problem)
            return problem;
        if (offset < 0)
            return Problems.Of(StatusCodes.Status400BadRequest, "offset must be >= 0");
        if (count is < 1 or > MaxConversationCount)
            return Problems.Of(StatusCodes.Status400BadRequest, $"count must be between 1 and {MaxConversationCount}");

        var answer = await mailboxes.ConversationsAsync(
            new GetConversations(userId, offset ?? 0, count ?? DefaultConversationCount, lastUpdatedTimestamp ?? 0), cancellationToken);
        if (!answer.Answered)
            return Problems.For(answer.Failure, http, options);
        var page = answer.Reply;
        return TypedResults.Ok(new ConversationListResponse(
            [.. page.Conversations.Select(Views.Conversation)],
            page.HasChanges));
    }

    // ---------------- GET /v1/users/{userId}/conversations/{conversationId}/messages ----------------

    private static async Task<Results<Ok<ThreadMessagesResponse>, ProblemHttpResult>> GetThreadMessages(
        [Id(IdKind.User)] string userId, [Id(IdKind.Conversation)] string conversationId, HttpContext http,
        ClaimsPrincipal principal, MailboxClient mailboxes, MessagingApiOptions options, CancellationToken cancellationToken,
        [Range(0, int.MaxValue), DefaultValue(0), Description("Messages to skip, counted back from the newest.")]
        int? offset = null,
        [Range(1, MaxThreadCount), DefaultValue(DefaultThreadCount)] int? count = null,
        [Range(typeof(long), "0", Int64Max), Description("Only messages with a smaller seq (before offset and count apply).")]
        long? beforeSeq = null,
        [Range(typeof(long), "0", Int64Max), Description("Only messages with a larger seq: what is new after the last one read.")]
        long? afterSeq = null)
    {
        if (CheckUser(userId, principal) is { } problem)
            return problem;
        if (!Ids.IsValidConversationId(conversationId))
            return Problems.Of(StatusCodes.Status400BadRequest, "conversationId is not a valid conversation id");
        if (offset < 0)
            return Problems.Of(StatusCodes.Status400BadRequest, "offset must be >= 0");
        if (count is < 1 or > MaxThreadCount)
            return Problems.Of(StatusCodes.Status400BadRequest, $"count must be between 1 and {MaxThreadCount}");
        if (beforeSeq < 0 || afterSeq < 0)
            return Problems.Of(StatusCodes.Status400BadRequest, "beforeSeq and afterSeq must be >= 0");

        var answer = await mailboxes.ThreadAsync(
            new GetThread(userId, conversationId, offset ?? 0, count ?? DefaultThreadCount, beforeSeq, afterSeq), cancellationToken);
        if (!answer.Answered)
            return Problems.For(answer.Failure, http, options);
        var page = answer.Reply;
        return TypedResults.Ok(new ThreadMessagesResponse(
            [.. page.Messages.Select(m => Views.Message(m, userId, page.Receipts))]));
    }

    /// <summary><see cref="CheckUser"/>, and a well-formed conversation id.</summary>
    private static ProblemHttpResult? CheckConversation(string userId, string conversationId, ClaimsPrincipal principal, string forbidden) =>
        CheckUser(userId, principal, forbidden)
        ?? (Ids.IsValidConversationId(conversationId)
            ? null
            : Problems.Of(StatusCodes.Status400BadRequest, "conversationId is not a valid conversation id"));

    internal static ProblemHttpResult? CheckUser(
        string userId, ClaimsPrincipal principal, string forbidden = "a token may only read its own user's mailbox")
    {
        if (!Ids.IsValidUserId(userId))
            return Problems.Of(StatusCodes.Status400BadRequest, $"userId must be {Ids.UserIdRule}");
        if (userId != principal.UserId())
            return Problems.Of(StatusCodes.Status403Forbidden, forbidden);
        return null;
    }
}
