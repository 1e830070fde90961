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
}
