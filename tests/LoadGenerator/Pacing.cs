using System.Diagnostics;

namespace Messaging.LoadGenerator;

/// <summary>Operations in flight: counted by the pacing loop, read by whoever waits for them to drain.</summary>
internal sealed class InFlight
{
    public int Count;

    public int Current => Volatile.Read(ref Count);
}

internal static class Pacing
{
    /// <summary>
    /// An open loop: from <paramref name="origin"/> to <paramref name="end"/> (Stopwatch ticks), issues operation k at
    /// <c>origin + k / rate</c> and passes that time to it, so latency counts from when it was due, however late it
    /// went out (no coordinated omission). With <paramref name="maxOutstanding"/> in flight, a due operation is not
    /// issued but counted by <paramref name="dropped"/>: the loop never queues without bound.
    /// </summary>
    public static async Task OpenLoop(double rate, long origin, long end, InFlight inFlight, int maxOutstanding,
        Action<long> dropped, Func<Random, long, Task> one)
    {
        var random = new Random(1);
        long issued = 0;
        while (Stopwatch.GetTimestamp() < end)
        {
            var due = (long)((Stopwatch.GetTimestamp() - origin) / (double)Stopwatch.Frequency * rate);
            for (; issued < due; issued++)
            {
                var dueAt = origin + (long)(issued / rate * Stopwatch.Frequency);
                if (inFlight.Current >= maxOutstanding)
                {
                    dropped(dueAt);
                    continue;
                }
                Interlocked.Increment(ref inFlight.Count);
                var seed = random.Next();
                _ = Task.Run(async () =>
                {
                    try { await one(new Random(seed), dueAt); }
                    finally { Interlocked.Decrement(ref inFlight.Count); }
                }, CancellationToken.None);
            }
            await Task.Delay(1);
        }
    }
}
