using System.Collections.Immutable;
using System.Net;

namespace Mesh.NodeAgent.Proxy.Dns;

/// <summary>How long the FQDN cache keeps what DNS answers taught it.</summary>
public sealed record FqdnCacheOptions
{
    /// <summary>
    /// An address is kept at least this long whatever the answer's TTL: applications cache answers longer than they
    /// should, and a connection made from a stale cache must not be dropped. Default 1 h, as Cilium's tofqdns-min-ttl.
    /// </summary>
    public TimeSpan MinTtl { get; init; } = TimeSpan.FromHours(1);

    /// <summary>Added to every expiry, so a pod that connects right as the TTL runs out still gets through. Default 5 s.</summary>
    public TimeSpan Grace { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// At most this many (name, address) pairs at once: pods choose the names they ask (every name a wildcard rule
    /// allows) and servers the addresses, so the datapath's share of them is bounded. Learning beyond it fails whole, and
    /// the proxy answers SERVFAIL. Default 16384.
    /// </summary>
    public int MaxAddresses { get; init; } = 16384;

    /// <summary>How often expired addresses are looked for (and an address in use at its expiry asked about again). Default 1 s.</summary>
    public TimeSpan SweepInterval { get; init; } = TimeSpan.FromSeconds(1);
}

/// <summary>One address of one name.</summary>
public readonly record struct FqdnAddress(string Name, IPAddress Address);

/// <summary>What changed in the cache: addresses learned for a name for the first time, and addresses that expired.</summary>
public sealed record FqdnCacheChange(IReadOnlyList<FqdnAddress> Added, IReadOnlyList<FqdnAddress> Removed);

/// <summary>
/// The node's name → addresses map for toFQDNs rules, fed by the DNS proxy. Each address of a name expires at the time
/// it was last learned + max(TTL, <see cref="FqdnCacheOptions.MinTtl"/>) + <see cref="FqdnCacheOptions.Grace"/>, but
/// one still in use (the agent's predicate: a connection in conntrack uses it) is kept until it no longer is.
/// <see cref="Changed"/> is raised synchronously, under the cache's lock (so changes arrive in order), on the thread that
/// learned or swept: <see cref="LearnAsync"/> returns only after the handlers have, so an agent that writes its ipcache
/// in the handler has the address in the datapath before the proxy releases the answer.
/// </summary>
public sealed class FqdnCache : IFqdnLearner, IDisposable
{
    private readonly FqdnCacheOptions _options;
    private readonly Func<IPAddress, bool> _inUse;
    private readonly TimeProvider _time;
    private readonly ITimer _sweeper;
    private readonly Lock _lock = new();
    private readonly Dictionary<string, Dictionary<IPAddress, DateTimeOffset>> _expiries = new(StringComparer.Ordinal);
    private int _count;
    private ImmutableDictionary<string, ImmutableHashSet<IPAddress>> _current = ImmutableDictionary.Create<string, ImmutableHashSet<IPAddress>>(StringComparer.Ordinal);

    public FqdnCache(FqdnCacheOptions options, Func<IPAddress, bool> inUse, TimeProvider? time = null)
    {
        if (options.MinTtl < TimeSpan.Zero || options.Grace < TimeSpan.Zero || options.SweepInterval <= TimeSpan.Zero || options.MaxAddresses < 1)
            throw new ArgumentException("FqdnCacheOptions: MinTtl and Grace must not be negative, SweepInterval and MaxAddresses must be positive", nameof(options));
        _options = options;
        _inUse = inUse;
        _time = time ?? TimeProvider.System;
        _sweeper = _time.CreateTimer(_ => Sweep(), null, options.SweepInterval, options.SweepInterval);
    }

    /// <summary>Raised when a name gains an address or loses one.</summary>
    public event EventHandler<FqdnCacheChange>? Changed;

    /// <summary>Every name with its current addresses: an immutable snapshot.</summary>
    public IReadOnlyDictionary<string, ImmutableHashSet<IPAddress>> Current => Volatile.Read(ref _current);

    /// <summary>The addresses of <paramref name="name"/> now (normalized, as the proxy reports it).</summary>
    public IReadOnlySet<IPAddress> AddressesOf(string name) => Current.TryGetValue(name, out var addresses) ? addresses : [];

    /// <summary>The policy is not needed: a name's addresses are the node's, whichever pod asked (as Cilium's name → IP map).</summary>
    public ValueTask LearnAsync(ProxiedPolicy policy, string name, IReadOnlyList<IPAddress> addresses, TimeSpan ttl, CancellationToken cancellationToken)
    {
        Learn(name, addresses, ttl);
        return ValueTask.CompletedTask;
    }

    /// <summary>
    /// Adds <paramref name="addresses"/> to <paramref name="name"/>, or extends their life; <see cref="FqdnCacheFullException"/>
    /// when they do not fit. Returns whether the name gained an address.
    /// </summary>
    public bool Learn(string name, IReadOnlyList<IPAddress> addresses, TimeSpan ttl)
    {
        var expiry = _time.GetUtcNow() + (ttl > _options.MinTtl ? ttl : _options.MinTtl) + _options.Grace;
        lock (_lock)
        {
            var known = _expiries.GetValueOrDefault(name);
            var added = addresses.Distinct().Where(a => known is null || !known.ContainsKey(a)).Select(a => new FqdnAddress(name, a)).ToList();
            if (_count + added.Count > _options.MaxAddresses) throw new FqdnCacheFullException(name, _options.MaxAddresses);
            if (known is null) _expiries[name] = known = [];
            foreach (var address in addresses)
                if (!known.TryGetValue(address, out var previous) || expiry > previous) known[address] = expiry;
            _count += added.Count;
            if (added.Count > 0) PublishLocked(added, []);
            return added.Count > 0;
        }
    }

    /// <summary>Drops the addresses whose time is up and that no connection uses; the timer calls it every <see cref="FqdnCacheOptions.SweepInterval"/>.</summary>
    public void Sweep()
    {
        var now = _time.GetUtcNow();
        lock (_lock)
        {
            var removed = new List<FqdnAddress>();
            foreach (var (name, known) in _expiries)
            {
                foreach (var (address, expiry) in known)
                    if (expiry <= now && !_inUse(address)) removed.Add(new FqdnAddress(name, address));
            }
            foreach (var gone in removed)
            {
                var known = _expiries[gone.Name];
                known.Remove(gone.Address);
                if (known.Count == 0) _expiries.Remove(gone.Name);
            }
            _count -= removed.Count;
            if (removed.Count > 0) PublishLocked([], removed);
        }
    }

    private void PublishLocked(List<FqdnAddress> added, List<FqdnAddress> removed)
    {
        var current = _current;
        foreach (var name in added.Concat(removed).Select(a => a.Name).Distinct())
            current = _expiries.TryGetValue(name, out var known) ? current.SetItem(name, [.. known.Keys]) : current.Remove(name);
        Volatile.Write(ref _current, current);
        Changed?.Invoke(this, new FqdnCacheChange(added, removed));
    }

    public void Dispose() => _sweeper.Dispose();
}

/// <summary>The cache holds <see cref="FqdnCacheOptions.MaxAddresses"/> already: nothing of the answer was learned.</summary>
public sealed class FqdnCacheFullException(string name, int max)
    : InvalidOperationException($"FQDN cache full ({max} name addresses): the addresses of {name} were not learned");
