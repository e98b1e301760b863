using Mesh.Contracts.Cni;
using Mesh.NodeAgent.Datapath;

namespace Mesh.NodeAgent.Attachments;

/// <summary>
/// The pods this node's runtime attached, and the hold on each one's host interface: attaching holds the interface
/// (closed whenever no endpoint is enforced on it) before it is recorded; detaching removes both. One change at a
/// time, so the record and the holds agree.
/// </summary>
public sealed class PodAttachments(AttachmentStore store, IInterfaceHold holds, Action<string> log)
{
    private readonly Lock gate = new();

    public PodAttachmentState Attach(string containerId, PodAttachment attachment)
    {
        lock (gate)
        {
            var held = holds.Hold(attachment.HostInterface);
            store.Put(containerId, attachment);
            log($"CNI: attached {attachment.Namespace}/{attachment.Name} ({containerId}) on {attachment.HostInterface}, {attachment.Ip}: {(held ? "held closed until its endpoint is enforced" : "its endpoint is enforced (and it is closed whenever none is)")}");
            return new PodAttachmentState(attachment, held);
        }
    }

    public PodAttachmentState? Get(string containerId)
    {
        lock (gate) return store.Get(containerId) is { } a ? new PodAttachmentState(a, holds.IsHeld(a.HostInterface)) : null;
    }

    public void Detach(string containerId)
    {
        lock (gate)
        {
            if (store.Remove(containerId) is not { } removed) return;
            holds.Release(removed.HostInterface);
            log($"CNI: detached {removed.Namespace}/{removed.Name} ({containerId}) from {removed.HostInterface}");
        }
    }

    /// <summary>After a restart: the pods known from the state directory are held again where their interface is still
    /// there (the pinned holds survived the restart; this re-attaches what a crash may have missed).</summary>
    public void Restore()
    {
        foreach (var (containerId, a) in store.All())
        {
            lock (gate)
            {
                try { holds.Hold(a.HostInterface); }
                catch (DatapathException e) { log($"CNI: pod {a.Namespace}/{a.Name} ({containerId}) is not held again: {e.Message}"); }
            }
        }
    }
}
