using System.Runtime.CompilerServices;
using Akka.Actor;
using Akka.Dispatch.MessageQueues;

namespace Messaging.Actors.Tests;

/// <summary>
/// The mailbox entities' message queue (<see cref="CompactDequeMessageQueue"/>): FIFO for every producer, the stash's
/// <see cref="CompactDequeMessageQueue.EnqueueFirst"/>, Count and HasMessages, through growth, wrap-around and the
/// shrink back, alone and under concurrent producers.
/// </summary>
public sealed class CompactDequeMessageQueueSpecs
{
    private static Envelope E(object message) => new(message, ActorRefs.NoSender);

    private static List<object> Drain(IMessageQueue queue)
    {
        var all = new List<object>();
        while (queue.TryDequeue(out var envelope))
            all.Add(envelope.Message);
        return all;
    }

    [Fact]
    public void Should_hold_no_array_until_a_message_arrives_and_report_count_and_has_messages()
    {
        var queue = new CompactDequeMessageQueue();
        Assert.Equal(0, queue.Capacity);
        Assert.Equal(0, queue.Count);
        Assert.False(queue.HasMessages);
        Assert.False(queue.TryDequeue(out _));

        queue.Enqueue(ActorRefs.Nobody, E(1));
        Assert.Equal(CompactDequeMessageQueue.MinCapacity, queue.Capacity);
        Assert.Equal(1, queue.Count);
        Assert.True(queue.HasMessages);

        queue.Enqueue(ActorRefs.Nobody, E(2));
        Assert.Equal(2, queue.Count);
        Assert.True(queue.TryDequeue(out var first));
        Assert.Equal(1, first.Message);
        Assert.Equal(1, queue.Count);
        Assert.True(queue.HasMessages);
        Assert.True(queue.TryDequeue(out var second));
        Assert.Equal(2, second.Message);
        Assert.Equal(0, queue.Count);
        Assert.False(queue.HasMessages);
        Assert.False(queue.TryDequeue(out _));
        // Drained at the smallest size: the array is kept for the next message.
        Assert.Equal(CompactDequeMessageQueue.MinCapacity, queue.Capacity);
    }

    [Fact]
    public void Should_keep_fifo_order_through_wrap_around_and_growth_and_shrink_back_once_drained()
    {
        var queue = new CompactDequeMessageQueue();
        var expected = new Queue<int>();
        var next = 0;
        // Move the head around the ring before it grows, so growth copies a wrapped buffer.
        for (var round = 0; round < 3; round++)
        {
            queue.Enqueue(ActorRefs.Nobody, E(next)); expected.Enqueue(next++);
            queue.Enqueue(ActorRefs.Nobody, E(next)); expected.Enqueue(next++);
            Assert.True(queue.TryDequeue(out var e));
            Assert.Equal(expected.Dequeue(), e.Message);
        }
        for (var i = 0; i < 100; i++)
        {
            queue.Enqueue(ActorRefs.Nobody, E(next)); expected.Enqueue(next++);
            Assert.Equal(expected.Count, queue.Count);
            if (i % 3 == 0)
            {
                Assert.True(queue.TryDequeue(out var e));
                Assert.Equal(expected.Dequeue(), e.Message);
            }
        }
        Assert.True(queue.Capacity > CompactDequeMessageQueue.MinCapacity);
        Assert.Equal(expected.Cast<object>().ToList(), Drain(queue));
        Assert.Equal(0, queue.Count);
        Assert.False(queue.HasMessages);
        Assert.Equal(0, queue.Capacity); // the grown array is given back

        queue.Enqueue(ActorRefs.Nobody, E("again"));
        Assert.Equal(CompactDequeMessageQueue.MinCapacity, queue.Capacity);
        Assert.Equal(["again"], Drain(queue));
    }

    [Fact]
    public void Should_put_enqueue_first_before_everything_queued_as_the_stash_unstashes()
    {
        var queue = new CompactDequeMessageQueue();
        queue.EnqueueFirst(E("only"));
        Assert.Equal(1, queue.Count);
        Assert.Equal(["only"], Drain(queue));

        for (var i = 0; i < 3; i++)
            queue.Enqueue(ActorRefs.Nobody, E($"new{i}"));
        // The stash prepends its messages newest first, so they come out oldest first, before the queue.
        var stashed = Enumerable.Range(0, 10).Select(i => $"stashed{i}").ToList();
        foreach (var message in Enumerable.Reverse(stashed))
            queue.EnqueueFirst(E(message));
        Assert.Equal(13, queue.Count);
        queue.Enqueue(ActorRefs.Nobody, E("new3"));
        Assert.Equal([.. stashed, "new0", "new1", "new2", "new3"], Drain(queue));
        Assert.False(queue.HasMessages);
    }

    [Fact]
    public void Should_behave_as_a_deque_in_any_sequence_of_operations()
    {
        var random = new Random(12);
        for (var run = 0; run < 200; run++)
        {
            var queue = new CompactDequeMessageQueue();
            var model = new LinkedList<int>();
            for (var step = 0; step < 300; step++)
            {
                var op = random.Next(10);
                if (op < 4)
                {
                    queue.Enqueue(ActorRefs.Nobody, E(step));
                    model.AddLast(step);
                }
                else if (op < 6)
                {
                    queue.EnqueueFirst(E(step));
                    model.AddFirst(step);
                }
                else
                {
                    var dequeued = queue.TryDequeue(out var e);
                    Assert.Equal(model.Count > 0, dequeued);
                    if (dequeued)
                    {
                        Assert.Equal(model.First!.Value, e.Message);
                        model.RemoveFirst();
                    }
                }
                Assert.Equal(model.Count, queue.Count);
                Assert.Equal(model.Count > 0, queue.HasMessages);
            }
            Assert.Equal(model.Cast<object>().ToList(), Drain(queue));
        }
    }

    [Fact]
    public async Task Should_lose_and_reorder_nothing_from_concurrent_producers_while_the_consumer_stashes_and_unstashes()
    {
        const int producers = 4;
        const int perProducer = 50_000;
        var queue = new CompactDequeMessageQueue();
        using var start = new Barrier(producers + 1);
        var senders = Enumerable.Range(0, producers).Select(p => Task.Run(() =>
        {
            start.SignalAndWait();
            for (var i = 0; i < perProducer; i++)
                queue.Enqueue(ActorRefs.Nobody, E((p, i)));
        })).ToArray();

        // The one consumer, as an actor would: now and then it takes a few messages aside (stash) and puts them back
        // in front (unstash, newest first): they must come out again in the order they were taken.
        var consumer = Task.Run(() =>
        {
            start.SignalAndWait();
            var next = new int[producers];
            var received = 0;
            var random = new Random(7);
            var stash = new List<Envelope>();
            var clock = System.Diagnostics.Stopwatch.StartNew();
            while (received < producers * perProducer)
            {
                if (!queue.TryDequeue(out var envelope))
                {
                    Assert.True(clock.Elapsed < TimeSpan.FromSeconds(60),
                        $"{received} of {producers * perProducer} received and the queue is empty: messages were lost");
                    continue;
                }
                if (stash.Count < 3 && random.Next(100) < 5)
                {
                    stash.Add(envelope);
                    continue;
                }
                if (stash.Count > 0)
                {
                    queue.EnqueueFirst(envelope);
                    for (var s = stash.Count - 1; s >= 0; s--)
                        queue.EnqueueFirst(stash[s]);
                    stash.Clear();
                    continue;
                }
                var (producer, seq) = ((int, int))envelope.Message;
                Assert.Equal(next[producer], seq);
                next[producer]++;
                received++;
            }
            return next;
        });

        await Task.WhenAll(senders);
        var counts = await consumer;
        Assert.All(counts, c => Assert.Equal(perProducer, c));
        Assert.Equal(0, queue.Count);
        Assert.False(queue.HasMessages);
        Assert.False(queue.TryDequeue(out _));
    }

    [Fact]
    public void Should_keep_no_dequeued_message_alive()
    {
        var queue = new CompactDequeMessageQueue();
        queue.Enqueue(ActorRefs.Nobody, E("stays"));
        var gone = EnqueueAndDequeue(queue);
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        Assert.False(gone.IsAlive);
        Assert.Equal(1, queue.Count);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static WeakReference EnqueueAndDequeue(CompactDequeMessageQueue queue)
    {
        var message = new object();
        queue.EnqueueFirst(E(message));
        Assert.True(queue.TryDequeue(out var envelope));
        Assert.Same(message, envelope.Message);
        return new WeakReference(message);
    }

    [Fact]
    public void Should_hand_what_is_left_to_dead_letters_in_order_on_clean_up()
    {
        var queue = new CompactDequeMessageQueue();
        var deadLetters = new UnboundedMessageQueue();
        queue.Enqueue(ActorRefs.Nobody, E(2));
        queue.EnqueueFirst(E(1));
        queue.Enqueue(ActorRefs.Nobody, E(3));
        queue.CleanUp(ActorRefs.Nobody, deadLetters);
        Assert.Equal(0, queue.Count);
        Assert.Equal([1, 2, 3], Drain(deadLetters).Cast<int>());
    }
}
