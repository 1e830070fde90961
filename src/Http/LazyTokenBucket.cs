using System.Threading.RateLimiting;

namespace Messaging.Http;

/// <summary>
/// One user's token bucket, refilled when it is used (whole periods elapsed since the last refill) rather than by a
/// timer. The partitioned limiter replenishes every <see cref="ReplenishingRateLimiter"/> it holds on a 100 ms
/// heartbeat, which walked every user's bucket of every policy ten times a second whether they sent or not (~2 % of
/// the node's CPU with 2,000 users; docs/benchmarks.md, "What a send costs"); a bucket that is not replenishing costs
/// the heartbeat one idle check. Tokens come at the same exact rate, and no later than the heartbeat gave them.
/// </summary>
public sealed class LazyTokenBucket : RateLimiter
{
    private readonly int _burst;
    private readonly int _tokensPerPeriod;
    private readonly long _periodTicks;
    private readonly TimeSpan _period;
    private readonly TimeProvider _time;
    private readonly Lock _gate = new();
    private long _tokens;
    private long _refilledAt;
    private long? _fullSince;

    public LazyTokenBucket(int burst, int tokensPerPeriod, TimeSpan period, TimeProvider? time = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(burst, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(tokensPerPeriod, 1);
        _time = time ?? TimeProvider.System;
        _burst = burst;
        _tokensPerPeriod = tokensPerPeriod;
        _period = period;
        _periodTicks = Math.Max(1, (long)(period.TotalSeconds * _time.TimestampFrequency));
        _tokens = burst;
        _refilledAt = _time.GetTimestamp();
        _fullSince = _refilledAt;
    }

    /// <summary>How long the bucket has been full (the partitioned limiter drops a bucket idle for 10 s); null while not full.</summary>
    public override TimeSpan? IdleDuration
    {
        get
        {
            lock (_gate)
            {
                var now = _time.GetTimestamp();
                Refill(now);
                return _fullSince is { } since ? _time.GetElapsedTime(since, now) : null;
            }
        }
    }

    public override RateLimiterStatistics? GetStatistics()
    {
        lock (_gate)
        {
            Refill(_time.GetTimestamp());
            return new RateLimiterStatistics { CurrentAvailablePermits = _tokens };
        }
    }

    protected override RateLimitLease AttemptAcquireCore(int permitCount)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(permitCount);
        lock (_gate)
        {
            Refill(_time.GetTimestamp());
            if (permitCount == 0 ? _tokens > 0 : _tokens >= permitCount)
            {
                _tokens -= permitCount;
                if (_tokens < _burst)
                    _fullSince = null;
                return Lease.Granted;
            }
            // Whole periods until enough tokens, as the framework's token bucket says it.
            var periods = (permitCount - _tokens + _tokensPerPeriod - 1) / _tokensPerPeriod;
            return new Lease(false, TimeSpan.FromTicks(_period.Ticks * periods));
        }
    }

    // No queue (QueueLimit 0 in the framework's terms): a request either has a token now or is refused.
    protected override ValueTask<RateLimitLease> AcquireAsyncCore(int permitCount, CancellationToken cancellationToken) =>
        ValueTask.FromResult(AttemptAcquireCore(permitCount));

    private void Refill(long now)
    {
        var periods = (now - _refilledAt) / _periodTicks;
        if (periods <= 0)
            return;
        var from = _refilledAt;
        _refilledAt += periods * _periodTicks;
        if (_tokens >= _burst)
            return;
        var toFull = (_burst - _tokens + _tokensPerPeriod - 1) / _tokensPerPeriod; // periods it took to fill up
        if (periods >= toFull)
        {
            _tokens = _burst;
            _fullSince = from + toFull * _periodTicks;
        }
        else
            _tokens += periods * _tokensPerPeriod;
    }

    private sealed class Lease(bool granted, TimeSpan? retryAfter) : RateLimitLease
    {
        public static readonly Lease Granted = new(true, null);

        public override bool IsAcquired => granted;

        public override IEnumerable<string> MetadataNames => retryAfter is null ? [] : [MetadataName.RetryAfter.Name];

        public override bool TryGetMetadata(string metadataName, out object? metadata)
        {
            if (retryAfter is { } wait && metadataName == MetadataName.RetryAfter.Name)
            {
                metadata = wait;
                return true;
            }
            metadata = null;
            return false;
        }
    }
}
