namespace Mesh.Lab;

/// <summary>
/// The resolver of each lab pod: /etc/netns/NETNS/resolv.conf, which `ip netns exec NETNS` binds over /etc/resolv.conf,
/// so any program run in the pod that way asks the lab's DNS server. Every file belongs to a namespace with the lab's
/// prefix, so cleanup can find them by name even when the state is lost.
/// </summary>
public static class LabResolvConf
{
    public const string Root = "/etc/netns";

    public static string PathOf(string netns) => Path.Combine(Root, netns, "resolv.conf");

    public static void Write(string netns, string lab, string nameserver)
    {
        Directory.CreateDirectory(Path.Combine(Root, netns));
        var path = PathOf(netns);
        File.WriteAllText(path + ".tmp", $"# the resolver of lab '{lab}' (meshctl lab dns up): kube-system/kube-dns\nnameserver {nameserver}\n");
        File.Move(path + ".tmp", path, overwrite: true);
    }

    /// <summary>Removes the file and its folder (when nothing else is in it). Never fails on what is gone.</summary>
    public static void Remove(string netns)
    {
        var directory = Path.Combine(Root, netns);
        if (!Directory.Exists(directory)) return;
        File.Delete(PathOf(netns));
        if (!Directory.EnumerateFileSystemEntries(directory).Any()) Directory.Delete(directory);
    }

    /// <summary>Namespaces under /etc/netns whose name starts with <paramref name="prefix"/> and that have a resolv.conf.</summary>
    public static IReadOnlyList<string> Existing(string prefix) =>
        Directory.Exists(Root)
            ? Directory.EnumerateDirectories(Root).Select(d => Path.GetFileName(d)!)
                .Where(n => n.StartsWith(prefix, StringComparison.Ordinal) && File.Exists(PathOf(n))).Order().ToList()
            : [];
}
