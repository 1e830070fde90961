namespace Messaging.Node.Admin;

/// <summary>The admin surface's settings; the node binds them from <c>Messaging:Admin</c>.</summary>
public sealed record AdminOptions
{
    /// <summary>Interface of the admin and metrics listener: an IP, <c>localhost</c>, or <c>*</c> / <c>0.0.0.0</c> for all.</summary>
    public string Hostname { get; init; } = "127.0.0.1";

    public int Port { get; init; } = 9090;

    /// <summary>Shared secret of the admin routes; when unset, one is kept in the data directory (<see cref="AdminTokens"/>).</summary>
    public string? Token { get; init; }

    /// <summary>How long cluster and sharding operations wait for an answer.</summary>
    public TimeSpan OperationTimeout { get; init; } = TimeSpan.FromSeconds(10);
}
