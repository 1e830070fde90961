namespace Messaging.Http;

/// <summary>Settings of the HTTP edge, bound by the node from <c>Messaging:Http</c>, <c>Messaging:RateLimit</c> and <c>Messaging:Auth</c>.</summary>
public sealed record MessagingApiOptions
{
    /// <summary>How long a request waits for its mailbox; longer than the mailbox's DeliveryWait so a slow recipient gives Accepted, not 503.</summary>
    public TimeSpan AskTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Request bodies beyond this are refused with 413 before they are read.</summary>
    public long MaxRequestBodyBytes { get; init; } = 1024 * 1024;

    public int SendsPerSecond { get; init; } = 200;

    public int SendBurst { get; init; } = 400;

    /// <summary>UTF-8 bytes of the HS256 key (at least 32).</summary>
    public required byte[] SigningKey { get; init; }

    public TimeSpan TokenLifetime { get; init; } = TimeSpan.FromHours(24);

    /// <summary>Seconds a client is told to wait after a 503.</summary>
    public int UnavailableRetryAfterSeconds { get; init; } = 1;
}
