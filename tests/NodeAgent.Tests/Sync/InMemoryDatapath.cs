using System.Threading.Channels;
using Mesh.NodeAgent.Datapath;

namespace Mesh.NodeAgent.Tests.Sync;

/// <summary>A datapath without a kernel: remembers every snapshot it was asked to apply, in order.</summary>
internal sealed class InMemoryDatapath : IDatapath
{
    private readonly Lock _sync = new();
    private readonly List<DatapathSnapshot> _applied = [];
    private readonly Channel<FlowEvent> _flows = Channel.CreateUnbounded<FlowEvent>();

    public ulong AppliedVersion { get { lock (_sync) return _applied.Count > 0 ? _applied[^1].Version : 0; } }

    public IReadOnlyList<DatapathSnapshot> Applied { get { lock (_sync) return [.. _applied]; } }

    public ChannelReader<FlowEvent> Flows => _flows.Reader;

    public ApplyStats? LastApply { get; private set; }

    public void Apply(DatapathSnapshot snapshot)
    {
        lock (_sync) _applied.Add(snapshot);
        LastApply = new ApplyStats(snapshot.Version, FullRebuild: true, snapshot.IpCache.Count, 0,
            TimeSpan.Zero, TimeSpan.Zero, TimeSpan.Zero, TimeSpan.Zero, TimeSpan.Zero);
    }

    public void Dispose() => _flows.Writer.TryComplete();
}
