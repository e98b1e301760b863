using System.Net;

namespace Mesh.Lab;

public enum LabPlaceKind { Pod, Node, Outside, Address }

/// <summary>
/// Where lab traffic starts or ends: a pod, a node's own network namespace, a host outside the cluster, or (as a
/// destination only) a bare IPv4 address. <see cref="Netns"/> is where a connection from this place is made; null for
/// an address.
/// </summary>
public sealed record LabPlace(LabPlaceKind Kind, string Name, string? Netns, IPAddress Address)
{
    public override string ToString() => Kind switch
    {
        LabPlaceKind.Pod => Name,
        LabPlaceKind.Address => Address.ToString(),
        _ => $"{Kind.ToString().ToLowerInvariant()}/{Name}",
    };
}

/// <summary>
/// The names lab commands take for places: <c>NS/NAME</c> (or <c>NAME</c> in "default") for a pod, <c>node/NAME</c>
/// for a node, <c>outside/NAME</c> for an outside host, and, as a destination, an IPv4 address. The prefixes node/ and
/// outside/ always mean those places, never a pod namespace of that name.
/// </summary>
public static class LabPlaces
{
    public const string NodePrefix = "node/", OutsidePrefix = "outside/";

    /// <summary>A place a connection can start from.</summary>
    public static LabPlace Source(LabState state, string reference) =>
        Find(state, reference) ?? throw new LabException($"'{reference}' is not a lab place to start from: use NS/NAME (a pod), node/NAME or outside/NAME");

    /// <summary>A place a connection can go to: any <see cref="Source"/>, or an IPv4 address.</summary>
    public static LabPlace Target(LabState state, string reference)
    {
        if (IPAddress.TryParse(reference, out var address) && address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork
            && reference.Count(c => c == '.') == 3)
            return new LabPlace(LabPlaceKind.Address, reference, null, address);
        return Find(state, reference) ?? throw new LabException($"'{reference}' is not a lab place: use NS/NAME (a pod), node/NAME, outside/NAME or an IPv4 address");
    }

    private static LabPlace? Find(LabState state, string reference)
    {
        if (reference.StartsWith(NodePrefix, StringComparison.Ordinal))
        {
            var name = reference[NodePrefix.Length..];
            var node = state.Node(name) ?? throw new LabException(
                $"no node '{name}' in lab '{state.Lab}'; nodes: {string.Join(", ", state.Nodes.Select(n => n.Name))}");
            return new LabPlace(LabPlaceKind.Node, node.Name, node.Netns, IPAddress.Parse(node.Address));
        }
        if (reference.StartsWith(OutsidePrefix, StringComparison.Ordinal))
        {
            var name = reference[OutsidePrefix.Length..];
            var host = state.OutsideHost(name) ?? throw new LabException(state.Outside.Count == 0
                ? $"no outside host '{name}': the lab has none; add one with `meshctl lab outside add {name}`"
                : $"no outside host '{name}'; outside hosts: {string.Join(", ", state.Outside.Select(o => o.Name))}");
            return new LabPlace(LabPlaceKind.Outside, host.Name, host.Netns, IPAddress.Parse(host.Ip));
        }
        if (reference.Contains(':') || IPAddress.TryParse(reference, out _)) return null;
        var (ns, podName) = LabNames.ParsePodRef(reference);
        var pod = state.Pod(ns, podName) ?? throw new LabException(
            $"no pod {ns}/{podName} in lab '{state.Lab}'; list them with `meshctl lab pod list`");
        return new LabPlace(LabPlaceKind.Pod, pod.Id, pod.Netns, IPAddress.Parse(pod.Ip));
    }
}
