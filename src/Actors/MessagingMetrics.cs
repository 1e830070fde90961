using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Messaging.Actors;

/// <summary>
/// The node's one <see cref="System.Diagnostics.Metrics.Meter"/> ("Messaging"); the instruments the mailbox itself
/// records live here, the edge's in Messaging.Http. Recording without tags allocates nothing.
/// </summary>
public static class MessagingMetrics
{
    public const string MeterName = "Messaging";

    public static readonly Meter Meter = new(MeterName, "1.0");

    /// <summary>From the PersistAsync call to its handler: the journal's write latency as the mailbox sees it.</summary>
    public static readonly Histogram<double> JournalWriteDuration = Meter.CreateHistogram<double>(
        "messaging.journal.write.duration", unit: "ms",
        description: "Time from a mailbox's PersistAsync call to its handler (the event is durable)");

    private static long _activeMailboxes;

    // Observed rather than added to: the exported number is the live count whenever the exporter started listening.
    private static readonly ObservableUpDownCounter<long> ActiveMailboxes = Meter.CreateObservableUpDownCounter(
        "messaging.mailboxes.active", () => Interlocked.Read(ref _activeMailboxes), unit: "{mailbox}",
        description: "Mailbox actors running in this process (started minus stopped)");

    internal static void MailboxStarted() => Interlocked.Increment(ref _activeMailboxes);

    internal static void MailboxStopped() => Interlocked.Decrement(ref _activeMailboxes);

    private static long _duplicateDeliveries;

    // Copies a recipient's mailbox already had (a sender's resend): dropped, confirmed again, never stored twice.
    // Observed, so it is exported as 0 from the start (a plain counter appears only with its first value).
    private static readonly ObservableCounter<long> DuplicateDeliveries = Meter.CreateObservableCounter(
        "messaging.deliveries.duplicate", () => Interlocked.Read(ref _duplicateDeliveries), unit: "{delivery}",
        description: "Redelivered copies a recipient mailbox already had, dropped without a write");

    internal static void DuplicateDelivery() => Interlocked.Increment(ref _duplicateDeliveries);

    private static long _shed;

    // Mailboxes and groups that passivated because the governor asked (MemoryGovernor). Observed rather than added to,
    // so it is exported as 0 from the start: a scrape without it is a node without the governor (the soak shows "-").
    private static readonly ObservableCounter<long> Shed = Meter.CreateObservableCounter(
        "messaging.mailboxes.shed", () => Interlocked.Read(ref _shed), unit: "{mailbox}",
        description: "Mailboxes and groups passivated because the node's heap was above its high water mark");

    internal static void MailboxShed() => Interlocked.Increment(ref _shed);

    private static long _stopSnapshotsGivenUp;

    // Snapshots on the way out (SingleWriterActor) given up at the stop's timeout: no turn came (SnapshotGate) or the
    // store did not answer in time. Nothing is lost; the entity replays more when it wakes. Exported from the start.
    private static readonly ObservableCounter<long> StopSnapshotsGivenUp = Meter.CreateObservableCounter(
        "messaging.passivation.snapshots.skipped", () => Interlocked.Read(ref _stopSnapshotsGivenUp), unit: "{snapshot}",
        description: "Snapshots on passivation given up: no turn, or no answer from the store, within the stop's timeout");

    internal static long StopSnapshotsGivenUpCount => Interlocked.Read(ref _stopSnapshotsGivenUp);

    internal static void StopSnapshotGivenUp() => Interlocked.Increment(ref _stopSnapshotsGivenUp);

    private static long _snapshotsWaiting;

    // Entities in line at their node's SnapshotGate (idle ones wait as long as the line takes; stops within their
    // timeout). Observed, so exported as 0 from the start.
    private static readonly ObservableUpDownCounter<long> SnapshotsWaiting = Meter.CreateObservableUpDownCounter(
        "messaging.passivation.snapshots.waiting", () => Interlocked.Read(ref _snapshotsWaiting), unit: "{snapshot}",
        description: "Mailboxes and groups waiting for a turn to take their snapshot before they passivate or stop");

    internal static void SnapshotLineChanged(int by) => Interlocked.Add(ref _snapshotsWaiting, by);

    private static long _archived;
    private static long _restored;
    private static long _coldReadsFailed;
    private static long _channelsArchived;

    // Cold conversations (MailboxState.Cold.cs): taken out of memory past MaxConversationsInMemory, brought back when
    // needed, and page reads that failed (the command that waited got 503). Observed, so exported as 0 from the start.
    private static readonly ObservableCounter<long> Archived = Meter.CreateObservableCounter(
        "messaging.conversations.archived", () => Interlocked.Read(ref _archived), unit: "{conversation}",
        description: "Conversations that went cold: out of a mailbox's memory and snapshot, into a page of its journal");

    private static readonly ObservableCounter<long> Restored = Meter.CreateObservableCounter(
        "messaging.conversations.restored", () => Interlocked.Read(ref _restored), unit: "{conversation}",
        description: "Cold conversations brought back into a mailbox's memory by a message, receipt or marker");

    private static readonly ObservableCounter<long> ColdReadsFailed = Meter.CreateObservableCounter(
        "messaging.conversations.cold_reads.failed", () => Interlocked.Read(ref _coldReadsFailed), unit: "{read}",
        description: "Reads of a cold page that failed or timed out (a command that waited got 503; an archive is tried again later)");

    private static readonly ObservableCounter<long> ChannelsArchived = Meter.CreateObservableCounter(
        "messaging.channels.archived", () => Interlocked.Read(ref _channelsArchived), unit: "{channel}",
        description: "Channels with people met only in groups (no 1:1 conversation) that went cold with nothing else: " +
            "their positions out of a mailbox's memory and snapshot, into a page of its journal (release 1.10.0)");

    internal static void ConversationArchived() => Interlocked.Increment(ref _archived);

    internal static void ChannelArchived() => Interlocked.Increment(ref _channelsArchived);

    internal static void ConversationRestored() => Interlocked.Increment(ref _restored);

    internal static void ColdReadFailed() => Interlocked.Increment(ref _coldReadsFailed);

    internal static void RecordJournalWrite(long startedAt) =>
        JournalWriteDuration.Record(Stopwatch.GetElapsedTime(startedAt).TotalMilliseconds);
}
