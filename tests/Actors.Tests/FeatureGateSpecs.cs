using Akka.Cluster;
using Messaging.Actors.Upgrades;

namespace Messaging.Actors.Tests;

/// <summary>The version gate's decision: a feature writes only while every node can read what it writes.</summary>
public sealed class FeatureGateSpecs
{
    private static MemberVersion Member(int port, string version, MemberStatus status = MemberStatus.Up) =>
        new($"akka.tcp://messaging@10.0.0.{port}:4053", version, status);

    [Fact]
    public void Should_keep_receipts_off_while_any_member_runs_a_release_before_them()
    {
        var state = FeatureGate.Decide(Feature.Receipts, FeatureSwitch.Auto,
            [Member(1, "1.1.0"), Member(2, "1.0.0"), Member(3, "1.1.0")]);

        Assert.False(state.Enabled);
        Assert.Contains("akka.tcp://messaging@10.0.0.2:4053 (1.0.0)", state.Reason);
        Assert.Contains("1.1.0", state.Reason);
    }

    [Fact]
    public void Should_turn_receipts_on_once_every_member_runs_their_release_or_a_later_one()
    {
        Assert.True(FeatureGate.Decide(Feature.Receipts, FeatureSwitch.Auto,
            [Member(1, "1.1.0"), Member(2, "1.2.0"), Member(3, "1.1.0-rc1"), Member(4, "2.0")]).Enabled);
    }

    [Theory]
    [InlineData(MemberStatus.Joining, false)]
    [InlineData(MemberStatus.WeaklyUp, false)]
    [InlineData(MemberStatus.Up, false)]
    [InlineData(MemberStatus.Leaving, false)] // still hands its mailboxes off
    [InlineData(MemberStatus.Exiting, false)]
    [InlineData(MemberStatus.Down, true)] // runs nothing any more
    [InlineData(MemberStatus.Removed, true)]
    public void Should_count_an_older_member_until_it_is_down_or_removed(MemberStatus status, bool enabled)
    {
        Assert.Equal(enabled, FeatureGate.Decide(Feature.Receipts, FeatureSwitch.Auto,
            [Member(1, "1.1.0"), Member(2, "1.0.0", status)]).Enabled);
    }

    [Fact]
    public void Should_keep_a_feature_off_until_the_members_are_known()
    {
        Assert.False(FeatureGate.Decide(Feature.Receipts, FeatureSwitch.Auto, null).Enabled);
        Assert.False(FeatureGate.Decide(Feature.Receipts, FeatureSwitch.Auto, []).Enabled);
    }

    [Fact]
    public void Should_follow_the_operators_switch_whatever_the_members_run()
    {
        MemberVersion[] upgraded = [Member(1, "1.1.0"), Member(2, "1.1.0")];
        MemberVersion[] mixed = [Member(1, "1.1.0"), Member(2, "1.0.0")];

        var off = FeatureGate.Decide(Feature.Receipts, FeatureSwitch.Off, upgraded);
        Assert.False(off.Enabled);
        Assert.Contains("Messaging:Upgrade:Receipts=Off", off.Reason);
        Assert.True(FeatureGate.Decide(Feature.Receipts, FeatureSwitch.On, mixed).Enabled);
    }

    [Fact]
    public void Should_keep_groups_off_until_every_member_runs_the_release_after_receipts()
    {
        Assert.True(FeatureGate.IntroducedIn(Feature.Groups) > FeatureGate.IntroducedIn(Feature.Receipts));
        Assert.False(FeatureGate.Decide(Feature.Groups, FeatureSwitch.Auto, [Member(1, "1.2.0"), Member(2, "1.1.0")]).Enabled);
        Assert.True(FeatureGate.Decide(Feature.Groups, FeatureSwitch.Auto, [Member(1, "1.2.0"), Member(2, "1.2.1")]).Enabled);
    }

    [Theory]
    [InlineData("1.1.0", "1.1.0")]
    [InlineData("1.1", "1.1.0")]
    [InlineData("2", "2.0.0")]
    [InlineData("1.1.0-rc1", "1.1.0")]
    [InlineData("1.0.0+3-73475dce26", "1.0.0")]
    [InlineData("latest", "0.0.0")]
    [InlineData("1.1.0.7", "0.0.0")]
    [InlineData("", "0.0.0")]
    public void Should_read_the_release_at_the_head_of_an_app_version_and_take_anything_else_for_the_oldest(
        string appVersion, string release)
    {
        Assert.Equal(Version.Parse(release), FeatureGate.ReleaseOf(appVersion));
    }

    [Fact]
    public void Should_answer_from_the_membership_it_was_last_given_and_its_switches()
    {
        var features = new ClusterFeatures(new UpgradeSettings { Groups = FeatureSwitch.Off });
        Assert.False(features.IsEnabled(Feature.Receipts)); // nothing seen yet

        features.Update([Member(1, "1.2.0"), Member(2, "1.2.0")]);
        Assert.True(features.IsEnabled(Feature.Receipts));
        Assert.False(features.IsEnabled(Feature.Groups));

        features.Update([Member(1, "1.2.0"), Member(2, "1.2.0"), Member(3, "1.0.0", MemberStatus.Joining)]);
        Assert.False(features.IsEnabled(Feature.Receipts));
    }
}
