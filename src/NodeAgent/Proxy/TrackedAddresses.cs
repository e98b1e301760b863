using System.Net;

namespace Mesh.NodeAgent.Proxy;

/// <summary>
/// Whether a connection in conntrack still uses an address, read from the datapath at most once per
/// <paramref name="freshFor"/>: the FQDN cache asks about each address it would let expire, and one read of the
/// conntrack map answers for all of them.
/// </summary>
public sealed class TrackedAddresses(Func<IReadOnlySet<IPAddress>> read, TimeSpan freshFor, TimeProvider? time = null)
{
    private readonly TimeProvider _time = time ?? TimeProvider.System;
    private readonly Lock _lock = new();
    private IReadOnlySet<IPAddress> _addresses = new HashSet<IPAddress>();
    private long _readAt = long.MinValue;

    public bool InUse(IPAddress address)
    {
        lock (_lock)
        {
            var now = _time.GetTimestamp();
            if (_readAt == long.MinValue || _time.GetElapsedTime(_readAt, now) >= freshFor)
            {
                _addresses = read();
                _readAt = now;
            }
            return _addresses.Contains(address);
        }
    }
}
