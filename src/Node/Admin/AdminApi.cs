using System.Security.Cryptography;
using System.Text;
using Akka.Actor;
using Messaging.Http;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Messaging.Node.Admin;

/// <summary>
/// The /admin routes the <c>admin</c> command talks to. Served only by <see cref="AdminServer"/>, on its own port,
/// never by the public API's listener; every route needs <c>Authorization: Bearer &lt;admin token&gt;</c>.
/// </summary>
public static class AdminApi
{
    public static IEndpointRouteBuilder MapAdminApi(this IEndpointRouteBuilder endpoints, string token)
    {
        var admin = endpoints.MapGroup("/admin").AddEndpointFilter((context, next) => RequireAdminToken(context, next, token));

        admin.MapGet("/cluster", (ClusterAdmin cluster) => TypedResults.Ok(cluster.Show()));
        admin.MapPost("/cluster/leave", (ClusterAdmin cluster, string? address, CancellationToken ct) =>
            Run(async () => TypedResults.Ok(await cluster.LeaveAsync(address, ct))));
        admin.MapPost("/cluster/down", (ClusterAdmin cluster, string? address, CancellationToken ct) =>
            Run(async () => TypedResults.Ok(await cluster.DownAsync(
                address ?? throw new AdminProblem(StatusCodes.Status400BadRequest, "address is required"), ct))));
        admin.MapPost("/cluster/down-unreachable", (ClusterAdmin cluster, CancellationToken ct) =>
            Run(async () => TypedResults.Ok(await cluster.DownUnreachableAsync(ct))));

        admin.MapGet("/sharding/regions", (ClusterAdmin cluster, CancellationToken ct) =>
            Run(async () => TypedResults.Ok(await cluster.RegionsAsync(ct))));
        admin.MapGet("/sharding/stats", (ClusterAdmin cluster, CancellationToken ct) =>
            Run(async () => TypedResults.Ok(await cluster.StatsAsync(ct))));
        admin.MapGet("/sharding/shards/{shardId}", (ClusterAdmin cluster, string shardId, CancellationToken ct) =>
            Run(async () => TypedResults.Ok(await cluster.ShardAsync(shardId, ct))));

        // status=false: only where it lives and whether it is active, without starting it.
        admin.MapGet("/mailboxes/{userId}", (ClusterAdmin cluster, string userId, bool? status, CancellationToken ct) =>
            Run(async () => TypedResults.Ok(await cluster.MailboxAsync(userId, status ?? true, ct))));
        admin.MapGet("/groups/{conversationId}", (ClusterAdmin cluster, string conversationId, CancellationToken ct) =>
            Run(async () => TypedResults.Ok(await cluster.GroupAsync(conversationId, ct))));
        return endpoints;
    }

    private static async Task<IResult> Run(Func<Task<IResult>> operation)
    {
        try
        {
            return await operation();
        }
        catch (AdminProblem problem)
        {
            return Problems.Of(problem.Status, problem.Message);
        }
        catch (AskTimeoutException ex)
        {
            return Problems.Of(StatusCodes.Status504GatewayTimeout, $"the cluster did not answer in time: {ex.Message}");
        }
    }

    private static async ValueTask<object?> RequireAdminToken(
        EndpointFilterInvocationContext context, EndpointFilterDelegate next, string expected)
    {
        var http = context.HttpContext;
        var header = http.Request.Headers.Authorization.ToString();
        const string scheme = "Bearer ";
        var presented = header.StartsWith(scheme, StringComparison.OrdinalIgnoreCase) ? header[scheme.Length..].Trim() : "";
        if (presented.Length == 0 || !CryptographicOperations.FixedTimeEquals(
                Encoding.UTF8.GetBytes(presented), Encoding.UTF8.GetBytes(expected)))
        {
            http.Response.Headers.WWWAuthenticate = "Bearer";
            return Problems.Of(StatusCodes.Status401Unauthorized,
                presented.Length == 0 ? "an admin token is required (Authorization: Bearer ...)" : "the admin token is wrong");
        }
        return await next(context);
    }
}
