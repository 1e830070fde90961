using Akka.Cluster;

namespace Messaging.Actors.Upgrades;

/// <summary>
/// A feature that writes journal events or sends messages that a node of an older release cannot read. It is used
/// only while <see cref="ClusterFeatures.IsEnabled"/> says so (docs/operations.md, "Upgrades and rollbacks").
/// </summary>
public enum Feature
{
    /// <summary>Receipts (POST .../receipts): ReceiptsMarked, ReceiptReceived and DeliverReceipt. Release 1.1.0.</summary>
    Receipts,

    /// <summary>Groups: their events and messages. Release 1.2.0, the one that brings them.</summary>
    Groups,

    /// <summary>
    /// Cold conversations: ConversationsArchived and ConversationRestored, and the cold index in snapshots. Release
    /// 1.8.0. Off, nothing goes cold (a mailbox holds every conversation in memory, as before); what is cold already is
    /// still brought back when needed.
    /// </summary>
    ColdConversations,

    /// <summary>
    /// Cold groups: a group conversation goes cold like a 1:1 one, with its channel position. Its archive, its restore
    /// and snapshots after it are written under their own manifests (<c>CAg</c>, <c>CRg</c>, <c>MSg</c>), which 1.8.0
    /// refuses rather than take a cold group for a new one. Release 1.9.0. Off, groups stay in memory; cold ones already
    /// written are still brought back when needed.
    /// </summary>
    ColdGroups,

    /// <summary>
    /// Cold channels: the channel positions with someone met only in groups (receipts to and from co-members, with no
    /// 1:1 conversation to leave memory with) go cold past the bound, as entries of their own in the cold pages, written
    /// under manifests 1.9 refuses (<c>CAo</c>, <c>CRo</c>, <c>MSo</c>). Release 1.10.0. Off, they stay in memory; cold
    /// ones already written are still brought back when needed.
    /// </summary>
    ColdChannels,
}

/// <summary>The operator's say over a feature: <c>Messaging:Upgrade:&lt;Feature&gt;</c>.</summary>
public enum FeatureSwitch
{
    /// <summary>On once every member of the cluster runs the release that brought the feature, or a later one.</summary>
    Auto,

    /// <summary>Never written, whatever the members run: keeps a rollback to the previous release possible.</summary>
    Off,

    /// <summary>Written whatever the members' app-versions say: the operator vouches that every node can read it.</summary>
    On,
}

/// <summary>The <c>Messaging:Upgrade</c> section: one switch per <see cref="Feature"/>.</summary>
public sealed record UpgradeSettings
{
    public FeatureSwitch Receipts { get; init; } = FeatureSwitch.Auto;
    public FeatureSwitch Groups { get; init; } = FeatureSwitch.Auto;
    public FeatureSwitch ColdConversations { get; init; } = FeatureSwitch.Auto;
    public FeatureSwitch ColdGroups { get; init; } = FeatureSwitch.Auto;
    public FeatureSwitch ColdChannels { get; init; } = FeatureSwitch.Auto;

    public FeatureSwitch For(Feature feature) => feature switch
    {
        Feature.Receipts => Receipts,
        Feature.Groups => Groups,
        Feature.ColdConversations => ColdConversations,
        Feature.ColdGroups => ColdGroups,
        Feature.ColdChannels => ColdChannels,
        _ => throw new ArgumentOutOfRangeException(nameof(feature), feature, "a feature without a switch"),
    };
}

/// <summary>A member as the gate sees it: where, which release, and whether it still counts.</summary>
public sealed record MemberVersion(string Address, string AppVersion, MemberStatus Status);

/// <summary>Whether a feature may write now, and why (the why is what a refused client and the log are told).</summary>
public sealed record FeatureState(Feature Feature, bool Enabled, string Reason);

/// <summary>The gate's decision, pure: a feature's release, the operator's switch, the members' app-versions.</summary>
public static class FeatureGate
{
    /// <summary>The release that brought a feature: a member running an older one cannot read what it writes.</summary>
    public static Version IntroducedIn(Feature feature) => feature switch
    {
        Feature.Receipts => new Version(1, 1, 0),
        Feature.Groups => new Version(1, 2, 0),
        Feature.ColdConversations => new Version(1, 8, 0),
        Feature.ColdGroups => new Version(1, 9, 0),
        Feature.ColdChannels => new Version(1, 10, 0),
        _ => throw new ArgumentOutOfRangeException(nameof(feature), feature, "a feature without a release"),
    };

    public static string SettingKey(Feature feature) => $"Messaging:Upgrade:{feature}";

    /// <param name="members">The cluster as this node sees it; null while it has not seen the membership yet.</param>
    public static FeatureState Decide(Feature feature, FeatureSwitch setting, IReadOnlyCollection<MemberVersion>? members)
    {
        var name = feature.ToString().ToLowerInvariant();
        switch (setting)
        {
            case FeatureSwitch.Off:
                return new(feature, false, $"{name} are switched off on this node ({SettingKey(feature)}=Off), so that " +
                    "the cluster can still go back to a release without them");
            case FeatureSwitch.On:
                return new(feature, true, $"{name} are switched on by {SettingKey(feature)}=On");
        }

        var release = IntroducedIn(feature);
        if (members is null || members.Count == 0)
            return new(feature, false, $"{name} wait until this node has seen the cluster's members and their releases");
        // Down and Removed members run nothing any more; every other status may host mailboxes (Leaving and Exiting
        // ones until their hand-off ends) or soon will (Joining, WeaklyUp).
        var older = members
            .Where(m => m.Status is not (MemberStatus.Down or MemberStatus.Removed) && ReleaseOf(m.AppVersion) < release)
            .Select(m => $"{m.Address} ({m.AppVersion})")
            .ToList();
        return older.Count == 0
            ? new(feature, true, $"every member runs release {release.ToString(3)} or later")
            : new(feature, false, $"{name} are turned on once every node runs release {release.ToString(3)} or later; " +
                $"until then the cluster has {older.Count} node(s) of an older release that cannot read them: " +
                string.Join(", ", older));
    }

    /// <summary>
    /// The release number at the head of an app-version: <c>1.1.0</c>, <c>1.1.0-rc1</c> and <c>1.1.0+3-73475dce</c>
    /// are all 1.1.0 (a pre-release of a release writes what the release writes). Anything else is 0.0.0: a node
    /// whose release cannot be told counts as older than every feature.
    /// </summary>
    public static Version ReleaseOf(string appVersion)
    {
        var head = appVersion.Split('-', '+')[0].Split('.');
        if (head.Length is 0 or > 3)
            return new Version(0, 0, 0);
        var numbers = new int[3];
        for (var i = 0; i < head.Length; i++)
        {
            if (!int.TryParse(head[i], System.Globalization.NumberStyles.None, null, out numbers[i]))
                return new Version(0, 0, 0);
        }
        return new Version(numbers[0], numbers[1], numbers[2]);
    }
}
