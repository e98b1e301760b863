using System.Threading.Channels;
using Google.Protobuf;
using FlowMessage = Mesh.Contracts.Hubble.Flows.Flow;

namespace Mesh.NodeAgent.Hubble;

/// <summary>
/// The node's recent flows, oldest first, in a ring of fixed capacity: when it is full the oldest flow falls off
/// (<see cref="Seen"/> minus <see cref="Count"/> have). Followers get each new flow through a queue of their own;
/// <see cref="Add"/> never waits for one, so a slow reader cannot hold back the datapath's reader: what does not fit
/// its queue is counted as lost for that reader alone.
/// </summary>
/// <remarks>
/// The flows are held serialized, in one array of bytes. Tens of thousands of flows as objects live long enough to
/// reach the oldest GC generation, and at the rate a proxy makes flows the collections that mark and move them pause
/// the agent for tens of milliseconds (bench row l7.http_p99_added_us); held here they are no objects at all. The
/// array has <see cref="BytesPerFlow"/> for each flow of the capacity: flows larger on average push the oldest out
/// sooner.
/// </remarks>
public sealed class FlowBuffer
{
    public const int DefaultCapacity = 65_536;
    public const int DefaultFollowerQueue = 4_096;
    public const int BytesPerFlow = 512;
    /// <summary>512 MiB of flows.</summary>
    public const int MaxCapacity = 1 << 20;

    private readonly byte[] _bytes;
    private readonly (long Start, int Length)[] _held;   // by sequence number modulo the capacity
    private readonly int _followerQueue;
    private readonly Lock _gate = new();
    private readonly List<FlowFollower> _followers = [];
    private long _seen, _first, _written;   // flows added, the oldest held, bytes written (positions grow without end)
    private long _lostByFollowers;

    public FlowBuffer(int capacity, int followerQueue = DefaultFollowerQueue)
    {
        if (capacity is <= 0 or > MaxCapacity)
            throw new ArgumentOutOfRangeException(nameof(capacity), capacity, $"the flow buffer holds from one flow to {MaxCapacity}");
        _held = new (long, int)[capacity];
        _bytes = new byte[Math.Max((long)capacity * BytesPerFlow, 64 * 1024)];
        _followerQueue = followerQueue;
    }

    public int Capacity => _held.Length;

    /// <summary>Flows that found a follower's queue full, summed over every follower there has been.</summary>
    public long LostByFollowers { get { lock (_gate) return _lostByFollowers; } }

    /// <summary>Every flow added since the buffer was made.</summary>
    public long Seen { get { lock (_gate) return _seen; } }

    public int Count { get { lock (_gate) return (int)(_seen - _first); } }

    public void Add(FlowMessage flow)
    {
        lock (_gate)
        {
            Hold(flow);
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
            var follower = new FlowFollower(_followerQueue, Unfollow);
            _followers.Add(follower);
            return (SnapshotLocked(), follower);
        }
    }

    private void Unfollow(FlowFollower follower)
    {
        lock (_gate) _followers.Remove(follower);
    }

    /// <summary>Writes the flow after the newest, in one piece (a flow that would wrap starts at the beginning), pushing out what it overwrites.</summary>
    private void Hold(FlowMessage flow)
    {
        var size = flow.CalculateSize();
        if (size > _bytes.Length)
        {
            // Larger than the whole buffer: nothing is held, and with it nothing older.
            _first = _seen + 1;
            return;
        }
        var start = _written;
        if (start % _bytes.Length + size > _bytes.Length) start += _bytes.Length - start % _bytes.Length;
        if (_seen - _first == _held.Length) _first++;
        while (_first < _seen && start + size - _held[_first % _held.Length].Start > _bytes.Length) _first++;
        flow.WriteTo(_bytes.AsSpan((int)(start % _bytes.Length), size));
        _held[_seen % _held.Length] = (start, size);
        _written = start + size;
    }

    private List<FlowMessage> SnapshotLocked()
    {
        var flows = new List<FlowMessage>((int)(_seen - _first));
        for (var i = _first; i < _seen; i++)
        {
            var (start, length) = _held[i % _held.Length];
            flows.Add(FlowMessage.Parser.ParseFrom(_bytes.AsSpan((int)(start % _bytes.Length), length)));
        }
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
