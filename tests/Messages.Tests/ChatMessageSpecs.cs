using Messaging.Messages;
using Xunit;

namespace Messaging.Messages.Tests;

public sealed class ChatMessageSpecs
{
    [Fact]
    public void Should_derive_the_message_id_from_sender_and_stamp_and_keep_any_other_id_as_given()
    {
        var derived = new ChatMessage(Ids.MessageId("alice", 0x18bcfe73cc0), "dm~alice~bob", "alice", ["bob"], "hi", "c1", 0x18bcfe73cc0);
        var other = derived with { MessageId = "legacy-id" };

        Assert.Equal("18bcfe73cc0-alice", derived.MessageId);
        Assert.Equal("legacy-id", other.MessageId);
        Assert.NotEqual(derived, other);
        Assert.Equal(derived, other with { MessageId = "18bcfe73cc0-alice" });
        Assert.False(Ids.IsDerivedMessageId("18bcfe73cc0-alic", "alice", 0x18bcfe73cc0));
        Assert.False(Ids.IsDerivedMessageId("18bcfe73cc1-alice", "alice", 0x18bcfe73cc0));
    }
}
