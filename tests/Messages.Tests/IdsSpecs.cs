namespace Messaging.Messages.Tests;

public sealed class IdsSpecs
{
    [Theory]
    [InlineData("bob", true)]
    [InlineData("b.o_b-1", true)]
    [InlineData("bob\n", false)] // .NET's `$` matches before a final newline: ids must match exactly
    [InlineData("bob\r\n", false)]
    [InlineData("\nbob", false)]
    [InlineData("", false)]
    [InlineData("bob smith", false)]
    public void Should_take_a_user_id_only_when_it_matches_exactly(string id, bool valid)
    {
        Assert.Equal(valid, Ids.IsValidUserId(id));
        Assert.Equal(valid, Ids.IsValidClientMessageId(id));
    }

    [Theory]
    [InlineData("dm~alice~bob", true)]
    [InlineData("dm~alice~bob\n", false)]
    public void Should_take_a_conversation_id_only_when_it_matches_exactly(string id, bool valid) =>
        Assert.Equal(valid, Ids.IsValidConversationId(id));

    [Fact]
    public void Should_name_a_group_after_its_creator_and_request_id_the_same_way_for_ever()
    {
        // A retried create finds its group by this id, also after an upgrade: the function is part of the data.
        Assert.Equal("grp~bwlwbrrlu7l2rtgfgt3jasgmit", Ids.GroupFor("alice", "7d2c1e90-0001"));
        Assert.NotEqual(Ids.GroupFor("alice", "7d2c1e90-0001"), Ids.GroupFor("bob", "7d2c1e90-0001"));
        Assert.True(Ids.IsValidConversationId(Ids.GroupFor("alice", "r")));
        Assert.True(Ids.IsGroup(Ids.GroupFor("alice", "r")));
        Assert.False(Ids.IsGroup(Ids.ConversationFor("alice", "bob")));
    }
}
