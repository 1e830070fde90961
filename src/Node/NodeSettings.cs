using System.Text;
using Akka.Actor;
using Messaging.Actors;
using Messaging.Actors.Upgrades;
using Messaging.Http;
using Microsoft.Extensions.Configuration;

namespace Messaging.Node;

public enum PersistenceProvider
{
    Sqlite,
    PostgreSql,
}

/// <summary>The <c>Messaging</c> configuration section (appsettings.json, environment <c>Messaging__...</c>, command line).</summary>
public sealed partial class NodeSettings
{
    public const string Section = "Messaging";

    public string DataDirectory { get; set; } = "./data";
    public PersistenceSettings Persistence { get; set; } = new();
    public ClusterSettings Cluster { get; set; } = new();
    public MailboxSettings Mailbox { get; set; } = new();
    public Messaging.Actors.Groups.GroupLimits Groups { get; set; } = new();
    public MessagingApiOptions Http { get; set; } = new();
    public SendRateLimitOptions RateLimit { get; set; } = new();
    public AuthSettings Auth { get; set; } = new();
    public UpgradeSettings Upgrade { get; set; } = new();

    public sealed partial class PersistenceSettings
    {
        public PersistenceProvider Provider { get; set; } = PersistenceProvider.Sqlite;
        public string? ConnectionString { get; set; }
    }

    public sealed class ClusterSettings
    {
        public string Hostname { get; set; } = "localhost";
        public int Port { get; set; } = 4053;
        public string? SeedNodes { get; set; }
        public int ShardCount { get; set; } = 100;

        /// <summary>This build's version in the cluster; a rolling update moves shards to the newest. Default: the assembly version.</summary>
        public string? AppVersion { get; set; }

        /// <summary>A node missing heartbeats this long is unreachable (failure detector acceptable-heartbeat-pause).</summary>
        public TimeSpan UnreachableAfter { get; set; } = TimeSpan.FromSeconds(3);

        /// <summary>
        /// Split Brain Resolver stable-after: membership must be stable this long before the majority downs the
        /// unreachable (or the minority downs itself). Also the down-removal margin before a downed node's shards
        /// are started elsewhere, so the minority has stopped writing before the majority starts.
        /// </summary>
        public TimeSpan StableAfter { get; set; } = TimeSpan.FromSeconds(10);

        /// <summary>Upper bound for the whole CoordinatedShutdown on SIGTERM (shard hand-off, leaving the cluster).</summary>
        public TimeSpan ShutdownTimeout { get; set; } = TimeSpan.FromSeconds(30);

        public TlsSettings Tls { get; set; } = new();

        public string[] SeedNodeList =>
            (SeedNodes ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
    }

    public sealed class AuthSettings
    {
        public string? SigningKey { get; set; }
        public TimeSpan TokenLifetime { get; set; } = TimeSpan.FromHours(24);
    }

    /// <summary>
    /// The longest pause a node on PostgreSQL survives (<see cref="Messaging.Actors.PauseGuard"/>): half the shortest
    /// time in which the majority takes a paused node's mailboxes over (unreachable, then downed after StableAfter,
    /// then started elsewhere after the down-removal margin of another StableAfter). Off on SQLite: one node, no
    /// takeover.
    /// </summary>
    public TimeSpan? PauseGuardLimit => Persistence.Provider == PersistenceProvider.PostgreSql
        ? (Cluster.UnreachableAfter + 2 * Cluster.StableAfter) / 2
        : null;

    public string DataDirectoryPath => Path.GetFullPath(DataDirectory);

    public string ConnectionString => Persistence.ConnectionString is { Length: > 0 } configured
        ? configured
        : $"Data Source={Path.Combine(DataDirectoryPath, "messaging.db")}";

    /// <summary>
    /// Binds and validates; every problem names its configuration key. A key under <c>Messaging</c> that is not one of
    /// <see cref="Keys"/> is refused, so a misspelt setting does not silently keep its default.
    /// </summary>
    public static NodeSettings Load(IConfiguration configuration)
    {
        var section = configuration.GetSection(Section);
        var unknown = section.AsEnumerable()
            .Where(entry => entry.Value is not null && !IsKey(entry.Key))
            .Select(entry => $"{entry.Key} is not a setting (the settings are listed in the README)")
            .ToList();
        ThrowIfAny(unknown);

        NodeSettings settings;
        try
        {
            settings = section.Get<NodeSettings>() ?? new NodeSettings();
            // The limits' keys sit beside the other Messaging:Mailbox keys (MailboxState takes them on their own).
            settings.Mailbox = settings.Mailbox with
            {
                Limits = section.GetSection(nameof(Mailbox)).Get<MailboxLimits>() ?? settings.Mailbox.Limits,
            };
        }
        catch (InvalidOperationException ex)
        {
            throw new NodeConfigurationException($"invalid configuration: {ex.Message}", ex);
        }
        ThrowIfAny([.. settings.Validate()]);
        return settings;
    }

    private static void ThrowIfAny(IReadOnlyList<string> problems)
    {
        if (problems.Count > 0)
            throw new NodeConfigurationException("invalid configuration:" + string.Concat(problems.Select(p => "\n  " + p)));
    }

    /// <summary>What k8s/secret.example.yaml puts in every secret it shows; a node refuses to start with it.</summary>
    public const string Placeholder = "change-me";

    /// <summary>One check per setting (or rule between settings); a new setting adds its own here.</summary>
    private IEnumerable<string> Validate()
    {
        if (string.IsNullOrWhiteSpace(DataDirectory))
            yield return "Messaging:DataDirectory must not be empty";
        foreach (var problem in ValidatePersistence())
            yield return problem;
        if (string.IsNullOrWhiteSpace(Cluster.Hostname))
            yield return "Messaging:Cluster:Hostname must not be empty";
        if (Cluster.Port is < 0 or > 65535)
            yield return $"Messaging:Cluster:Port must be 0-65535, not {Cluster.Port}";
        if (Cluster.ShardCount < 1)
            yield return $"Messaging:Cluster:ShardCount must be at least 1, not {Cluster.ShardCount}";
        if (Cluster.UnreachableAfter < TimeSpan.FromSeconds(1))
            yield return $"Messaging:Cluster:UnreachableAfter must be at least 1 s, not {Cluster.UnreachableAfter}";
        if (Cluster.StableAfter < TimeSpan.FromSeconds(1))
            yield return $"Messaging:Cluster:StableAfter must be at least 1 s, not {Cluster.StableAfter}";
        if (PersistenceHosting.IdleInTransactionLimit * 2 > Cluster.UnreachableAfter + 2 * Cluster.StableAfter)
            yield return $"Messaging:Cluster:UnreachableAfter + 2 x Messaging:Cluster:StableAfter must be at least twice the journal's idle-transaction limit ({PersistenceHosting.IdleInTransactionLimit}), so a frozen node's open write is gone before its mailboxes restart elsewhere";
        if (Cluster.ShutdownTimeout < TimeSpan.FromSeconds(5))
            yield return $"Messaging:Cluster:ShutdownTimeout must be at least 5 s, not {Cluster.ShutdownTimeout}";
        if (Cluster.AppVersion is { } version && string.IsNullOrWhiteSpace(version))
            yield return "Messaging:Cluster:AppVersion must not be blank (leave it out for the assembly version)";
        else if (Cluster.AppVersion is { } claimed && FeatureGate.ReleaseOf(claimed) < ClusterHosting.ReleaseOfThisBuild)
            yield return $"Messaging:Cluster:AppVersion '{claimed}' is below this build's release " +
                $"{ClusterHosting.ReleaseOfThisBuild.ToString(3)}: the cluster would take this node for an older release " +
                "(its features stay off, shards avoid it); set it to the release, e.g. the image tag";
        foreach (var seed in Cluster.SeedNodeList)
        {
            if (!Address.TryParse(seed, out var address) || address.System != NodeApp.ActorSystemName || address.Port is null)
                yield return $"Messaging:Cluster:SeedNodes: '{seed}' is not an address like {RemotingProtocol(Cluster.Tls)}://{NodeApp.ActorSystemName}@host:4053";
        }
        foreach (var problem in ValidateTls())
            yield return problem;

        if (Mailbox.DeliveryWait < TimeSpan.Zero)
            yield return "Messaging:Mailbox:DeliveryWait must not be negative";
        if (Mailbox.RedeliveryInterval <= TimeSpan.Zero)
            yield return "Messaging:Mailbox:RedeliveryInterval must be positive";
        if (Mailbox.ResendBatch < 1)
            yield return "Messaging:Mailbox:ResendBatch must be at least 1";
        if (Mailbox.ConfirmationBatch < 1)
            yield return "Messaging:Mailbox:ConfirmationBatch must be at least 1";
        if (Mailbox.ConfirmationFlushInterval <= TimeSpan.Zero)
            yield return "Messaging:Mailbox:ConfirmationFlushInterval must be positive";
        if (Mailbox.SnapshotEvery < 1)
            yield return "Messaging:Mailbox:SnapshotEvery must be at least 1";
        if (Mailbox.SnapshotOnPassivationAfter < 0)
            yield return "Messaging:Mailbox:SnapshotOnPassivationAfter must not be negative (0: never)";
        if (Mailbox.MaxPassivationSnapshotsPerNode < 1)
            yield return "Messaging:Mailbox:MaxPassivationSnapshotsPerNode must be at least 1";
        if (Mailbox.JournalReadTimeout <= TimeSpan.Zero)
            yield return "Messaging:Mailbox:JournalReadTimeout must be positive";
        if (Mailbox.JournalReadTimeout >= Http.AskTimeout)
            yield return $"Messaging:Mailbox:JournalReadTimeout ({Mailbox.JournalReadTimeout}) must be less than Messaging:Http:AskTimeout ({Http.AskTimeout})";
        if (Mailbox.JournalReadMaxRange < 1)
            yield return "Messaging:Mailbox:JournalReadMaxRange must be at least 1";
        if (Mailbox.MaxConcurrentJournalReads < 1)
            yield return "Messaging:Mailbox:MaxConcurrentJournalReads must be at least 1";
        if (Mailbox.MaxJournalReadersPerNode < 1)
            yield return "Messaging:Mailbox:MaxJournalReadersPerNode must be at least 1";
        if (Mailbox.PassivateIdleAfter <= TimeSpan.Zero)
            yield return "Messaging:Mailbox:PassivateIdleAfter must be positive";
        if (Mailbox.HeapHighWater is not (>= 0 and < 1))
            yield return "Messaging:Mailbox:HeapHighWater must be from 0 (off) to below 1";
        else if (Mailbox.HeapHighWater > 0 && !(Mailbox.HeapLowWater > 0 && Mailbox.HeapLowWater < Mailbox.HeapHighWater))
            yield return "Messaging:Mailbox:HeapLowWater must be above 0 and below Messaging:Mailbox:HeapHighWater";
        if (Mailbox.PendingWakeInterval <= TimeSpan.Zero)
            yield return "Messaging:Mailbox:PendingWakeInterval must be positive";
        if (Mailbox.Limits.RecentPerConversation < 1)
            yield return "Messaging:Mailbox:RecentPerConversation must be at least 1";
        // A group's receipt goes to the senders in the window (or every member): at most NotColdKept, as MaxMembers below.
        if (Mailbox.Limits.RecentPerConversation > MailboxActor.NotColdKept)
            yield return $"Messaging:Mailbox:RecentPerConversation must be at most {MailboxActor.NotColdKept}";
        if (Mailbox.Limits.DedupWindow < 1)
            yield return "Messaging:Mailbox:DedupWindow must be at least 1";
        if (Mailbox.Limits.MaxPendingPerRecipient < 1)
            yield return "Messaging:Mailbox:MaxPendingPerRecipient must be at least 1";
        if (Mailbox.Limits.MaxPendingCharsPerRecipient < MessagingApi.MaxMessageBytes)
            yield return $"Messaging:Mailbox:MaxPendingCharsPerRecipient must be at least {MessagingApi.MaxMessageBytes} (a message of the largest size must fit)";
        if (Mailbox.Limits.SnippetLength < 1)
            yield return "Messaging:Mailbox:SnippetLength must be at least 1";
        if (Mailbox.Limits.MaxConversationsInMemory < 0)
            yield return "Messaging:Mailbox:MaxConversationsInMemory must be 0 (no bound) or more";
        if (Mailbox.Limits.MaxNewConversations < 1)
            yield return "Messaging:Mailbox:MaxNewConversations must be at least 1";
        if (Mailbox.Limits.NewConversationWindow <= TimeSpan.Zero)
            yield return "Messaging:Mailbox:NewConversationWindow must be positive";
        if (Mailbox.Limits.MaxRecentChars < MessagingApi.MaxMessageBytes)
            yield return $"Messaging:Mailbox:MaxRecentChars must be at least {MessagingApi.MaxMessageBytes} (a message of the largest size must fit)";

        if (Groups.MaxMembers < 2)
            yield return "Messaging:Groups:MaxMembers must be at least 2";
        // A marker's receipt in a group may look each member's 1:1 conversation up in the cold pages; the mailbox
        // remembers at most MailboxActor.NotColdKept of them found absent, and must not forget one command's lookups twice.
        if (Groups.MaxMembers > MailboxActor.NotColdKept)
            yield return $"Messaging:Groups:MaxMembers must be at most {MailboxActor.NotColdKept}";
        if (Groups.DedupWindow < 1)
            yield return "Messaging:Groups:DedupWindow must be at least 1";
        if (Groups.MaxPendingMessages < 1)
            yield return "Messaging:Groups:MaxPendingMessages must be at least 1";
        if (Groups.MaxPendingChars < MessagingApi.MaxMessageBytes)
            yield return $"Messaging:Groups:MaxPendingChars must be at least {MessagingApi.MaxMessageBytes} (a message of the largest size must fit)";

        if (Http.AskTimeout <= Mailbox.DeliveryWait)
            yield return $"Messaging:Http:AskTimeout ({Http.AskTimeout}) must exceed Messaging:Mailbox:DeliveryWait ({Mailbox.DeliveryWait})";
        if (Http.MaxRequestBodyBytes < 128 * 1024)
            yield return "Messaging:Http:MaxRequestBodyBytes must be at least 131072 (a 64 KiB message must fit)";
        if (Http.UnavailableRetryAfterSeconds < 1)
            yield return "Messaging:Http:UnavailableRetryAfterSeconds must be at least 1";
        if (Http.LiveKeepAlive <= TimeSpan.Zero || Http.LiveKeepAlive > TimeSpan.FromSeconds(15))
            yield return "Messaging:Http:LiveKeepAlive must be positive and at most 00:00:15 (API.md: a keep-alive at least every 15 s)";
        if (Http.LiveStreamBuffer < MailboxActor.CatchUpPage + 1)
            yield return $"Messaging:Http:LiveStreamBuffer must be at least {MailboxActor.CatchUpPage + 1} (a catch-up page of {MailboxActor.CatchUpPage} must fit)";
        if (Http.LiveStreamBufferBytes < 512 * 1024)
            yield return "Messaging:Http:LiveStreamBufferBytes must be at least 524288 (the largest message as an event must fit)";
        if (Mailbox.WarmupWakes < 0)
            yield return "Messaging:Mailbox:WarmupWakes must not be negative (0: none)";
        if (Mailbox.MaxStreamsPerUser < 1)
            yield return "Messaging:Mailbox:MaxStreamsPerUser must be at least 1";
        if (RateLimit.SendsPerSecond < 1)
            yield return "Messaging:RateLimit:SendsPerSecond must be at least 1";
        if (RateLimit.Burst < 1)
            yield return "Messaging:RateLimit:Burst must be at least 1";
        if (RateLimit.ReadsPerSecond < 1)
            yield return "Messaging:RateLimit:ReadsPerSecond must be at least 1";
        if (RateLimit.ReadBurst < 1)
            yield return "Messaging:RateLimit:ReadBurst must be at least 1";
        if (Auth.SigningKey is { } key && Encoding.UTF8.GetByteCount(key) < MessagingAuth.MinimumKeyBytes)
            yield return $"Messaging:Auth:SigningKey must be at least {MessagingAuth.MinimumKeyBytes} bytes of UTF-8";
        if (Auth.TokenLifetime <= TimeSpan.Zero)
            yield return "Messaging:Auth:TokenLifetime must be positive";
        foreach (var (secretKey, value) in new[]
                 {
                     ("Messaging:Auth:SigningKey", Auth.SigningKey),
                     ("Messaging:Admin:Token", Admin.Token),
                     ("Messaging:Persistence:ConnectionString", Persistence.ConnectionString),
                     ("Messaging:Cluster:Tls:CertificatePassword", Cluster.Tls.CertificatePassword),
                 })
        {
            if (value?.Contains(Placeholder, StringComparison.OrdinalIgnoreCase) == true)
                yield return $"{secretKey} still holds the placeholder '{Placeholder}' of k8s/secret.example.yaml: " +
                    "create the Secret with real values (the command is in that file)";
        }
        foreach (var problem in ValidateOperations())
            yield return problem;
    }
}

public sealed class NodeConfigurationException(string message, Exception? inner = null) : Exception(message, inner);
