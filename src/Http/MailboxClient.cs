using System.Diagnostics.CodeAnalysis;
using Akka.Actor;
using Akka.Hosting;
using Messaging.Actors;
using Messaging.Actors.Groups;
using Messaging.Messages;

namespace Messaging.Http;

/// <summary>
/// The HTTP edge's only way into the cluster: an ask of the mailbox shard region with a deadline, answered with the
/// reply the query expects or a <see cref="MailboxFailure"/>. A timeout, a cancelled request or an answer of another
/// kind is a failure too, so no cluster trouble ever becomes a 500.
/// </summary>
public sealed class MailboxClient(
    IRequiredActor<MailboxRegion> region, IRequiredActor<GroupRegion> groups, MessagingApiOptions options)
{
    /// <summary>A stored (or already stored) send; the mailbox's refusals are failures.</summary>
    public async Task<MailboxAnswer<SendResult>> SendAsync(SendMessage command, CancellationToken cancellationToken) =>
        await AskAsync(command, cancellationToken) switch
        {
            SendResult result => ToAnswer(result),
            var other => Unexpected(other),
        };

    private static MailboxAnswer<SendResult> ToAnswer(SendResult result) => result switch
    {
        { Outcome: SendOutcome.Sent or SendOutcome.Accepted or SendOutcome.Duplicate } ok => ok,
        { Outcome: SendOutcome.Conflict } conflict => new MailboxFailure.Conflict(conflict.Detail),
        { Outcome: SendOutcome.Invalid } rejected => new MailboxFailure.Invalid(rejected.Detail),
        { Outcome: SendOutcome.Unavailable } refused => new MailboxFailure.Unavailable(UnavailableReason.MailboxRefused, refused.Detail),
        { Outcome: SendOutcome.RateLimited } limited => new MailboxFailure.RateLimited(limited.Detail, TimeSpan.FromMilliseconds(limited.RetryAfterMs)),
        _ => Unexpected(result),
    };

    public async Task<MailboxAnswer<ConversationsPage>> ConversationsAsync(
        GetConversations query, CancellationToken cancellationToken) =>
        await AskAsync(query, cancellationToken) switch
        {
            ConversationsPage page => page,
            var other => Unexpected(other),
        };

    public async Task<MailboxAnswer<ThreadPage>> ThreadAsync(GetThread query, CancellationToken cancellationToken) =>
        await AskAsync(query, cancellationToken) switch
        {
            ThreadPage page => page,
            ConversationNotFound => NotFound(query.UserId, query.ConversationId),
            var other => Unexpected(other),
        };

    public async Task<MailboxAnswer<ConversationAnswer>> MarkReceiptsAsync(MarkReceipts command, CancellationToken cancellationToken) =>
        await AskAsync(command, cancellationToken) switch
        {
            ConversationAnswer answer => answer,
            ReceiptRefused refused => new MailboxFailure.Invalid(refused.Detail),
            ConversationNotFound => NotFound(command.UserId, command.ConversationId),
            var other => Unexpected(other),
        };

    public async Task<MailboxAnswer<TypingSent>> TypingAsync(SendTyping command, CancellationToken cancellationToken) =>
        await AskAsync(command, cancellationToken) switch
        {
            TypingSent sent => sent,
            ConversationNotFound => NotFound(command.UserId, command.ConversationId),
            GroupRefused refused => new MailboxFailure.Forbidden(refused.Detail),
            var other => Unexpected(other),
        };

    /// <summary>A group send: answered like a 1:1 send, plus 403 for a non-member and 404 for an unknown group.</summary>
    public async Task<MailboxAnswer<SendResult>> PostToGroupAsync(PostToGroup command, CancellationToken cancellationToken) =>
        await AskAsync(command, cancellationToken) switch
        {
            SendResult { Outcome: SendOutcome.Forbidden } forbidden => new MailboxFailure.Forbidden(forbidden.Detail),
            SendResult { Outcome: SendOutcome.NotFound } missing => new MailboxFailure.NotFound(missing.Detail),
            SendResult result => ToAnswer(result),
            var other => Unexpected(other),
        };

    /// <summary>Create, read, add, remove, leave: the group as it is afterwards, or why not.</summary>
    public async Task<MailboxAnswer<GroupAnswer>> GroupAsync(IGroupCommand command, CancellationToken cancellationToken) =>
        await AskAsync(command, cancellationToken) switch
        {
            GroupAnswer answer => answer,
            GroupRefused { Reason: GroupRefusal.NotFound } refused => new MailboxFailure.NotFound(refused.Detail),
            GroupRefused { Reason: GroupRefusal.Forbidden } refused => new MailboxFailure.Forbidden(refused.Detail),
            GroupRefused refused => new MailboxFailure.Invalid(refused.Detail),
            var other => Unexpected(other),
        };

    /// <summary>
    /// Whether <paramref name="userId"/> may open <paramref name="conversationId"/> (a group they create) now: null if
    /// so, else 429 with when they may (the new-conversation limit, <see cref="MailboxLimits.MaxNewConversations"/>).
    /// </summary>
    public async Task<MailboxFailure?> MayOpenAsync(string userId, string conversationId, CancellationToken cancellationToken) =>
        await AskAsync(new GetMailboxStatus(userId, conversationId), cancellationToken) switch
        {
            MailboxStatus { OpeningWaitMs: <= 0 } => null,
            MailboxStatus status => new MailboxFailure.RateLimited(
                $"{userId} opened the most new conversations (groups they created count) allowed within the window; " +
                "messages in existing conversations are not limited; retry later", TimeSpan.FromMilliseconds(status.OpeningWaitMs)),
            var other => Unexpected(other),
        };

    private static MailboxFailure.NotFound NotFound(string userId, string conversationId) =>
        new($"conversation '{conversationId}' is not in {userId}'s mailbox");

    /// <summary>The mailbox's (or group's) reply, or the failure the ask itself ended in.</summary>
    private async Task<object> AskAsync(IMessagingProtocol command, CancellationToken cancellationToken)
    {
        try
        {
            var target = command is IGroupCommand
                ? await groups.GetAsync(cancellationToken)
                : await region.GetAsync(cancellationToken);
            return await target.Ask<object>(command, options.AskTimeout, cancellationToken);
        }
        catch (AskTimeoutException)
        {
            return new MailboxFailure.Unavailable(UnavailableReason.AskTimeout,
                $"the mailbox did not answer within {options.AskTimeout.TotalSeconds:0.###} s");
        }
        catch (OperationCanceledException)
        {
            return new MailboxFailure.Unavailable(UnavailableReason.Cancelled,
                "the request was cancelled before the mailbox answered");
        }
    }

    /// <summary>Whatever no query expects: the mailbox could not answer, the ask failed, or it answered something else.</summary>
    private static MailboxFailure Unexpected(object reply) => reply switch
    {
        MailboxFailure failure => failure,
        MailboxUnavailable unavailable => new MailboxFailure.Unavailable(UnavailableReason.MailboxUnavailable, unavailable.Reason),
        _ => new MailboxFailure.Unavailable(UnavailableReason.Unexpected,
            $"unexpected answer from the mailbox: {reply.GetType().Name}"),
    };
}

/// <summary>The reply a mailbox query expects, or why the edge has none (<see cref="Problems.For"/> answers that).</summary>
public readonly record struct MailboxAnswer<T>(T? Reply, MailboxFailure? Failure) where T : class
{
    [MemberNotNullWhen(true, nameof(Reply))]
    [MemberNotNullWhen(false, nameof(Failure))]
    public bool Answered => Reply is not null;

    public static implicit operator MailboxAnswer<T>(T reply) => new(reply, null);

    public static implicit operator MailboxAnswer<T>(MailboxFailure failure) => new(null, failure);
}

/// <summary>Why a mailbox query has no answer the client can have; each case is one kind of problem details.</summary>
public abstract record MailboxFailure(string Detail)
{
    /// <summary>The mailbox refused a send whose clientMessageId was used for another message (409).</summary>
    public sealed record Conflict(string Detail) : MailboxFailure(Detail);

    /// <summary>The mailbox refused the command as invalid (400).</summary>
    public sealed record Invalid(string Detail) : MailboxFailure(Detail);

    /// <summary>The mailbox has no such conversation, or there is no such group (404).</summary>
    public sealed record NotFound(string Detail) : MailboxFailure(Detail);

    /// <summary>The user may not do this to the group: not a member, or not an admin (403).</summary>
    public sealed record Forbidden(string Detail) : MailboxFailure(Detail);

    /// <summary>The user opened too many new conversations lately (429); a retry after <see cref="RetryAfter"/> can succeed.</summary>
    public sealed record RateLimited(string Detail, TimeSpan RetryAfter) : MailboxFailure(Detail);

    /// <summary>No answer now, the client may retry (503); <see cref="Reason"/> tags the 503 metric.</summary>
    public sealed record Unavailable(string Reason, string Detail) : MailboxFailure(Detail);
}
