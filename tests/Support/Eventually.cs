using System.Diagnostics;

namespace Messaging.Testing;

/// <summary>Polls a condition until it holds or a deadline passes: the tests' one way of waiting.</summary>
public static class Eventually
{
    private static readonly TimeSpan FirstPause = TimeSpan.FromMilliseconds(20);
    private static readonly TimeSpan DefaultEvery = TimeSpan.FromMilliseconds(250);

    /// <summary>
    /// True once <paramref name="condition"/> holds, false if <paramref name="within"/> passes first. It asks again
    /// soon at first, then less often, at most <paramref name="every"/> (250 ms unless given) apart.
    /// </summary>
    public static async Task<bool> TryAsync(Func<Task<bool>> condition, TimeSpan within, TimeSpan? every = null)
    {
        var deadline = Stopwatch.StartNew();
        var longest = every ?? DefaultEvery;
        var pause = FirstPause < longest ? FirstPause : longest;
        while (!await condition())
        {
            if (deadline.Elapsed >= within)
                return false;
            await Task.Delay(pause);
            pause = TimeSpan.FromTicks(Math.Min(pause.Ticks * 2, longest.Ticks));
        }
        return true;
    }

    /// <summary>Fails with <paramref name="whatFailed"/> (worked out only then) unless the condition holds in time.</summary>
    public static async Task AssertAsync(Func<Task<bool>> condition, TimeSpan within, Func<string> whatFailed,
        TimeSpan? every = null)
    {
        if (!await TryAsync(condition, within, every))
            throw new TimeoutException($"Not within {within.TotalSeconds:0.#} s: {whatFailed()}");
    }

    public static Task AssertAsync(Func<Task<bool>> condition, TimeSpan within, string whatFailed) =>
        AssertAsync(condition, within, () => whatFailed);
}
