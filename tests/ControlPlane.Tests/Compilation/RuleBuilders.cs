using Mesh.Contracts.Labels;
using Mesh.Contracts.Policies;

namespace Mesh.ControlPlane.Tests.Compilation;

/// <summary>Builders for the rule language beyond endpoints and plain ports.</summary>
internal static class RuleBuilders
{
    public static PeerSelector Is(Entity entity) => new PeerSelector.EntityPeer(entity);
    public static PeerSelector Cidr(string cidr, params string[] except) =>
        new PeerSelector.Cidr(CidrPrefix.Parse(cidr), except.Select(CidrPrefix.Parse).ToList());
    public static PeerSelector Fqdn(string name) => new PeerSelector.Fqdn(new DnsMatch(name, null));
    public static PeerSelector Selecting(LabelSelector selector) => new PeerSelector.Endpoints(selector);

    /// <summary>A rule of any peer selectors; no ports = every port.</summary>
    public static PolicyRule To(PeerSelector[] peers, params PortProtocol[] ports) =>
        new(peers, ports.Length == 0 ? [] : [new PortRule(ports)], []);

    /// <summary>A rule whose port rule carries L7 rules (the entries redirect to the proxy).</summary>
    public static PolicyRule WithHttp(PeerSelector[]? peers, params PortProtocol[] ports) => WithHttp(peers, "GET", "/", ports);

    public static PolicyRule WithHttp(PeerSelector[]? peers, string method, string path, params PortProtocol[] ports) =>
        new(peers, [new PortRule(ports, new L7Rules([new HttpRule(method, path, null, [])], []))], []);

    public static PolicyRule Requiring(params LabelSelector[] requires) => new(null, [], requires);

    public static PortProtocol TcpRange(ushort first, ushort last) => new(first, Protocol.Tcp, last);
}
