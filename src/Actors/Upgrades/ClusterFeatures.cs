using System.Collections.Immutable;
using Akka.Actor;
using Akka.Cluster;
using Akka.Event;

namespace Messaging.Actors.Upgrades;

/// <summary>
/// Which features may write now. A feature that writes events or messages an older release cannot read is used only
/// while every member of the cluster runs the release that brought it (or a later one), unless the operator's
/// <see cref="UpgradeSettings"/> switch says otherwise. The members are Akka.Cluster's current membership (its read
/// view, which Akka keeps current from the membership events), each member carrying the app-version its node was
/// started with (Messaging:Cluster:AppVersion).
/// </summary>
public sealed class ClusterFeatures(UpgradeSettings settings)
{
    private volatile Cluster? _cluster;
    private volatile IReadOnlyCollection<MemberVersion>? _members;

    public UpgradeSettings Settings { get; } = settings;

    public bool IsEnabled(Feature feature) => StateOf(feature).Enabled;

    public FeatureState StateOf(Feature feature) => FeatureGate.Decide(feature, Settings.For(feature), Members());

    /// <summary>Follows the cluster's membership from now on, and logs each feature turning on or off.</summary>
    public void Start(ActorSystem system)
    {
        _cluster = Cluster.Get(system);
        system.ActorOf(FactoryProps.Of(() => new MembershipWatcher(Settings)), "cluster-features");
    }

    /// <summary>A membership to decide on instead of a cluster's (tests).</summary>
    internal void Update(IReadOnlyCollection<MemberVersion> members) => _members = members;

    // Read per request: a handful of members, and the same view the node's readiness comes from (Up member).
    private IReadOnlyCollection<MemberVersion>? Members() =>
        _cluster is { } cluster ? VersionsOf(cluster.State.Members) : _members;

    private static MemberVersion[] VersionsOf(IEnumerable<Member> members) =>
        [.. members.Select(m => new MemberVersion(m.Address.ToString(), m.AppVersion.Version, m.Status))];

    /// <summary>Logs each feature turning on or off as members join and leave: what an operator looks for in a roll.</summary>
    private sealed class MembershipWatcher : ReceiveActor
    {
        private readonly ILoggingAdapter _log = Context.GetLogger();
        private ImmutableDictionary<UniqueAddress, Member> _members = ImmutableDictionary<UniqueAddress, Member>.Empty;
        private ImmutableDictionary<Feature, bool> _logged = ImmutableDictionary<Feature, bool>.Empty;

        public MembershipWatcher(UpgradeSettings settings)
        {
            Receive<ClusterEvent.CurrentClusterState>(state =>
            {
                _members = state.Members.ToImmutableDictionary(m => m.UniqueAddress);
                LogChanges(settings);
            });
            Receive<ClusterEvent.IMemberEvent>(change =>
            {
                var member = change.Member;
                _members = member.Status == MemberStatus.Removed
                    ? _members.Remove(member.UniqueAddress)
                    : _members.SetItem(member.UniqueAddress, member);
                LogChanges(settings);
            });
        }

        protected override void PreStart() => Cluster.Get(Context.System).Subscribe(
            Self, ClusterEvent.SubscriptionInitialStateMode.InitialStateAsSnapshot, typeof(ClusterEvent.IMemberEvent));

        protected override void PostStop() => Cluster.Get(Context.System).Unsubscribe(Self);

        private void LogChanges(UpgradeSettings settings)
        {
            if (_members.IsEmpty) // not joined yet
                return;
            var members = VersionsOf(_members.Values);
            foreach (var feature in Enum.GetValues<Feature>())
            {
                var state = FeatureGate.Decide(feature, settings.For(feature), members);
                if (_logged.TryGetValue(feature, out var was) && was == state.Enabled)
                    continue;
                _logged = _logged.SetItem(feature, state.Enabled);
                _log.Info("Feature {Feature} is {OnOrOff}: {Reason}", feature, state.Enabled ? "on" : "off", state.Reason);
            }
        }
    }
}
