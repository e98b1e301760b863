using System.Globalization;
using Mesh.Contracts.Labels;
using YamlDotNet.RepresentationModel;
using static Mesh.Contracts.Policies.YamlFields;

namespace Mesh.Contracts.Policies;

// Kubernetes NetworkPolicy (networking.k8s.io/v1), translated into the Cilium model the way Cilium translates it:
//   - policyTypes decide which directions the policy enforces (absent: Ingress, plus Egress when egress rules
//     exist); a listed direction without rules denies everything (enableDefaultDeny), an unlisted one is ignored.
//   - a rule without `from`/`to` (absent or []) admits every peer, world included; without `ports`, every port.
//     So `ingress: [{}]` allows everything, unlike Cilium's `ingress: [{}]`: the translation makes that explicit.
//   - podSelector peers are pods of the policy's namespace; namespaceSelector peers are pods (never host or world)
//     of the namespaces whose labels match, which pods carry as k8s:io.cilium.k8s.namespace.labels.<key>.
//   - ipBlock is a CIDR with except that, unlike Cilium's toCIDR, also selects the pods whose addresses it covers
//     (and not those an except carves out), as the Kubernetes e2e tests expect.
//   - a port without protocol is TCP; a port may be a name (a containerPort's), which the compiler resolves
//     against the endpoints: the selected pods' on ingress, the peers' on egress.
public static partial class PolicyParser
{
    private static readonly string[] KubernetesSpecFields = ["podSelector", "policyTypes", "ingress", "egress"];
    private static readonly string[] KubernetesIngressFields = ["from", "ports"];
    private static readonly string[] KubernetesEgressFields = ["to", "ports"];
    private static readonly string[] KubernetesPeerFields = ["podSelector", "namespaceSelector", "ipBlock"];
    private static readonly string[] IpBlockFields = ["cidr", "except"];
    private static readonly string[] KubernetesPortFields = ["protocol", "port", "endPort"];

    /// <summary>Every pod of every namespace: what an empty namespaceSelector means.</summary>
    private static readonly SelectorRequirement AnyPodNamespace =
        new(new SelectorKey(Label.SourceK8s, LabelSet.PodNamespaceKey), SelectorOperator.Exists, []);

    private static List<PolicySpec>? KubernetesSpecs(Dictionary<string, YamlNode> fields, YamlFields reader)
    {
        const string path = "spec";
        if (IsNull(fields.GetValueOrDefault(path))) { reader.Error(path, "is required"); return null; }
        if (reader.Mapping(fields[path], path) is not { } map) return null;
        var before = reader.Errors.Count;
        var spec = reader.Fields(map, path, KubernetesSpecFields);

        LabelSelector? podSelector = null;
        if (IsNull(spec.GetValueOrDefault("podSelector")))
            reader.Error(Child(path, "podSelector"), "is required (use {} to select every pod of the namespace)");
        else podSelector = Selector(spec["podSelector"], Child(path, "podSelector"), reader, KeyStyle.KubernetesPod);

        var ingress = KubernetesRules(spec.GetValueOrDefault("ingress"), Child(path, "ingress"), "from", KubernetesIngressFields, reader);
        var egress = KubernetesRules(spec.GetValueOrDefault("egress"), Child(path, "egress"), "to", KubernetesEgressFields, reader);

        bool ingressListed = true, egressListed = egress.Count > 0;
        var typesPath = Child(path, "policyTypes");
        if (reader.Sequence(spec.GetValueOrDefault("policyTypes"), typesPath) is { } types)
        {
            ingressListed = egressListed = false;
            for (var i = 0; i < types.Children.Count; i++)
            {
                switch (reader.Scalar(types.Children[i], Item(typesPath, i)))
                {
                    case "Ingress": ingressListed = true; break;
                    case "Egress": egressListed = true; break;
                    case var other:
                        reader.Error(Item(typesPath, i), $"\"{other}\" is not a policy type (expected Ingress or Egress)");
                        break;
                }
            }
        }

        if (podSelector is null || reader.Errors.Count != before) return null;
        return
        [
            new PolicySpec(podSelector, ingressListed ? ingress : [], [], egressListed ? egress : [], [], null)
            {
                EnableDefaultDeny = new DefaultDeny(ingressListed, egressListed),
            },
        ];
    }

    private static List<PolicyRule> KubernetesRules(YamlNode? node, string path, string peersField, string[] known, YamlFields reader)
    {
        var rules = new List<PolicyRule>();
        if (reader.Sequence(node, path) is not { } list) return rules;
        for (var i = 0; i < list.Children.Count; i++)
        {
            var rulePath = Item(path, i);
            Dictionary<string, YamlNode>? fields = IsNull(list.Children[i]) ? new()
                : reader.Mapping(list.Children[i], rulePath) is { } map ? reader.Fields(map, rulePath, known) : null;
            if (fields is null) continue;

            var peers = new List<PeerSelector>();
            var peersPath = Child(rulePath, peersField);
            if (reader.Sequence(fields.GetValueOrDefault(peersField), peersPath) is { Children.Count: > 0 } peerList)
            {
                for (var j = 0; j < peerList.Children.Count; j++)
                {
                    if (KubernetesPeer(peerList.Children[j], Item(peersPath, j), reader) is { } peer) peers.Add(peer);
                }
            }
            else peers.Add(new PeerSelector.EntityPeer(Entity.All));

            var ports = new List<PortProtocol>();
            var portsPath = Child(rulePath, "ports");
            if (reader.Sequence(fields.GetValueOrDefault("ports"), portsPath) is { } portList)
            {
                for (var j = 0; j < portList.Children.Count; j++)
                {
                    if (KubernetesPort(portList.Children[j], Item(portsPath, j), reader) is { } port) ports.Add(port);
                }
            }
            rules.Add(new PolicyRule(peers, ports.Count == 0 ? [] : [new PortRule(ports)], []));
        }
        return rules;
    }

    private static PeerSelector? KubernetesPeer(YamlNode node, string path, YamlFields reader)
    {
        if (IsNull(node) || node is YamlMappingNode { Children.Count: 0 })
        {
            reader.Error(path, "is empty (expected podSelector, namespaceSelector or ipBlock)");
            return null;
        }
        if (reader.Mapping(node, path) is not { } map) return null;
        var fields = reader.Fields(map, path, KubernetesPeerFields);

        if (fields.TryGetValue("ipBlock", out var ipBlockNode))
        {
            if (fields.ContainsKey("podSelector") || fields.ContainsKey("namespaceSelector"))
            {
                reader.Error(Child(path, "ipBlock"), "cannot be combined with podSelector or namespaceSelector");
                return null;
            }
            var blockPath = Child(path, "ipBlock");
            if (reader.Mapping(ipBlockNode, blockPath) is not { } block)
            {
                if (IsNull(ipBlockNode)) reader.Error(blockPath, "is empty (expected cidr and except)");
                return null;
            }
            return CidrWithExcept(reader.Fields(block, blockPath, IpBlockFields), blockPath, "cidr", reader) is { } ipBlock
                ? ipBlock with { SelectsEndpoints = true }
                : null;
        }

        var pods = fields.TryGetValue("podSelector", out var podNode)
            ? Selector(podNode, Child(path, "podSelector"), reader, KeyStyle.KubernetesPod) : LabelSelector.All;
        if (!fields.TryGetValue("namespaceSelector", out var nsNode))
            return pods is null ? null : new PeerSelector.Endpoints(pods);   // the policy's namespace, added on compile
        var namespaces = Selector(nsNode, Child(path, "namespaceSelector"), reader, KeyStyle.KubernetesNamespace);
        return pods is null || namespaces is null ? null : new PeerSelector.Endpoints(PodsInNamespaces(pods, namespaces));
    }

    /// <summary>
    /// The pods <paramref name="pods"/> selects in every namespace whose labels <paramref name="namespaces"/> selects
    /// (read with <see cref="KeyStyle.KubernetesNamespace"/>). Naming the pod-namespace key keeps a namespaced
    /// policy's own namespace from being added, and matches only pods: host and world carry no pod namespace.
    /// </summary>
    private static LabelSelector PodsInNamespaces(LabelSelector pods, LabelSelector namespaces) => new(
        pods.MatchLabels.Concat(namespaces.MatchLabels),
        pods.MatchExpressions.Concat(namespaces.MatchExpressions).Append(AnyPodNamespace));

    private static PortProtocol? KubernetesPort(YamlNode node, string path, YamlFields reader)
    {
        if (IsNull(node)) return new PortProtocol(0, Protocol.Tcp);   // `- {}`: every TCP port
        if (reader.Mapping(node, path) is not { } map) return null;
        var fields = reader.Fields(map, path, KubernetesPortFields);

        var protocolPath = Child(path, "protocol");
        var protocolText = reader.Scalar(fields.GetValueOrDefault("protocol"), protocolPath);
        Protocol? protocol = protocolText switch
        {
            null or "TCP" => Protocol.Tcp,
            "UDP" => Protocol.Udp,
            "SCTP" => Protocol.Sctp,
            _ => null,
        };
        if (protocol is null) reader.Error(protocolPath, $"\"{protocolText}\" is not a protocol (expected TCP, UDP or SCTP)");

        var portPath = Child(path, "port");
        var portText = reader.Scalar(fields.GetValueOrDefault("port"), portPath);
        ushort port = 0;
        string? name = null;
        var valid = portText is null || PortNumberOrName(portText, portPath, zeroAllowed: false, reader, out port, out name);
        var endPort = EndPort(fields.GetValueOrDefault("endPort"), Child(path, "endPort"), valid ? port : null, name, reader);
        return valid && endPort is { } end && protocol is { } p ? new PortProtocol(port, p, end, name) : null;
    }
}
