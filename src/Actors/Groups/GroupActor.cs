using Akka.Actor;
using Akka.Cluster;
using Akka.Event;
using Akka.Persistence;
using Messaging.Actors.Delivery;
using Messaging.Messages;

namespace Messaging.Actors.Groups;

/// <summary>
/// One group: the only writer of its membership and of the order of its messages, and the sender of every member's
/// copy. Glue, like <see cref="MailboxActor"/>: commands are decided by <see cref="GroupState"/>, delivery by the same
/// <see cref="DeliveryTracker"/> mailboxes use (over the group's window instead of per-recipient queues), writes the
/// way <see cref="SingleWriterActor{TState,TEvent}"/> writes.
/// </summary>
public sealed class GroupActor : SingleWriterActor<GroupState, IGroupEvent>, IWithTimers, IDeliveryHost
{
    private readonly string _groupId;
    private readonly MailboxSettings _settings;
    private readonly GroupLimits _limits;
    private readonly IActorRef _mailboxes;
    private readonly IActorRef _groups;
    private readonly DeliveryIndexRef _index;
    private DeliveryTracker _delivery;

    public GroupActor(
        string groupId, MailboxSettings settings, GroupLimits limits, IActorRef mailboxes, IActorRef groups, DeliveryIndexRef index,
        PersistencePlugins? plugins = null)
        : base(PersistenceIdFor(groupId), GroupState.Empty(groupId, limits), plugins)
    {
        _groupId = groupId;
        _settings = settings;
        _limits = limits;
        _mailboxes = mailboxes;
        _groups = groups;
        _index = index;
        _delivery = DeliveryTracker.Create(settings);
    }

    protected override GroupState FromSnapshot(object snapshot, long snapshotSeq) =>
        GroupState.FromSnapshot(_groupId, _limits, (GroupSnapshot)snapshot);

    /// <summary>
    /// A group's journal is fenced from its first write, so only a write after a rejected (or failed) one can fail to
    /// continue it: its sender was answered as failed, nothing of it left, and it is skipped (the sender's retry stores
    /// it at the end of the group's order). Skipped at every recovery alike: no mark is needed.
    /// </summary>
    protected override bool Continues(GroupState state, IGroupEvent evt) => state.Continues(evt);

    protected override void Recovered(IReadOnlyList<(long Seq, IGroupEvent Event)> stale)
    {
        if (stale.Count > 0)
            Log.Warning("Journal of {PersistenceId} holds {Count} events written after a write the journal rejected " +
                "(journal entries {First}..{Last}); they were answered as failed and are skipped",
                PersistenceId, stale.Count, stale[0].Seq, stale[^1].Seq);
        Run(_delivery.Recovered(Durable));
    }

    protected override bool OnCommand(object message)
    {
        switch (message)
        {
            case PostToGroup post:
                HandlePost(post);
                return true;
            case CreateGroup cmd:
                if (!Durable.Exists && Decided.Exists)
                {
                    // A retry while the create's write is in flight: answer once it is durable, and only if it is.
                    DeferAnswer(Sender, replyTo => replyTo.Tell(Durable.Exists
                        ? new GroupAnswer(Durable.View, Created: false)
                        : new MailboxUnavailable("the group's creation did not complete; retry")));
                    return true;
                }
                Decide(Decided.DecideCreate(cmd, Now), created: true);
                return true;
            case ChangeMembers cmd:
            {
                var decision = Decided.DecideMembers(cmd, Now);
                if (decision is GroupDecision.Reply { Answer: GroupAnswer })
                {
                    // Nothing to change, maybe thanks to a write still in flight: answer once that is durable, and
                    // only if the journal has the change.
                    DeferAnswer(Sender, replyTo => replyTo.Tell(Durable.DecideMembers(cmd, Now) is GroupDecision.Reply { Answer: GroupAnswer answer }
                        ? answer
                        : new MailboxUnavailable("the membership change did not complete; retry")));
                    return true;
                }
                Decide(decision);
                return true;
            }
            case LeaveGroup cmd:
                Decide(Decided.DecideLeave(cmd, Now));
                return true;
            case GetGroup query:
                Sender.Tell(Durable.Get(query));
                PassivateIfNone();
                return true;
            case ConfirmGroupDelivery confirmation:
                Run(_delivery.Confirmation(confirmation.MemberId, confirmation.UpToSeq, Durable, Decided));
                return true;
            case DeliveryTimer timer:
                // As for mailboxes: the redelivery tick goes round through the shard region, which counts it as activity.
                if (timer == DeliveryTimer.Redelivery)
                    _groups.Tell(new KeepGroupDelivering(_groupId));
                else
                    Run(_delivery.Tick(timer, Durable, Decided));
                return true;
            case KeepGroupDelivering:
                Run(_delivery.Tick(DeliveryTimer.Redelivery, Durable, Decided));
                return true;
            case WakeForDelivery:
                Run(_delivery.Woken(Durable));
                return true;
            case GetGroupStatus:
                Sender.Tell(Durable.Status(LastSequenceNr, Cluster.Get(Context.System).SelfAddress.ToString()));
                PassivateIfNone();
                return true;
            case StopGroup:
                Run(_delivery.Stop(Decided));
                StopWhenSettled();
                return true;
            default:
                return false;
        }
    }

    void IDeliveryHost.PersistConfirmed(DeliveriesConfirmed confirmed) => Write(confirmed, _ => { });

    void IDeliveryHost.MarkPending(bool pending) => _index.Mark(_groupId, pending);

    public static string PersistenceIdFor(string groupId) => $"group-{groupId}";

    public ITimerScheduler Timers { get; set; } = null!;

    protected override int SnapshotEvery => _settings.SnapshotEvery;

    protected override int SnapshotBeforeStopAfter => _settings.SnapshotOnPassivationAfter;

    protected override TimeSpan SnapshotBeforeStopTimeout => _settings.SnapshotOnPassivationTimeout;

    protected override int SnapshotsBeforeStopPerNode => _settings.MaxPassivationSnapshotsPerNode;

    protected override TimeSpan PassivateIdleAfter => _settings.PassivateIdleAfter;

    // The confirmations known only in memory, so the idle snapshot holds them (a stop journals them too).
    protected override void JournalBeforeIdle() => Run(_delivery.MakeRoom(Decided));

    protected override object StopMessage => StopGroup.Instance;

    private long Now => _settings.Clock.GetUtcNow().ToUnixTimeMilliseconds();

    protected override GroupState Apply(GroupState state, IGroupEvent evt, long journalSeq) => state.Apply(evt);

    protected override IGroupEvent Claim() =>
        new WriterClaimed(((ExtendedActorSystem)Context.System).Provider.DefaultAddress.ToString(), Now);

    protected override object ToSnapshot(GroupState state) => state.ToSnapshot();

    protected override void WritesFailed(string reason) => Run(_delivery.Failed(reason));

    protected override object StoppedBeforeAnswer(string reason) => new MailboxUnavailable($"the group {_groupId}: {reason}");

    /// <summary>A send: ordered and stored once, every member's copy handed on, answered Sent once all confirm (or Accepted).</summary>
    private void HandlePost(PostToGroup cmd)
    {
        if (Stopping)
        {
            Sender.Tell(SendResult.Failure(SendOutcome.Unavailable, "the group is moving or restarting; retry"));
            return;
        }
        var key = GroupState.DedupKey(cmd.SenderId, cmd.ClientMessageId);
        if (Decided.IsFullFor(cmd.Text))
            Run(_delivery.MakeRoom(Decided));
        switch (Decided.DecidePost(cmd, Now))
        {
            case GroupDecision.Reply reply:
                Sender.Tell(reply.Answer);
                PassivateIfNone();
                break;
            case GroupDecision.Duplicate when _delivery.IsWriting(key):
                _delivery = _delivery.Writing(key, Sender); // this retry gets the first write's answer
                break;
            case GroupDecision.Duplicate duplicate:
                Sender.Tell(duplicate.Original);
                break;
            case GroupDecision.Store store:
                _delivery = _delivery.Writing(key, Sender);
                Write(store.Event, evt =>
                {
                    var posted = (GroupPosted)evt;
                    Run(_delivery.Sent(key, Durable.CopiesOf(posted.Seq), posted.Message, Durable, Stopping));
                });
                break;
        }
    }

    /// <summary>Create, add, remove, leave: answered with the group once durable; the copies follow, guaranteed.</summary>
    private void Decide(GroupDecision decision, bool created = false)
    {
        var replyTo = Sender;
        if (Stopping)
        {
            replyTo.Tell(new MailboxUnavailable("the group is moving or restarting; retry"));
            return;
        }
        switch (decision)
        {
            case GroupDecision.Reply reply:
                replyTo.Tell(reply.Answer);
                PassivateIfNone();
                break;
            case GroupDecision.Store store:
                Write(store.Event, evt =>
                {
                    replyTo.Tell(new GroupAnswer(Durable.View, created));
                    var seq = evt is GroupPosted posted ? posted.Seq : 1;
                    foreach (var copy in Durable.CopiesOf(seq))
                        Run(_delivery.Restored(copy, Durable));
                }, () => replyTo.Tell(new MailboxUnavailable("the group's write did not complete; retry")));
                break;
        }
    }

    /// <summary>Asked about a group that does not exist: leave memory now rather than after the idle timeout.</summary>
    private void PassivateIfNone()
    {
        if (!Durable.Exists && !Decided.Exists)
            Context.Parent.Tell(new Akka.Cluster.Sharding.Passivate(StopGroup.Instance));
    }

    private void Run(DeliveryStep step)
    {
        _delivery = step.Tracker;
        DeliveryEffects.CarryOut(step.Effects, _mailboxes, Timers, this);
    }
}
