using System.Collections.Immutable;
using Akka.Actor;
using Akka.Cluster;
using Akka.Event;

namespace Messaging.Actors.Upgrades;

/// <summary>
/// Which features may write now. A feature that writes events or messages an older release cannot read is used only
/// while every member of the cluster runs the release that brought it (or a later one), unless the operator's
/// <see cref="UpgradeSettings"/> switch says otherwise. The members come from Akka.Cluster's membership events,
/// each member carrying the app-version its node was started with (Messaging:Cluster:AppVersion).
/// </summary>
public sealed class ClusterFeatures(UpgradeSettings settings)
{
    private volatile IReadOnlyCollection<MemberVersion>? _members;

    public UpgradeSettings Settings { get; } = settings;

    public bool IsEnabled(Feature feature) => StateOf(feature).Enabled;

    public FeatureState StateOf(Feature feature) => FeatureGate.Decide(feature, Settings.For(feature), _members);

    /// <summary>Starts following the cluster's membership (once, when the actor system starts).</summary>
    public void Start(ActorSystem system) =>
        system.ActorOf(Props.Create(() => new MembershipWatcher(this)), "cluster-features");

    /// <summary>The membership as this node now sees it (the watcher's, or a test's).</summary>
    internal void Update(IReadOnlyCollection<MemberVersion> members) => _members = members;

    /// <summary>Keeps <see cref="ClusterFeatures"/> current and logs each feature turning on or off.</summary>
    private sealed class MembershipWatcher : ReceiveActor
    {
        private readonly ClusterFeatures _features;
        private readonly ILoggingAdapter _log = Context.GetLogger();
        private ImmutableDictionary<UniqueAddress, Member> _members = ImmutableDictionary<UniqueAddress, Member>.Empty;
        private ImmutableDictionary<Feature, bool> _logged = ImmutableDictionary<Feature, bool>.Empty;

        public MembershipWatcher(ClusterFeatures features)
        {
            _features = features;
            Receive<ClusterEvent.CurrentClusterState>(state =>
            {
                _members = state.Members.ToImmutableDictionary(m => m.UniqueAddress);
                Publish();
            });
            Receive<ClusterEvent.IMemberEvent>(change =>
            {
                var member = change.Member;
                _members = member.Status == MemberStatus.Removed
                    ? _members.Remove(member.UniqueAddress)
                    : _members.SetItem(member.UniqueAddress, member);
                Publish();
            });
        }

        protected override void PreStart() => Cluster.Get(Context.System).Subscribe(
            Self, ClusterEvent.SubscriptionInitialStateMode.InitialStateAsSnapshot, typeof(ClusterEvent.IMemberEvent));

        protected override void PostStop() => Cluster.Get(Context.System).Unsubscribe(Self);

        private void Publish()
        {
            // Before this node has joined, the snapshot holds no members: the features stay off until it has.
            if (_members.IsEmpty)
                return;
            _features.Update([.. _members.Values.Select(m => new MemberVersion(m.Address.ToString(), m.AppVersion.Version, m.Status))]);
            foreach (var feature in Enum.GetValues<Feature>())
            {
                var state = _features.StateOf(feature);
                if (_logged.TryGetValue(feature, out var was) && was == state.Enabled)
                    continue;
                _logged = _logged.SetItem(feature, state.Enabled);
                if (state.Enabled)
                    _log.Info("Feature {Feature} is on: {Reason}", feature, state.Reason);
                else
                    _log.Info("Feature {Feature} is off: {Reason}", feature, state.Reason);
            }
        }
    }
}
