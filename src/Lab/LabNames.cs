using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;

namespace Mesh.Lab;

/// <summary>
/// Every name a lab gives to a kernel object. All of them start with "{lab}-", and a lab name has no dash, so one
/// lab's cleanup (a scan of /run/netns for its prefix) can never match another lab's namespaces.
/// </summary>
public sealed partial class LabNames
{
    public const string DefaultLab = "mesh";

    public LabNames(string lab)
    {
        if (!LabPattern().IsMatch(lab))
            throw new LabException($"invalid lab name '{lab}': use 1-12 lowercase letters or digits (no dashes), e.g. 'mesh' or 'test7'");
        Lab = lab;
    }

    public string Lab { get; }

    /// <summary>Prefix of every namespace this lab owns.</summary>
    public string Prefix => $"{Lab}-";

    public string UnderlayNetns => $"{Lab}-underlay";

    public static string NodeName(int index) => $"node-{index}";

    public string NodeNetns(string node) => $"{Lab}-{node}";

    public string PodNetns(string ns, string name) => $"{Lab}-pod-{ns}-{name}";

    public string OutsideNetns(string name) => $"{Lab}-outside-{name}";

    /// <summary>The underlay side of an outside host's veth: "ext" + a hash, within IFNAMSIZ (15).</summary>
    public string OutsideUplink(string name) =>
        "ext" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"{Lab}/outside/{name}")))[..8];

    /// <summary>Host side of a pod's veth, in its node's netns: "lxc" + a hash, like Cilium, and within IFNAMSIZ (15).</summary>
    public string HostInterface(string ns, string name)
    {
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes($"{Lab}/{ns}/{name}"));
        return "lxc" + Convert.ToHexStringLower(hash)[..8];
    }

    public string PinRoot(string pinBase, string node) => Path.Combine(pinBase, Lab, node);

    /// <summary>Kubernetes-style names (DNS labels), so namespace names stay valid netns file names.</summary>
    public static void ValidateObjectName(string kind, string name)
    {
        if (!ObjectPattern().IsMatch(name))
            throw new LabException($"invalid {kind} name '{name}': use lowercase letters, digits and '-', starting and ending with a letter or digit (at most 40 characters)");
    }

    /// <summary>Splits "NS/NAME" (a bare NAME means namespace "default").</summary>
    public static (string Namespace, string Name) ParsePodRef(string reference)
    {
        var slash = reference.IndexOf('/');
        var (ns, name) = slash < 0 ? ("default", reference) : (reference[..slash], reference[(slash + 1)..]);
        ValidateObjectName("namespace", ns);
        ValidateObjectName("pod", name);
        return (ns, name);
    }

    [GeneratedRegex("^[a-z0-9]{1,12}$")]
    private static partial Regex LabPattern();

    [GeneratedRegex("^(?=.{1,40}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?$")]
    private static partial Regex ObjectPattern();
}

/// <summary>A lab operation that cannot be done; the message says why and what to do next.</summary>
public sealed class LabException(string message, Exception? inner = null) : Exception(message, inner);
