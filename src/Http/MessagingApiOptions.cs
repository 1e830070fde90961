namespace Messaging.Http;

/// <summary>
/// Settings of the HTTP edge; the node binds them from <c>Messaging:Http</c>, so a default declared here is the
/// configuration's default.
/// </summary>
public sealed record MessagingApiOptions
{
    /// <summary>How long a request waits for its mailbox; longer than the mailbox's DeliveryWait so a slow recipient gives Accepted, not 503.</summary>
    public TimeSpan AskTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Request bodies beyond this are refused with 413 before they are read.</summary>
    public long MaxRequestBodyBytes { get; init; } = 1024 * 1024;

    /// <summary>Seconds a client is told to wait after a 503.</summary>
    public int UnavailableRetryAfterSeconds { get; init; } = 1;

    /// <summary>
    /// A live stream gets a keep-alive comment after this long without an event (API.md: at least every 15 s), and
    /// asks its mailbox again at this interval as a heartbeat; a mailbox silent for a whole interval closes it.
    /// </summary>
    public TimeSpan LiveKeepAlive { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Events a live stream holds for a client that is not reading; one more and the stream is closed.</summary>
    public int LiveStreamBuffer { get; init; } = 256;

    /// <summary>
    /// The same bound in bytes of the events as sent (a message of 64 KiB can take ~390 KB as escaped JSON): what one
    /// stream of a client that does not read can make the node hold.
    /// </summary>
    public long LiveStreamBufferBytes { get; init; } = 1024 * 1024;
}
