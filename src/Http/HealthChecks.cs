using Akka.Actor;
using Akka.Cluster;
using Akka.Persistence;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Messaging.Http;

/// <summary>/healthz/live: the process answers. /healthz/ready: an Up cluster member whose journal answers.</summary>
public static class MessagingHealth
{
    public const string LivePath = "/healthz/live";
    public const string ReadyPath = "/healthz/ready";
    private const string Ready = "ready";

    public static IServiceCollection AddMessagingHealthChecks(this IServiceCollection services)
    {
        services.AddHealthChecks()
            .AddCheck<ClusterMemberUpCheck>("cluster-member-up", tags: [Ready])
            .AddCheck<JournalAnswersCheck>("journal-answers", tags: [Ready], timeout: TimeSpan.FromSeconds(5));
        return services;
    }

    public static IEndpointRouteBuilder MapMessagingHealth(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapHealthChecks(LivePath, new HealthCheckOptions { Predicate = _ => false });
        endpoints.MapHealthChecks(ReadyPath, new HealthCheckOptions { Predicate = c => c.Tags.Contains(Ready) });
        return endpoints;
    }
}

public sealed class ClusterMemberUpCheck(ActorSystem system) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var self = Cluster.Get(system).SelfMember;
        return Task.FromResult(self.Status == MemberStatus.Up
            ? HealthCheckResult.Healthy($"{self.Address} is Up")
            : HealthCheckResult.Unhealthy($"{self.Address} is {self.Status}"));
    }
}

/// <summary>
/// Asks the default journal to recover a probe persistence id (no events, so it only reads the highest sequence
/// number): a real query against the database, so readiness fails when the database is unreachable.
/// </summary>
public sealed class JournalAnswersCheck(ActorSystem system) : IHealthCheck
{
    private const string ProbePersistenceId = "healthz-probe";
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(3);

    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var journal = Persistence.Instance.Apply(system).JournalFor(null);
        try
        {
            var answer = await journal.Ask<object>(
                replyTo => new ReplayMessages(1, 0, 0, ProbePersistenceId, replyTo), Deadline, cancellationToken);
            return answer switch
            {
                RecoverySuccess => HealthCheckResult.Healthy("the journal answers"),
                ReplayMessagesFailure failure => HealthCheckResult.Unhealthy("the journal failed a read", failure.Cause),
                _ => HealthCheckResult.Unhealthy($"unexpected journal answer {answer.GetType().Name}"),
            };
        }
        catch (Exception ex) when (ex is AskTimeoutException or OperationCanceledException)
        {
            return HealthCheckResult.Unhealthy($"the journal did not answer within {Deadline.TotalSeconds} s");
        }
    }
}
