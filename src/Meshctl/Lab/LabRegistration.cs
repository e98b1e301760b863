using Mesh.Contracts.Api;
using Mesh.Lab;
using Mesh.Meshctl.Cli;

namespace Mesh.Meshctl.Lab;

/// <summary>Tells the control plane about lab pods; its answer carries the identity their labels got.</summary>
internal static class LabRegistration
{
    /// <summary>The pod as an endpoint, with the named ports its process serves, which policies may name.</summary>
    public static EndpointRegistration For(LabPod pod, LabState state) =>
        new(pod.Namespace, pod.Name, pod.Node, pod.Ip, pod.HostInterface, pod.Labels, state.NamespaceLabels(pod.Namespace),
            pod.ServedPorts.Select(p => new EndpointPort(p.Name, p.Port, p.Protocol == LabProtocol.Tcp ? "TCP" : "UDP")).ToList());

    /// <summary>
    /// Registers each pod; returns false (after saying what to do) when the control plane cannot be reached, so the
    /// pods stay in the lab and `meshctl lab register` can finish the job later.
    /// </summary>
    public static async Task<bool> RegisterAsync(MeshApiClient client, LabState state, IEnumerable<LabPod> pods, CancellationToken ct)
    {
        try
        {
            foreach (var pod in pods)
            {
                var registered = await client.RegisterEndpointAsync(For(pod, state), ct);
                Output.Info($"registered [bold]{Output.Esc(pod.Id)}[/]: identity [cyan]{registered.Identity}[/] (v{registered.Version})");
            }
            return true;
        }
        catch (ControlPlaneUnreachableException e)
        {
            Output.Warn($"{e.Message}; the pods exist but the control plane does not know them yet. " +
                            "Start it, then run `meshctl lab register`.");
            return false;
        }
        catch (TaskCanceledException) when (!ct.IsCancellationRequested)
        {
            Output.Warn("the control plane did not answer in time; run `meshctl lab register` once it does.");
            return false;
        }
    }

    /// <summary>
    /// Deletes the pod's endpoint and waits until its node enforces a version without it, so the pod's interface goes
    /// away only after the agent let go of it (otherwise the agent would report the endpoint waiting for it). Best
    /// effort: a control plane or an agent that is away costs at most <paramref name="wait"/>, and the pod goes anyway.
    /// </summary>
    public static async Task DeregisterAsync(MeshApiClient client, LabPod pod, TimeSpan wait, CancellationToken ct)
    {
        try
        {
            if (await client.DeleteEndpointAsync(pod.Namespace, pod.Name, ct) is not { } deleted) return;
            if (!await client.WaitForNodeAsync(pod.Node, deleted.Version, wait, ct))
                Output.Warn($"{pod.Node} has not acknowledged v{deleted.Version}, the version without endpoint {pod.Id}; deleting the pod anyway. " +
                            "Is the node's agent running? (`meshctl node status`, `meshctl lab agent start " + pod.Node + "`)");
        }
        catch (Exception e) when (e is ControlPlaneUnreachableException or TaskCanceledException or MeshApiException)
        {
            Output.Warn($"could not delete endpoint {pod.Id} from the control plane ({e.Message}); deleting the pod anyway. " +
                        "Once the control plane answers, run `meshctl endpoint delete " + pod.Id + "`: until then its node reports it waiting for its interface");
        }
    }

    /// <summary>Best effort: used while tearing down, when the control plane may well be gone already.</summary>
    public static async Task<int> UnregisterAsync(MeshApiClient client, IEnumerable<LabPod> pods, CancellationToken ct)
    {
        var removed = 0;
        foreach (var pod in pods)
        {
            try
            {
                if (await client.DeleteEndpointAsync(pod.Namespace, pod.Name, ct) is not null) removed++;
            }
            catch (Exception e) when (e is ControlPlaneUnreachableException or TaskCanceledException or MeshApiException)
            {
                Output.Warn($"could not delete endpoint {pod.Id} from the control plane ({e.Message}); continuing");
                if (e is not MeshApiException) break;
            }
        }
        return removed;
    }
}
