using System.Globalization;
using System.Threading.RateLimiting;

namespace Mesh.ControlPlane.Identities;

/// <summary>A new identity refused to <paramref name="Principal"/>: its bucket is empty for <paramref name="RetryAfter"/>.</summary>
public sealed record AllocationLimited(string Principal, int RatePerMinute, int Burst, TimeSpan RetryAfter)
{
    /// <summary>Whole seconds, rounded up, as a Retry-After header says them (at least 1).</summary>
    public int RetryAfterSeconds => Math.Max(1, (int)Math.Ceiling(RetryAfter.TotalSeconds));

    public string Limit => $"{Burst} new identities at once, then {RatePerMinute} a minute (--identity-allocation-burst, --identity-allocation-rate)";

    public override string ToString() =>
        $"principal \"{Principal}\" has had new identities allocated faster than the limit of {Limit}; retry in {RetryAfterSeconds.ToString(CultureInfo.InvariantCulture)} s";
}

/// <summary>
/// One token bucket per principal for allocating new identities (label sets without one yet): a caller that keeps
/// registering endpoints with fresh labels cannot drain the identity space faster than released numbers come back.
/// The buckets live in this replica's memory: a principal whose requests reach several replicas gets each one's
/// rate, and a restart refills them. That bounds churn, which is the point; it is not an exact cluster-wide quota.
/// </summary>
public sealed class IdentityAllocationLimiter : IDisposable
{
    private readonly PartitionedRateLimiter<string> _buckets;
    private readonly int _ratePerMinute;
    private readonly int _burst;

    public IdentityAllocationLimiter(ControlPlaneOptions options)
    {
        (_ratePerMinute, _burst) = (options.IdentityAllocationRate, options.IdentityAllocationBurst);
        // One token at a time, evenly spread over the minute, rather than the whole rate once a minute.
        var bucket = new TokenBucketRateLimiterOptions
        {
            TokenLimit = _burst,
            TokensPerPeriod = 1,
            ReplenishmentPeriod = TimeSpan.FromMinutes(1) / _ratePerMinute,
            QueueLimit = 0,
            // The partitioned limiter refills every bucket from one timer, and drops buckets that stay full.
            AutoReplenishment = false,
        };
        _buckets = PartitionedRateLimiter.Create<string, string>(
            principal => RateLimitPartition.GetTokenBucketLimiter(principal, _ => bucket), StringComparer.Ordinal);
    }

    /// <summary>
    /// Null when <paramref name="principal"/>'s bucket has a new identity left, else the refusal. It takes nothing:
    /// <see cref="Charge"/> does once the identity is allocated. Concurrent requests of one principal may all pass
    /// before the first is charged, so a burst can overshoot by the requests it has in flight, and no further.
    /// </summary>
    public AllocationLimited? RefusalFor(string principal) =>
        _buckets.GetStatistics(principal) is { CurrentAvailablePermits: <= 0 }
            // The bucket gains one identity per period: the next is at most that far away.
            ? new AllocationLimited(principal, _ratePerMinute, _burst, TimeSpan.FromMinutes(1) / _ratePerMinute)
            : null;

    /// <summary>Takes one new identity from <paramref name="principal"/>'s bucket (none left: the overshoot above, forgiven).</summary>
    public void Charge(string principal)
    {
        using var lease = _buckets.AttemptAcquire(principal);
    }

    public void Dispose() => _buckets.Dispose();
}
