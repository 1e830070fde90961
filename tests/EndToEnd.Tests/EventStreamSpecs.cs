using System.Collections.Concurrent;
using System.Text;
using Akka.Actor;
using Messaging.Http;
using Messaging.Messages;

namespace Messaging.EndToEnd.Tests;

/// <summary>
/// The stream actor on its own: a recorder stands in for the shard region, and the test answers as the mailbox
/// would, from an actor it can stop. What reaches the client is what lands in the <see cref="StreamBuffer"/>.
/// </summary>
public sealed class EventStreamSpecs : IAsyncLifetime
{
    private static readonly TimeSpan Soon = TimeSpan.FromSeconds(5);
    private ActorSystem _system = null!;

    public ValueTask InitializeAsync()
    {
        _system = ActorSystem.Create("event-stream-specs");
        return ValueTask.CompletedTask;
    }

    public async ValueTask DisposeAsync() => await _system.Terminate();

    private sealed class Recorder : ReceiveActor
    {
        public Recorder(BlockingCollection<Subscribe> asked) => Receive<Subscribe>(asked.Add);
    }

    private sealed class Mailbox : ReceiveActor
    {
        public Mailbox() => ReceiveAny(_ => { });
    }

    private (IActorRef Stream, BlockingCollection<Subscribe> Asked, StreamBuffer Buffer) Start(long after, MessagingApiOptions options)
    {
        var asked = new BlockingCollection<Subscribe>();
        var region = _system.ActorOf(Props.Create(() => new Recorder(asked)));
        var buffer = new StreamBuffer(options);
        var started = new TaskCompletionSource<object>(TaskCreationOptions.RunContinuationsAsynchronously);
        var stream = _system.ActorOf(EventStream.Props("bob", after, region, buffer, started, options));
        return (stream, asked, buffer);
    }

    private static Subscribe Next(BlockingCollection<Subscribe> asked) =>
        asked.TryTake(out var subscribe, Soon) ? subscribe : throw new TimeoutException("the stream asked nothing");

    private static ConversationChange Change(long stamp) =>
        new(new ConversationSummary("dm~alice~bob", ["alice", "bob"], "hi", stamp, LastSeq: stamp), []);

    private static async Task<List<string>> Frames(StreamBuffer buffer, int count)
    {
        var frames = new List<string>();
        using var timeout = new CancellationTokenSource(Soon);
        while (frames.Count < count)
        {
            var frame = await buffer.Reader.ReadAsync(timeout.Token);
            buffer.Written(frame.Length);
            frames.Add(Encoding.UTF8.GetString(frame));
        }
        return frames;
    }

    [Fact]
    public async Task Should_drop_what_is_not_after_its_last_id_and_ask_the_next_incarnation_from_it_when_the_mailbox_stops()
    {
        var (stream, asked, buffer) = Start(5, new MessagingApiOptions());
        Assert.Equal(new Subscribe("bob", 5), Next(asked));
        var mailbox = _system.ActorOf(Props.Create(() => new Mailbox()));

        stream.Tell(new LiveChanges([Change(7)], CaughtUp: true, UpTo: 7), mailbox);
        stream.Tell(new LiveChanges([Change(6), Change(7), Change(8)], CaughtUp: true, UpTo: 8), mailbox); // a page overlapping pushes

        var frames = await Frames(buffer, 2);
        Assert.Contains("id: 7\n", frames[0]);
        Assert.Contains("id: 8\n", frames[1]);
        Assert.Equal(0, buffer.Count); // 6 and the second 7 were dropped

        await mailbox.GracefulStop(Soon);
        Assert.Equal(new Subscribe("bob", 8), Next(asked)); // at once, from its own last id
    }

    [Fact]
    public async Task Should_tell_the_client_where_a_live_start_begins_before_any_event()
    {
        var (stream, asked, buffer) = Start(long.MaxValue, new MessagingApiOptions());
        Assert.Equal(long.MaxValue, Next(asked).AfterStamp);

        stream.Tell(new LiveChanges([], CaughtUp: true, UpTo: 42), _system.ActorOf(Props.Create(() => new Mailbox())));

        Assert.Equal("id: 42\n\n", Assert.Single(await Frames(buffer, 1)));
    }

    [Fact]
    public async Task Should_close_the_stream_when_a_question_stays_unanswered_for_a_whole_interval()
    {
        var (stream, asked, buffer) = Start(5, new MessagingApiOptions { LiveKeepAlive = TimeSpan.FromMilliseconds(300) });
        Next(asked);
        stream.Tell(new LiveChanges([], CaughtUp: true, UpTo: 5), _system.ActorOf(Props.Create(() => new Mailbox())));

        Assert.Equal(new Subscribe("bob", 5), Next(asked)); // the heartbeat; nobody answers it
        await buffer.Reader.Completion.WaitAsync(Soon, TestContext.Current.CancellationToken); // closed: the client reconnects with its last id
    }

    [Fact]
    public async Task Should_keep_a_stream_whose_mailbox_answers_every_heartbeat()
    {
        var (stream, asked, buffer) = Start(5, new MessagingApiOptions { LiveKeepAlive = TimeSpan.FromSeconds(1) });
        var mailbox = _system.ActorOf(Props.Create(() => new Mailbox()));
        for (var i = 0; i < 3; i++) // the first question and two heartbeats, each answered at once
        {
            Next(asked);
            stream.Tell(new LiveChanges([], CaughtUp: true, UpTo: 5), mailbox);
        }

        await Task.Delay(TimeSpan.FromMilliseconds(200), TestContext.Current.CancellationToken);
        Assert.False(buffer.Reader.Completion.IsCompleted);
    }
}
