using System.Security.Claims;
using Messaging.Actors.Groups;
using Messaging.Actors.Upgrades;
using Microsoft.Extensions.DependencyInjection;
using Messaging.Http.OpenApi;
using Messaging.Messages;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;

namespace Messaging.Http;

/// <summary>
/// The /v1/groups routes of API.md: create, read, add or remove members, leave. Each asks the group entity (the one
/// writer of its membership); sending to a group is POST /v1/messages with the group's conversationId.
/// </summary>
public static class GroupsApi
{
    private const string Unauthenticated = "no token, bad signature, expired, wrong issuer or audience";
    private const string Unavailable = "the cluster cannot answer now; retrying is safe";
    private const string UpgradeNote = " (also while a node of a release without groups is in the cluster)";

    public static IEndpointRouteBuilder MapGroupsApi(this IEndpointRouteBuilder endpoints)
    {
        var groups = endpoints.MapGroup("/v1/groups").RequireAuthorization().WithTags(MessagingApi.Tag);
        // Group events and messages exist only once every node can read them (docs/operations.md, "Gated features").
        groups.AddEndpointFilter(async (context, next) =>
            context.HttpContext.RequestServices.GetRequiredService<ClusterFeatures>().StateOf(Feature.Groups) is { Enabled: false } off
                ? Problems.FeatureOff(off, context.HttpContext)
                : await next(context));

        groups.MapPost("", CreateGroup)
            .WithName("createGroup")
            .WithSummary("Create a group (idempotent per creator and clientRequestId)")
            .Accepts<CreateGroupRequest>("application/json")
            .Produces<GroupDto>(StatusCodes.Status201Created)
            .DescribeSuccess(
                "201: the group is created, its creator the first admin; every member's copy starts with a 'created' " +
                "message. 200: this creator already created it with this clientRequestId (the group as it is now).",
                ApiExamples.CreateGroup, ("group", ApiExamples.Group))
            .ProducesFailure(StatusCodes.Status400BadRequest,
                "malformed JSON, unknown members, a name that is not 1-100 characters, no members or too many, bad or repeated ids, the creator among the members")
            .ProducesFailure(StatusCodes.Status401Unauthorized, Unauthenticated)
            .ProducesFailure(StatusCodes.Status429TooManyRequests,
                "the creator opened the most new conversations allowed within the window (Messaging:Mailbox:MaxNewConversations; " +
                "groups they created count, as first messages do); Retry-After says when one more may be opened")
            .ProducesFailure(StatusCodes.Status503ServiceUnavailable, Unavailable + UpgradeNote);

        groups.MapGet("/{conversationId}", GetGroup)
            .WithName("getGroup")
            .WithSummary("A group's name, members and admins (members only)")
            .DescribeSuccess("The group.", null, ("group", ApiExamples.Group))
            .ProducesFailure(StatusCodes.Status400BadRequest, "conversationId is not a group's")
            .ProducesFailure(StatusCodes.Status401Unauthorized, Unauthenticated)
            .ProducesFailure(StatusCodes.Status403Forbidden, "the token's user is not a member")
            .ProducesFailure(StatusCodes.Status404NotFound, "there is no such group")
            .ProducesFailure(StatusCodes.Status503ServiceUnavailable, Unavailable);

        groups.MapPost("/{conversationId}/members", ChangeMembers)
            .WithName("changeGroupMembers")
            .WithSummary("Add or remove members (admins only)")
            .Accepts<MembersRequest>("application/json")
            .DescribeSuccess(
                "The group after the change. Every affected copy gets an 'added' or 'removed' message, in the group's " +
                "order: an added member's copy starts there, a removed member's ends there (and stays in their list). " +
                "Idempotent: users already members (or already not) are left as they are, so a retry is safe; with " +
                "nothing left to change nothing is stored.",
                ApiExamples.AddMember, ("group", ApiExamples.GroupWithDave))
            .ProducesFailure(StatusCodes.Status400BadRequest,
                "malformed JSON, unknown members, both or neither of add and remove, bad or repeated ids, removing oneself " +
                "(leave instead), more than Messaging:Groups:MaxMembers")
            .ProducesFailure(StatusCodes.Status401Unauthorized, Unauthenticated)
            .ProducesFailure(StatusCodes.Status403Forbidden, "the token's user is not an admin of the group")
            .ProducesFailure(StatusCodes.Status404NotFound, "there is no such group")
            .ProducesFailure(StatusCodes.Status503ServiceUnavailable, Unavailable);

        groups.MapPost("/{conversationId}/leave", Leave)
            .WithName("leaveGroup")
            .WithSummary("Leave a group (any member)")
            .DescribeSuccess(
                "The group after leaving. The leaver's copy ends with the 'left' message and stays in their list; when the " +
                "last admin leaves, the first remaining member (by id) becomes admin.",
                null, ("group", ApiExamples.Group))
            .ProducesFailure(StatusCodes.Status400BadRequest, "conversationId is not a group's")
            .ProducesFailure(StatusCodes.Status401Unauthorized, Unauthenticated)
            .ProducesFailure(StatusCodes.Status403Forbidden, "the token's user is not a member")
            .ProducesFailure(StatusCodes.Status404NotFound, "there is no such group")
            .ProducesFailure(StatusCodes.Status503ServiceUnavailable, Unavailable);

        return endpoints;
    }

    private static async Task<Results<Created<GroupDto>, Ok<GroupDto>, ProblemHttpResult>> CreateGroup(
        HttpContext http, ClaimsPrincipal principal, MailboxClient mailboxes, MessagingApiOptions options, CancellationToken cancellationToken)
    {
        var (request, invalid) = await MessagingApi.ReadBody(http, options, MessagingJsonContext.Default.CreateGroupRequest,
            "name, memberIds and clientRequestId", cancellationToken);
        if (invalid is not null)
            return invalid;
        var userId = principal.UserId();
        if (request!.Name is not { } name || name.Trim().Length == 0 || name.Length > GroupState.MaxNameLength)
            return Problems.Of(StatusCodes.Status400BadRequest, $"name must be 1-{GroupState.MaxNameLength} characters, not only spaces");
        if (request.ClientRequestId is not { } requestId || !Ids.IsValidClientMessageId(requestId))
            return Problems.Of(StatusCodes.Status400BadRequest, "clientRequestId must be 1-128 characters of [A-Za-z0-9._:-]");
        if (ValidateIds(request.MemberIds, "memberIds") is { } badIds)
            return badIds;
        if (request.MemberIds!.Contains(userId))
            return Problems.Of(StatusCodes.Status400BadRequest, "memberIds must not include the creator, who is a member anyway");

        var command = new CreateGroup(Ids.GroupFor(userId, requestId), userId, name, [.. request.MemberIds!.Select(m => m!)], requestId);
        // Anti-spam: a group its creator opens counts toward the new-conversation limit (its copy to the creator's
        // mailbox records it). Asked first, so between the answer and that copy a burst can pass the limit by the
        // creations in flight. A retry of a group already created is answered with the group whatever the limit,
        // also before its copy has reached the creator.
        if (await mailboxes.MayOpenAsync(userId, command.GroupId, cancellationToken) is { } refused)
        {
            if (refused is not MailboxFailure.RateLimited)
                return Problems.For(refused, http, options);
            var existing = await mailboxes.GroupAsync(new GetGroup(command.GroupId, userId), cancellationToken);
            return existing.Answered
                ? TypedResults.Ok(Views.Group(existing.Reply.Group))
                : Problems.For(existing.Failure is MailboxFailure.NotFound ? refused : existing.Failure, http, options);
        }
        var answer = await mailboxes.GroupAsync(command, cancellationToken);
        if (!answer.Answered)
            return Problems.For(answer.Failure, http, options);
        var group = Views.Group(answer.Reply.Group);
        return answer.Reply.Created ? TypedResults.Created($"/v1/groups/{group.ConversationId}", group) : TypedResults.Ok(group);
    }

    private static async Task<Results<Ok<GroupDto>, ProblemHttpResult>> GetGroup(
        string conversationId, HttpContext http, ClaimsPrincipal principal, MailboxClient mailboxes, MessagingApiOptions options,
        CancellationToken cancellationToken)
    {
        if (CheckGroupId(conversationId) is { } problem)
            return problem;
        return await Answer(new GetGroup(conversationId, principal.UserId()), http, mailboxes, options, cancellationToken);
    }

    private static async Task<Results<Ok<GroupDto>, ProblemHttpResult>> ChangeMembers(
        string conversationId, HttpContext http, ClaimsPrincipal principal, MailboxClient mailboxes, MessagingApiOptions options,
        CancellationToken cancellationToken)
    {
        if (CheckGroupId(conversationId) is { } problem)
            return problem;
        var (request, invalid) = await MessagingApi.ReadBody(http, options, MessagingJsonContext.Default.MembersRequest,
            "add or remove", cancellationToken);
        if (invalid is not null)
            return invalid;
        if ((request!.Add is null) == (request.Remove is null))
            return Problems.Of(StatusCodes.Status400BadRequest, "give exactly one of add or remove");
        var field = request.Add is null ? "remove" : "add";
        if (ValidateIds(request.Add ?? request.Remove, field) is { } badIds)
            return badIds;
        System.Collections.Immutable.ImmutableArray<string> ids = [.. (request.Add ?? request.Remove)!.Select(m => m!)];
        var command = request.Add is null
            ? new ChangeMembers(conversationId, principal.UserId(), [], ids)
            : new ChangeMembers(conversationId, principal.UserId(), ids, []);
        return await Answer(command, http, mailboxes, options, cancellationToken);
    }

    private static async Task<Results<Ok<GroupDto>, ProblemHttpResult>> Leave(
        string conversationId, HttpContext http, ClaimsPrincipal principal, MailboxClient mailboxes, MessagingApiOptions options,
        CancellationToken cancellationToken)
    {
        if (CheckGroupId(conversationId) is { } problem)
            return problem;
        return await Answer(new LeaveGroup(conversationId, principal.UserId()), http, mailboxes, options, cancellationToken);
    }

    private static async Task<Results<Ok<GroupDto>, ProblemHttpResult>> Answer(
        IGroupCommand command, HttpContext http, MailboxClient mailboxes, MessagingApiOptions options, CancellationToken cancellationToken)
    {
        var answer = await mailboxes.GroupAsync(command, cancellationToken);
        if (!answer.Answered)
            return Problems.For(answer.Failure, http, options);
        return TypedResults.Ok(Views.Group(answer.Reply.Group));
    }

    private static ProblemHttpResult? CheckGroupId(string conversationId) =>
        Ids.IsValidConversationId(conversationId) && Ids.IsGroup(conversationId)
            ? null
            : Problems.Of(StatusCodes.Status400BadRequest, $"conversationId must be a group's ({Ids.GroupPrefix}...)");

    /// <summary>At least one id, each a valid user id, none twice.</summary>
    private static ProblemHttpResult? ValidateIds(IReadOnlyList<string?>? ids, string field)
    {
        if (ids is null || ids.Count == 0)
            return Problems.Of(StatusCodes.Status400BadRequest, $"{field} must name at least one user");
        foreach (var id in ids)
        {
            if (!Ids.IsValidUserId(id))
                return Problems.Of(StatusCodes.Status400BadRequest, $"{field} holds '{id}': each must be {Ids.UserIdRule}");
        }
        if (ids.Distinct(StringComparer.Ordinal).Count() != ids.Count)
            return Problems.Of(StatusCodes.Status400BadRequest, $"{field} names a user twice");
        return null;
    }
}
