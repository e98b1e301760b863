using System.Threading.Channels;
using FlowMessage = Mesh.Contracts.Hubble.Flows.Flow;

namespace Mesh.NodeAgent.Hubble;

/// <summary>
/// The node's recent flows, oldest first, in a ring of fixed capacity: when it is full the oldest flow falls off
/// (<see cref="Seen"/> minus <see cref="Count"/> have). Followers get each new flow through a queue of their own;
/// <see cref="Add"/> never waits for one, so a slow reader cannot hold back the datapath's reader: what does not fit
/// its queue is counted as lost for that reader alone.
/// </summary>
public sealed class FlowBuffer(int capacity, int followerQueue = FlowBuffer.DefaultFollowerQueue)
{
    public const int DefaultCapacity = 65_536;
    public const int DefaultFollowerQueue = 4_096;

    private readonly FlowMessage?[] _ring = capacity > 0 ? new FlowMessage?[capacity]
        : throw new ArgumentOutOfRangeException(nameof(capacity), capacity, "the flow buffer holds at least one flow");
    private readonly Lock _gate = new();
    private readonly List<FlowFollower> _followers = [];
    private long _seen;
    private long _lostByFollowers;

    public int Capacity => _ring.Length;

    /// <summary>Flows that found a follower's queue full, summed over every follower there has been.</summary>
    public long LostByFollowers { get { lock (_gate) return _lostByFollowers; } }

    /// <summary>Every flow added since the buffer was made.</summary>
    public long Seen { get { lock (_gate) return _seen; } }

    public int Count { get { lock (_gate) return (int)Math.Min(_seen, _ring.Length); } }

    public void Add(FlowMessage flow)
    {
        lock (_gate)
        {
            _ring[_seen % _ring.Length] = flow;
            _seen++;
            foreach (var follower in _followers)
                if (!follower.Offer(flow)) _lostByFollowers++;
        }
    }

    /// <summary>The flows held now, oldest first.</summary>
    public IReadOnlyList<FlowMessage> Snapshot()
    {
        lock (_gate) return SnapshotLocked();
    }

    /// <summary>The flows held now and a follower that gets every flow added after them: none is missed or repeated.</summary>
    public (IReadOnlyList<FlowMessage> Held, FlowFollower Follower) SnapshotAndFollow()
    {
        lock (_gate)
        {
            var follower = new FlowFollower(followerQueue, Unfollow);
            _followers.Add(follower);
            return (SnapshotLocked(), follower);
        }
    }

    private void Unfollow(FlowFollower follower)
    {
        lock (_gate) _followers.Remove(follower);
    }

    private List<FlowMessage> SnapshotLocked()
    {
        var count = (int)Math.Min(_seen, _ring.Length);
        var flows = new List<FlowMessage>(count);
        for (var i = _seen - count; i < _seen; i++) flows.Add(_ring[i % _ring.Length]!);
        return flows;
    }
}

/// <summary>One new flow for a follower, or how many it lost because it read more slowly than they came.</summary>
public readonly record struct Followed(FlowMessage? Flow, ulong Lost);

/// <summary>
/// The queue of one follower of a <see cref="FlowBuffer"/>. Flows that find it full are counted, and the count is
/// delivered in order: after the flows queued before the loss, before those queued after it.
/// </summary>
public sealed class FlowFollower : IDisposable
{
    private readonly Channel<Followed> _queue;
    private readonly Action<FlowFollower> _unfollow;
    private readonly Lock _gate = new();
    private ulong _lost;

    internal FlowFollower(int capacity, Action<FlowFollower> unfollow)
    {
        _queue = Channel.CreateBounded<Followed>(new BoundedChannelOptions(capacity) { SingleReader = true, SingleWriter = true });
        _unfollow = unfollow;
    }

    /// <summary>Called by the buffer for each new flow; never waits.</summary>
    /// <returns>false when the flow was lost to this follower</returns>
    internal bool Offer(FlowMessage flow)
    {
        lock (_gate)
        {
            if (_lost > 0 && _queue.Writer.TryWrite(new Followed(null, _lost))) _lost = 0;
            if (_lost == 0 && _queue.Writer.TryWrite(new Followed(flow, 0))) return true;
            _lost++;
            return false;
        }
    }

    public async IAsyncEnumerable<Followed> ReadAllAsync([System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct)
    {
        while (true)
        {
            if (_queue.Reader.TryRead(out var next))
            {
                yield return next;
                continue;
            }
            ulong lost = 0;
            lock (_gate)
            {
                // Nothing queued: a loss not yet delivered is the newest news.
                if (_queue.Reader.Count == 0) (lost, _lost) = (_lost, 0);
            }
            if (lost > 0)
            {
                yield return new Followed(null, lost);
                continue;
            }
            if (!await _queue.Reader.WaitToReadAsync(ct)) yield break;
        }
    }

    public void Dispose()
    {
        _unfollow(this);
        _queue.Writer.TryComplete();
    }
}
