using System.Security.Cryptography;
using System.Text;

namespace Mesh.Contracts.Netns;

/// <summary>
/// The host side of a Kubernetes pod's veth, named from the pod alone: the CNI plugin creates it under this name when the
/// runtime adds the pod, and the control plane's Kubernetes controller registers the pod's endpoint on it, so neither
/// has to tell the other. "lxc" + a hash, like Cilium, and within IFNAMSIZ (15).
/// </summary>
public static class PodInterface
{
    public static string HostName(string ns, string name)
    {
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes($"{ns}/{name}"));
        return "lxc" + Convert.ToHexStringLower(hash)[..11];
    }
}
