namespace Mesh.ControlPlane.Kubernetes;

/// <summary>
/// The Kubernetes controller's settings (--kubernetes turns it on). <paramref name="Kubeconfig"/>: the API server and
/// credentials to use (--kubeconfig); null inside a pod, where the service account's are used.
/// <paramref name="StatusInterval"/>: how often policy objects' status is brought up to date (--kubernetes-status-interval seconds).
/// </summary>
public sealed record KubernetesOptions(string? Kubeconfig, TimeSpan StatusInterval)
{
    public static readonly TimeSpan DefaultStatusInterval = TimeSpan.FromSeconds(5);
}
