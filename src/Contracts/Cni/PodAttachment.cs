using System.Text.Json.Serialization;

namespace Mesh.Contracts.Cni;

/// <summary>
/// A pod the CNI plugin (mesh-cni) attached to its node, as it tells the node agent over the agent's CNI socket:
/// PUT /v1/cni/attachments/{containerId} with this body, GET to check the agent knows it, DELETE when the runtime
/// deletes the pod. The agent holds the pod's host interface closed until it enforces an endpoint there.
/// </summary>
/// <param name="Netns">the pod's network namespace, a path as the runtime named it</param>
/// <param name="IfName">the pod's interface inside <paramref name="Netns"/></param>
/// <param name="HostInterface">the host side of the pod's veth in the node's namespace (PodInterface.HostName)</param>
/// <param name="Ip">the pod's IPv4 address</param>
public sealed record PodAttachment(string Namespace, string Name, string PodUid, string Netns, string IfName, string HostInterface, string Ip);

/// <summary>The agent's answer to GET: the attachment, and whether the pod is still held closed or already enforced.</summary>
public sealed record PodAttachmentState(PodAttachment Attachment, bool Held);

public static class CniSocket
{
    /// <summary>Where the agent listens and the plugin calls, unless configured otherwise (mesh-agent --cni-socket,
    /// the network config's agentSocket).</summary>
    public const string DefaultPath = "/var/run/mesh/cni.sock";

    public static string AttachmentPath(string containerId) => $"/v1/cni/attachments/{Uri.EscapeDataString(containerId)}";
}

/// <summary>Source-generated: the plugin starts once per pod operation and must not pay for reflection.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(PodAttachment))]
[JsonSerializable(typeof(PodAttachmentState))]
[JsonSerializable(typeof(Dictionary<string, PodAttachment>))]
public sealed partial class CniJson : JsonSerializerContext;
