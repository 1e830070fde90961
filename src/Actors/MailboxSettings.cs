namespace Messaging.Actors;

/// <summary>
/// Everything a mailbox needs to know that is not in its journal. The node binds it from <c>Messaging:Mailbox</c>
/// (every property but <see cref="Clock"/> is a key there, the <see cref="Limits"/> sitting beside the rest), so a
/// default declared here is the configuration's default.
/// </summary>
public sealed record MailboxSettings
{
    public MailboxLimits Limits { get; init; } = new();

    /// <summary>How long a send waits for the recipient's copy before answering <c>Accepted</c> instead of <c>Sent</c>.</summary>
    public TimeSpan DeliveryWait { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>An unconfirmed copy is sent again after this long without an answer from the recipient.</summary>
    public TimeSpan RedeliveryInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// How many unconfirmed copies of one channel go out again at once. The recipient stores only the next one in
    /// line, so a batch larger than the gap it fills only costs bandwidth; the next batch follows its confirmation.
    /// </summary>
    public int ResendBatch { get; init; } = 100;

    /// <summary>
    /// Confirmations only spare a restart from resending (the recipient drops what it has), so they are journaled
    /// lazily: when a channel has this many confirmed copies not yet journaled, when the mailbox stops or moves, and
    /// at most <see cref="ConfirmationFlushInterval"/> after a confirmation. That keeps a send at two journal writes
    /// (one per copy) instead of three for users who send now and then.
    /// </summary>
    public int ConfirmationBatch { get; init; } = 100;

    public TimeSpan ConfirmationFlushInterval { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>A snapshot is taken after this many events, bounding recovery to one snapshot plus at most this many events.</summary>
    public int SnapshotEvery { get; init; } = 1000;

    /// <summary>
    /// A mailbox that passivates (or is rebalanced) with at least this many events since its last snapshot takes one
    /// before it stops, so it wakes with one snapshot and few events to replay instead of up to
    /// <see cref="SnapshotEvery"/>; 0 never does. A leaving node's hand-off takes none.
    /// </summary>
    public int SnapshotOnPassivationAfter { get; init; } = 100;

    /// <summary>How long a stop waits for that snapshot; past it the mailbox stops without. Not configuration.</summary>
    public TimeSpan SnapshotOnPassivationTimeout { get; internal init; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Those snapshots (mailboxes' and groups') one node takes at once; the others wait their turn within
    /// <see cref="SnapshotOnPassivationTimeout"/> (a turn in its last fifth is passed on), then stop without one. Mailboxes that went idle together passivate
    /// together, and thousands of snapshots at once held the journal's connections for seconds (<see cref="SnapshotGate"/>).
    /// </summary>
    public int MaxPassivationSnapshotsPerNode { get; init; } = 8;

    /// <summary>
    /// Deadline for a thread page read from the journal, from the read's start: past it the reader answers 503 and
    /// stops. Shorter than the edge's AskTimeout, so nothing is still read for a client that was answered 503.
    /// </summary>
    public TimeSpan JournalReadTimeout { get; init; } = TimeSpan.FromSeconds(3);

    /// <summary>
    /// The widest journal range a thread page is read in at once. The range between a page's first and last message
    /// also holds the user's other conversations' events; when it is wider than this, the page is walked along its
    /// links instead, in blocks of entries while it is dense (at most this many entries in blocks), else message by
    /// message, so one read goes through at most this many entries plus the page and its O(log depth) lookups. 4,000
    /// (2,000 before issue 12's tail work): in histories where conversations come in long bursts, finding a page 10,000 deep
    /// within 2,000 often left the rest of the page to one request per message.
    /// </summary>
    public int JournalReadMaxRange { get; init; } = 4000;

    /// <summary>Thread pages (and receipt tallies) of one mailbox read from the journal at once; one more is 503.</summary>
    public int MaxConcurrentJournalReads { get; init; } = 4;

    /// <summary>
    /// Readers of older pages from the journal one node runs at once, over all its mailboxes: a reader holds up to one
    /// request of 400 entries in memory (~26 MB with the longest messages). One more is refused (503, retry).
    /// </summary>
    public int MaxJournalReadersPerNode { get; init; } = 16;

    /// <summary>A mailbox idle this long leaves memory (it passivates, draining its writes first).</summary>
    public TimeSpan PassivateIdleAfter { get; init; } = TimeSpan.FromMinutes(2);

    /// <summary>
    /// The node's memory governor (<see cref="MemoryGovernor"/>): when the heap, as the last garbage collection left
    /// it, is above this share of the memory the runtime may use, the least recently used mailboxes and groups
    /// passivate until it is near <see cref="HeapLowWater"/>. 0: off.
    /// </summary>
    public double HeapHighWater { get; init; } = 0.7;

    /// <summary>Where the governor aims once above <see cref="HeapHighWater"/>; below it.</summary>
    public double HeapLowWater { get; init; } = 0.6;

    /// <summary>How often the governor reads the heap. Not configuration.</summary>
    public TimeSpan HeapCheckInterval { get; internal init; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// The governor acts on what a full collection found live. When the heap is above the mark as the last young
    /// collection left it (garbage, perhaps), it starts one in the background, at most this often (four times less
    /// often while the last full one found the heap below <see cref="HeapLowWater"/>). Not configuration.
    /// </summary>
    public TimeSpan HeapCollectInterval { get; internal init; } = TimeSpan.FromSeconds(15);

    /// <summary>How long the governor waits for a round's victims to stop before it looks again. Not configuration.</summary>
    public TimeSpan HeapShedSettle { get; internal init; } = TimeSpan.FromSeconds(10);

    /// <summary>The governor spares entities that got a request this recently: they would only wake again. Not configuration.</summary>
    public TimeSpan HeapShedMinIdle { get; internal init; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How often a delivery index wakes the entities it keeps: mailboxes and groups whose recipients made no progress
    /// for a redelivery interval, so that one stopped meanwhile (its node crashed, or it was handed off) resumes
    /// delivering by itself. The first wake comes as soon as the index starts.
    /// </summary>
    public TimeSpan PendingWakeInterval { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Wakes of a sample mailbox from its snapshot that the node runs as it starts, at most (<see cref="WakeWarmup"/>),
    /// so the first mailboxes that wake from theirs find that code compiled; it stops earlier once a round compiles
    /// next to nothing. 0: none.
    /// </summary>
    public int WarmupWakes { get; init; } = 400;

    /// <summary>Live event streams one user may hold open at once (devices, tabs), on whichever nodes; beyond it 429.</summary>
    public int MaxStreamsPerUser { get; init; } = 10;

    /// <summary>
    /// Whether a thread page wider than <see cref="JournalReadMaxRange"/> is walked in blocks where it is dense (else one
    /// message per read). Always on; the load generator turns it off for the baseline it measures blocks against. Not
    /// configuration.
    /// </summary>
    public bool WalkInBlocks { get; internal init; } = true;

    /// <summary>
    /// Whether a thread page read guesses where its last message lies (interpolation, <see cref="ThreadPageReader"/>)
    /// before it walks the skip list. Always on; the load generator turns it off for the baseline it measures the
    /// guesses against. Not configuration.
    /// </summary>
    public bool GuessPositions { get; internal init; } = true;

    /// <summary>Time for the mailbox's clocks; tests put a fake one here. Not configuration.</summary>
    public TimeProvider Clock { get; init; } = TimeProvider.System;

    /// <summary>
    /// Whether conversations may go cold now (<see cref="MailboxLimits.MaxConversationsInMemory"/>): the node's feature
    /// gate for ColdConversations (every node runs 1.8.0, or the operator's switch). Always, unless the node says otherwise.
    /// </summary>
    public Func<bool> ColdAllowed { get; init; } = static () => true;

    /// <summary>
    /// Whether group conversations may go cold too: the node's feature gate for ColdGroups (every node runs 1.9.0, or
    /// the operator's switch). Always, unless the node says otherwise.
    /// </summary>
    public Func<bool> ColdGroupsAllowed { get; init; } = static () => true;

    /// <summary>
    /// Whether the channels with people met only in groups may go cold too: the node's feature gate for ColdChannels
    /// (every node runs 1.10.0, or the operator's switch). Always, unless the node says otherwise.
    /// </summary>
    public Func<bool> ColdChannelsAllowed { get; init; } = static () => true;
}
