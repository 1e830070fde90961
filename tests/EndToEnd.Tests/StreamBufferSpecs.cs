using Messaging.Http;

namespace Messaging.EndToEnd.Tests;

/// <summary>What a live-stream client that does not read can make the node hold: bounded by events and by bytes.</summary>
public sealed class StreamBufferSpecs
{
    private static readonly MessagingApiOptions Options = new() { LiveStreamBuffer = 101, LiveStreamBufferBytes = 512 * 1024 };

    [Fact]
    public void Should_refuse_a_frame_past_the_byte_bound_and_take_more_once_the_client_reads()
    {
        var buffer = new StreamBuffer(Options);
        var frame = new byte[200 * 1024];

        Assert.True(buffer.TryWrite(frame));
        Assert.True(buffer.TryWrite(frame));
        Assert.False(buffer.TryWrite(frame)); // 600 KiB would pass 512 KiB
        Assert.Equal(400 * 1024, buffer.Bytes);

        Assert.True(buffer.Reader.TryRead(out var written));
        buffer.Written(written!.Length);
        Assert.True(buffer.TryWrite(frame));
    }

    [Fact]
    public void Should_refuse_a_frame_past_the_event_bound()
    {
        var buffer = new StreamBuffer(Options);
        for (var i = 0; i < Options.LiveStreamBuffer; i++)
            Assert.True(buffer.TryWrite(new byte[10]));

        Assert.False(buffer.TryWrite(new byte[10]));
        Assert.False(buffer.HasRoomFor(1, 10));
    }

    [Fact]
    public void Should_always_take_one_frame_into_an_empty_buffer_however_large()
    {
        var buffer = new StreamBuffer(Options);

        Assert.True(buffer.TryWrite(new byte[600 * 1024])); // a message of 64 KiB escaped: never stuck behind the bound
        Assert.False(buffer.TryWrite(new byte[1]));
    }

    [Fact]
    public void Should_leave_room_for_a_catch_up_page_only_when_a_whole_page_fits()
    {
        var buffer = new StreamBuffer(Options);
        Assert.True(buffer.HasRoomFor(100, 100 * 4096));
        Assert.True(buffer.TryWrite(new byte[10]));
        Assert.True(buffer.TryWrite(new byte[10]));

        Assert.False(buffer.HasRoomFor(100, 100 * 4096)); // 102 events would pass 101
    }
}
