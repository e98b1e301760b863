using Mesh.Contracts.Netns;
using Mesh.NodeAgent.Datapath.Interop;

namespace Mesh.NodeAgent.Datapath;

public sealed partial class BpfDatapath : IInterfaceHold
{
    /// <summary>The interface goes into mesh_held before the programs go onto it, so its first judged packet is
    /// already held; until then it has no program and its host side is down (mesh-cni brings it up after this).</summary>
    public bool Hold(string interfaceName) => InNodeNamespace($"hold {interfaceName}", () =>
    {
        var ifindex = TcHook.IfIndex(interfaceName);
        maps.Held.Update((uint)ifindex, 0u);
        if (!attached.TryGetValue(interfaceName, out var known) || known != ifindex)
        {
            TcHook.EnsureClsact(ifindex, interfaceName);
            TcHook.Attach(ifindex, interfaceName, TcAttachPoint.Ingress, fromEndpointFd);
            TcHook.Attach(ifindex, interfaceName, TcAttachPoint.Egress, toEndpointFd);
            attached[interfaceName] = ifindex;
        }
        return !maps.Endpoints.TryLookup(new EndpointKeyNative { Gen = activeGen, Ifindex = (uint)ifindex }, out EndpointInfoNative _);
    });

    /// <summary>Also forgets the holds of interfaces that are gone: a deleted pod's veth takes its ifindex with it.</summary>
    public void Release(string interfaceName) => InNodeNamespace($"release {interfaceName}", () =>
    {
        var ifindex = TcHook.TryIfIndex(interfaceName);
        foreach (var held in maps.Held.Keys<uint>())
            if (held == ifindex || !TcHook.Exists(held)) maps.Held.Delete(held);
        return true;
    });

    public bool IsHeld(string interfaceName) => InNodeNamespace($"look up {interfaceName}", () =>
        TcHook.TryIfIndex(interfaceName) is var ifindex and not 0 && maps.Held.TryLookup(ifindex, out uint _));

    /// <summary>Runs <paramref name="body"/> in the node namespace under the apply gate: a hold never interleaves with an apply.</summary>
    private T InNodeNamespace<T>(string what, Func<T> body)
    {
        lock (applyGate)
        {
            ObjectDisposedException.ThrowIf(disposed, this);
            try { return NetworkNamespace.Run(options.Netns, body); }
            catch (BpfException e) when (e.ErrorNumber == Errno.ENODEV)
            {
                throw new DatapathException($"{what}: the interface is not in {NamespaceName} (ENODEV): create the pod's veth first", e);
            }
            catch (BpfException e) { throw new DatapathException($"{what} in {NamespaceName}: {e.Message}", e); }
            catch (IOException e) { throw new DatapathException($"{what}: {NamespaceName}: {e.Message}", e); }
        }
    }
}
