using Mesh.NodeAgent.Hubble;

namespace Mesh.NodeAgent.Proxy;

/// <summary>The proxies' flows in Hubble's form, handed to wherever the agent's flows go.</summary>
public sealed class L7FlowPublisher(string node, EndpointDirectory endpoints, Action<Mesh.Contracts.Hubble.Flows.Flow> publish) : IL7FlowSink
{
    public void Record(L7Flow flow) => publish(HubbleL7Flow.From(flow, node, endpoints));
}
