using System.Diagnostics;
using System.Net;
using Mesh.Contracts.Policies;
using Mesh.NodeAgent.Proxy;
using Mesh.NodeAgent.Proxy.Dns;
using Microsoft.Extensions.Time.Testing;

namespace Mesh.NodeAgent.Tests.Proxy.Dns;

/// <summary>The FQDN cache's lifetimes, on a clock the test moves (and once on the real one).</summary>
public sealed class FqdnCacheTests
{
    private static readonly IPAddress A = IPAddress.Parse("10.232.9.1"), B = IPAddress.Parse("10.232.9.2");
    private static readonly FqdnCacheOptions Minute = new() { MinTtl = TimeSpan.FromSeconds(60), Grace = TimeSpan.FromSeconds(5), SweepInterval = TimeSpan.FromSeconds(1) };
    private static readonly ProxiedPolicy AnyPolicy = new(1000, 2000, 1, "rule", L7Policy.Create([], [], allowsAll: true));

    [Fact]
    public void Ttl_below_the_minimum_keeps_the_address_for_the_minimum_plus_grace()
    {
        var time = new FakeTimeProvider();
        using var cache = new FqdnCache(Minute, _ => false, time);

        cache.Learn("api.example.com", [A], TimeSpan.FromSeconds(10));

        time.Advance(TimeSpan.FromSeconds(64));
        Assert.Contains(A, cache.AddressesOf("api.example.com"));
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.Empty(cache.AddressesOf("api.example.com"));
        Assert.False(cache.Current.ContainsKey("api.example.com"));
    }

    [Fact]
    public void Ttl_above_the_minimum_keeps_the_address_for_the_ttl_plus_grace()
    {
        var time = new FakeTimeProvider();
        using var cache = new FqdnCache(Minute, _ => false, time);

        cache.Learn("api.example.com", [A], TimeSpan.FromSeconds(120));

        time.Advance(TimeSpan.FromSeconds(124));
        Assert.Contains(A, cache.AddressesOf("api.example.com"));
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.Empty(cache.AddressesOf("api.example.com"));
    }

    [Fact]
    public void Address_in_use_at_its_expiry_is_kept_until_no_connection_uses_it()
    {
        var time = new FakeTimeProvider();
        var inUse = new HashSet<IPAddress> { A };
        using var cache = new FqdnCache(Minute, inUse.Contains, time);
        var changes = new List<FqdnCacheChange>();
        cache.Changed += (_, change) => changes.Add(change);
        cache.Learn("api.example.com", [A, B], TimeSpan.Zero);

        time.Advance(TimeSpan.FromMinutes(10));
        Assert.Equal([A], cache.AddressesOf("api.example.com"));
        Assert.Equal([new FqdnAddress("api.example.com", B)], changes[^1].Removed);

        inUse.Clear();
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.Empty(cache.AddressesOf("api.example.com"));
        Assert.Equal([new FqdnAddress("api.example.com", A)], changes[^1].Removed);
        Assert.Empty(changes[^1].Added);
    }

    [Fact]
    public void Only_new_addresses_raise_a_change_and_learning_one_again_extends_its_life()
    {
        var time = new FakeTimeProvider();
        using var cache = new FqdnCache(Minute, _ => false, time);
        var changes = new List<FqdnCacheChange>();
        cache.Changed += (_, change) => changes.Add(change);

        cache.Learn("api.example.com", [A], TimeSpan.Zero);
        time.Advance(TimeSpan.FromSeconds(30));
        cache.Learn("api.example.com", [A, B], TimeSpan.Zero);

        Assert.Equal(2, changes.Count);
        Assert.Equal([new FqdnAddress("api.example.com", A)], changes[0].Added);
        Assert.Equal([new FqdnAddress("api.example.com", B)], changes[1].Added);
        // A was first due at 65 s; learned again at 30 s it is due at 95 s, with B.
        time.Advance(TimeSpan.FromSeconds(64));
        Assert.Equal([A, B], cache.AddressesOf("api.example.com").Order(new AddressOrder()));
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.Empty(cache.AddressesOf("api.example.com"));
        Assert.Equal(3, changes.Count);
    }

    [Fact]
    public async Task The_change_is_delivered_before_the_learner_returns_so_the_answer_waits_for_it()
    {
        using var cache = new FqdnCache(Minute, _ => false, new FakeTimeProvider());
        FqdnCacheChange? seen = null;
        cache.Changed += (_, change) => seen = change;

        await cache.LearnAsync(AnyPolicy, "api.example.com", [A], TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken);

        Assert.Equal([new FqdnAddress("api.example.com", A)], seen!.Added);
        Assert.Equal([A], cache.Current["api.example.com"]);
    }

    [Fact]
    public async Task Addresses_expire_on_the_real_clock_once_their_time_is_up()
    {
        var grace = TimeSpan.FromMilliseconds(200);
        using var cache = new FqdnCache(new FqdnCacheOptions { MinTtl = TimeSpan.Zero, Grace = grace, SweepInterval = TimeSpan.FromMilliseconds(20) }, _ => false);
        var expired = new TaskCompletionSource<FqdnCacheChange>(TaskCreationOptions.RunContinuationsAsynchronously);
        cache.Changed += (_, change) => { if (change.Removed.Count > 0) expired.TrySetResult(change); };
        var clock = Stopwatch.StartNew();

        cache.Learn("api.example.com", [A], TimeSpan.Zero);
        var change = await expired.Task.WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);

        Assert.True(clock.Elapsed >= grace, $"expired after {clock.Elapsed.TotalMilliseconds} ms, before the grace of {grace.TotalMilliseconds} ms");
        Assert.Equal([new FqdnAddress("api.example.com", A)], change.Removed);
        Assert.Empty(cache.Current);
    }

    [Fact]
    public void An_answer_beyond_the_address_budget_is_refused_whole_until_others_expire()
    {
        var time = new FakeTimeProvider();
        using var cache = new FqdnCache(Minute with { MaxAddresses = 2 }, _ => false, time);
        cache.Learn("api.example.com", [A], TimeSpan.Zero);
        time.Advance(TimeSpan.FromSeconds(30));

        Assert.Throws<FqdnCacheFullException>(() => cache.Learn("www.example.com", [A, B], TimeSpan.Zero));
        Assert.False(cache.Current.ContainsKey("www.example.com"));
        cache.Learn("api.example.com", [A, B], TimeSpan.Zero); // A again costs nothing, B takes the last place

        time.Advance(TimeSpan.FromSeconds(65)); // both gone at 95 s
        cache.Learn("www.example.com", [A, B], TimeSpan.Zero);
        Assert.Equal([A, B], cache.AddressesOf("www.example.com").Order(new AddressOrder()));
    }

    [Fact]
    public void Negative_lifetimes_a_zero_sweep_interval_or_no_address_budget_are_refused()
    {
        Assert.Throws<ArgumentException>(() => new FqdnCache(Minute with { MinTtl = TimeSpan.FromSeconds(-1) }, _ => false));
        Assert.Throws<ArgumentException>(() => new FqdnCache(Minute with { Grace = TimeSpan.FromSeconds(-1) }, _ => false));
        Assert.Throws<ArgumentException>(() => new FqdnCache(Minute with { SweepInterval = TimeSpan.Zero }, _ => false));
        Assert.Throws<ArgumentException>(() => new FqdnCache(Minute with { MaxAddresses = 0 }, _ => false));
    }

    private sealed class AddressOrder : IComparer<IPAddress>
    {
        public int Compare(IPAddress? x, IPAddress? y) => string.CompareOrdinal(x?.ToString(), y?.ToString());
    }
}
