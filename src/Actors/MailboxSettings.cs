namespace Messaging.Actors;

/// <summary>Everything a mailbox needs to know that is not in its journal.</summary>
public sealed record MailboxSettings
{
    public MailboxLimits Limits { get; init; } = new();

    /// <summary>How long a send waits for the recipient's copy before answering <c>Accepted</c> instead of <c>Sent</c>.</summary>
    public TimeSpan DeliveryWait { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>An unconfirmed copy is sent again after this long without an answer from the recipient.</summary>
    public TimeSpan RedeliveryInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Confirmations are journaled in batches at most this far apart (a lost batch only means a harmless resend).</summary>
    public TimeSpan ConfirmationFlushInterval { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <summary>A snapshot is taken after this many events, bounding recovery to one snapshot plus at most this many events.</summary>
    public int SnapshotEvery { get; init; } = 1000;

    /// <summary>Deadline for a thread page read from the journal.</summary>
    public TimeSpan JournalReadTimeout { get; init; } = TimeSpan.FromSeconds(5);

    public TimeProvider Clock { get; init; } = TimeProvider.System;
}
