using System.Threading.Channels;
using Mesh.NodeAgent.Datapath;

namespace Mesh.NodeAgent.Tests.Sync;

/// <summary>A datapath without a kernel: remembers every snapshot it was asked to apply, in order, and leaves out the
/// endpoints whose interface a test declared missing, as the real one does.</summary>
internal sealed class InMemoryDatapath : IDatapath
{
    private readonly Lock _sync = new();
    private readonly List<DatapathSnapshot> _applied = [];
    private readonly HashSet<string> _missingInterfaces = [];
    private readonly Channel<FlowEvent> _flows = Channel.CreateUnbounded<FlowEvent>();

    public ulong AppliedVersion { get { lock (_sync) return _applied.Count > 0 ? _applied[^1].Version : 0; } }

    public IReadOnlyList<DatapathSnapshot> Applied { get { lock (_sync) return [.. _applied]; } }

    public ChannelReader<FlowEvent> Flows => _flows.Reader;

    public ApplyStats? LastApply { get; private set; }

    /// <summary>The node no longer has (true) or has again (false) an interface of this name.</summary>
    public void SetMissing(string interfaceName, bool missing)
    {
        lock (_sync)
        {
            if (missing) _missingInterfaces.Add(interfaceName);
            else _missingInterfaces.Remove(interfaceName);
        }
    }

    public IReadOnlyList<WaitingEndpoint> Apply(DatapathSnapshot snapshot)
    {
        lock (_sync)
        {
            _applied.Add(snapshot);
            LastApply = new ApplyStats(snapshot.Version, FullRebuild: true, snapshot.IpCache.Count, 0,
                TimeSpan.Zero, TimeSpan.Zero, TimeSpan.Zero, TimeSpan.Zero, TimeSpan.Zero);
            return [.. snapshot.Endpoints.Where(e => _missingInterfaces.Contains(e.InterfaceName))
                .Select(e => new WaitingEndpoint(e.Id, e.InterfaceName, $"interface {e.InterfaceName} not found"))];
        }
    }

    public void Dispose() => _flows.Writer.TryComplete();
}
