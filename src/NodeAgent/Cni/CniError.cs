namespace Mesh.NodeAgent.Cni;

/// <summary>
/// A failed CNI operation, printed as the spec's error result ({"cniVersion","code","msg","details"}) on stdout with a
/// non-zero exit. Codes 1-99 are the spec's; 100 and up are mesh-cni's own.
/// </summary>
public sealed class CniError(int code, string message, string? details = null) : Exception(message)
{
    public const int IncompatibleVersion = 1;
    public const int InvalidEnvironment = 4;
    public const int DecodeFailure = 6;
    public const int InvalidNetworkConfig = 7;
    public const int TryAgainLater = 11;
    /// <summary>The pod's veth could not be made, found or removed.</summary>
    public const int LinkFailed = 100;
    /// <summary>The node agent refused the attachment.</summary>
    public const int AgentRefused = 101;
    /// <summary>CHECK: the pod is not attached as ADD left it.</summary>
    public const int NotAsAdded = 102;

    public int Code { get; } = code;
    public string? Details { get; } = details;
}
