using Akka.Actor;
using Akka.Cluster;
using Akka.Persistence;
using Messaging.Actors;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Messaging.Http;

/// <summary>/healthz/live: the process answers. /healthz/ready: an Up cluster member, not back from a long pause, whose journals answer (one at least).</summary>
public static class MessagingHealth
{
    public const string PathBase = "/healthz";
    public const string LivePath = PathBase + "/live";
    public const string ReadyPath = PathBase + "/ready";
    private const string Ready = "ready";

    public static IServiceCollection AddMessagingHealthChecks(this IServiceCollection services)
    {
        services.TryAddSingleton(JournalPartitions.AllOn(PersistencePlugins.Default)); // one journal unless the host says
        services.AddHealthChecks()
            .AddCheck<ClusterMemberUpCheck>("cluster-member-up", tags: [Ready])
            .AddCheck<NotPausedCheck>("not-paused", tags: [Ready])
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

/// <summary>Not ready once the pause guard refuses: the node was paused long enough for its mailboxes to have moved.</summary>
public sealed class NotPausedCheck(ActorSystem system) : IHealthCheck
{
    private readonly PauseGuard _guard = PauseGuard.Get(system);

    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(_guard.Refusal is { } paused
            ? HealthCheckResult.Unhealthy(paused)
            : HealthCheckResult.Healthy(_guard.Limit is { } limit ? $"no pause longer than {limit}" : "the pause guard is off"));
}

/// <summary>
/// Asks each journal (one per database server) to recover a probe persistence id (no events, so it only reads the
/// highest sequence number): a real query against each database. All answer: healthy. Some do not: degraded, which
/// is still ready (200), because the node serves every user whose partition is on a server that answers, and taking
/// every node out of the load balancer would turn one server's outage into everyone's. None answers: not ready.
/// </summary>
public sealed class JournalAnswersCheck(ActorSystem system, JournalPartitions partitions) : IHealthCheck
{
    private const string ProbePersistenceId = "healthz-probe";
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(3);

    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var journals = partitions.Plugins.Select(p => p.Journal).ToList();
        var failures = (await Task.WhenAll(journals.Select(journal => FailureOf(journal, cancellationToken))))
            .Where(failure => failure is not null).ToList();
        var named = journals.Count > 1;
        if (failures.Count == 0)
            return HealthCheckResult.Healthy(named ? $"all {journals.Count} journals answer" : "the journal answers");
        var description = string.Join("; ", failures);
        return failures.Count < journals.Count
            ? HealthCheckResult.Degraded($"{failures.Count} of {journals.Count} journals do not answer: {description}")
            : HealthCheckResult.Unhealthy(description);
    }

    private async Task<string?> FailureOf(string journalPluginId, CancellationToken cancellationToken)
    {
        var name = journalPluginId.Length == 0 ? "the journal" : journalPluginId;
        var journal = Persistence.Instance.Apply(system).JournalFor(journalPluginId);
        try
        {
            var answer = await journal.Ask<object>(
                replyTo => new ReplayMessages(1, 0, 0, ProbePersistenceId, replyTo), Deadline, cancellationToken);
            return answer switch
            {
                RecoverySuccess => null,
                ReplayMessagesFailure failure => $"{name} failed a read: {failure.Cause.Message}",
                _ => $"{name}: unexpected answer {answer.GetType().Name}",
            };
        }
        catch (Exception ex) when (ex is AskTimeoutException or OperationCanceledException)
        {
            return $"{name} did not answer within {Deadline.TotalSeconds} s";
        }
    }
}
