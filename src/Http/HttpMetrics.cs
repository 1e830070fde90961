using System.Diagnostics;
using System.Diagnostics.Metrics;
using Messaging.Actors;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Messaging.Http;

/// <summary>What the edge records, on the node's "Messaging" meter (docs/operations.md lists every metric).</summary>
public static class HttpMetrics
{
    /// <summary>Every answered send, by <c>outcome</c>: the sendStatus the client got (Sent, Accepted, Duplicate, Invalid, ...).</summary>
    public static readonly Counter<long> Sends = MessagingMetrics.Meter.CreateCounter<long>(
        "messaging.sends", unit: "{send}", description: "Sends answered by the edge, by outcome (the sendStatus)");

    public static readonly Histogram<double> SendDuration = MessagingMetrics.Meter.CreateHistogram<double>(
        "messaging.send.duration", unit: "ms", description: "POST /v1/messages handling time at the edge, by outcome");

    public static readonly Counter<long> Unavailable = MessagingMetrics.Meter.CreateCounter<long>(
        "messaging.http.unavailable", unit: "{response}", description: "503 answers of the API, by reason");

    internal static void RecordSend(Results<Ok<SendMessageResponse>, ProblemHttpResult> result, long startedAt)
    {
        var outcome = result.Result switch
        {
            Ok<SendMessageResponse> { Value: { } ok } => ok.SendStatus,
            ProblemHttpResult problem when problem.ProblemDetails.Extensions.TryGetValue("sendStatus", out var status)
                => status as string ?? "Error",
            _ => "Error",
        };
        var tag = new KeyValuePair<string, object?>("outcome", outcome);
        Sends.Add(1, tag);
        SendDuration.Record(Stopwatch.GetElapsedTime(startedAt).TotalMilliseconds, tag);
    }

    private static long _liveStreams;

    // Observed rather than added to (as messaging.mailboxes.active): an exporter that starts listening after streams
    // opened would otherwise count their closing and not their opening, and report fewer than are open.
    public static readonly ObservableUpDownCounter<long> LiveStreams = MessagingMetrics.Meter.CreateObservableUpDownCounter(
        "messaging.live.streams", () => Interlocked.Read(ref _liveStreams), unit: "{stream}",
        description: "Live event streams open on this node");

    internal static void LiveStreamOpened() => Interlocked.Increment(ref _liveStreams);

    internal static void LiveStreamClosed() => Interlocked.Decrement(ref _liveStreams);

    internal static void RecordRateLimited() =>
        Sends.Add(1, new KeyValuePair<string, object?>("outcome", SendStatus.RateLimited));

    internal static void RecordUnavailable(string reason) =>
        Unavailable.Add(1, new KeyValuePair<string, object?>("reason", reason));
}

/// <summary>Low-cardinality reasons for a 503, the <c>reason</c> tag of messaging.http.unavailable.</summary>
public static class UnavailableReason
{
    public const string AskTimeout = "ask_timeout";
    public const string Cancelled = "cancelled";
    public const string MailboxRefused = "mailbox_refused";
    public const string MailboxUnavailable = "mailbox_unavailable";
    public const string Unexpected = "unexpected";
    /// <summary>A feature a node of an older release cannot read, refused while one is a member (or switched off).</summary>
    public const string FeatureOff = "feature_off";
    /// <summary>The node was paused longer than the pause guard's limit and is leaving the cluster.</summary>
    public const string NodePaused = "node_paused";
}
