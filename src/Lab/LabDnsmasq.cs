using System.Net;
using System.Text;

namespace Mesh.Lab;

/// <summary>
/// The lab's DNS server process: Debian's dnsmasq in the kube-dns pod's netns, answering only from its hosts file
/// (no upstream, no /etc/hosts, no resolv.conf) and calling every other name nonexistent (NXDOMAIN), as an
/// authoritative server for the lab's records would. It rereads the hosts file on SIGHUP.
/// </summary>
public static class LabDnsmasq
{
    private static readonly string[] Candidates = ["/usr/sbin/dnsmasq", "/sbin/dnsmasq", "/usr/local/sbin/dnsmasq"];

    /// <summary>The dnsmasq binary, or a LabException that says how to install it.</summary>
    public static string Binary =>
        Candidates.FirstOrDefault(File.Exists)
        ?? (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Select(d => Path.Combine(d, "dnsmasq")).FirstOrDefault(File.Exists)
        ?? throw new LabException("the lab's DNS server is Debian's dnsmasq, which is not installed: run `apt-get install dnsmasq-base` (./dev installs it)");

    public static void EnsureInstalled() => _ = Binary;

    /// <summary>dnsmasq in <paramref name="pod"/>'s netns, bound to its address and loopback, in the foreground, logging queries.</summary>
    public static ProcessLaunch Launch(LabPod pod, string hostsFile, int ttlSeconds, string logFile) => new(
        $"dns server {pod.Id}", "ip",
        [
            // `ip netns exec` execs dnsmasq itself, so the recorded pid is dnsmasq's.
            "netns", "exec", pod.Netns, Binary,
            "--keep-in-foreground", "--log-facility=-", "--log-queries", "--conf-file=/dev/null", "--pid-file=", "--user=root",
            "--no-resolv", "--no-hosts", "--no-poll", $"--addn-hosts={hostsFile}",
            // Every domain is local: a name the hosts file lacks is NXDOMAIN, never forwarded anywhere.
            "--local=/#/",
            $"--local-ttl={ttlSeconds}", "--bind-interfaces", $"--listen-address={pod.Ip}", "--listen-address=127.0.0.1",
        ],
        logFile);

    /// <summary>The hosts file for <paramref name="records"/>, one "ADDRESS NAME" line each; written atomically.</summary>
    public static void WriteHosts(string path, IReadOnlyDictionary<string, List<string>> records)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var text = new StringBuilder("# the lab's DNS records (meshctl lab dns add)\n");
        foreach (var (name, addresses) in records)
            foreach (var address in addresses) text.Append(address).Append(' ').Append(name).Append('\n');
        File.WriteAllText(path + ".tmp", text.ToString());
        File.Move(path + ".tmp", path, overwrite: true);
    }

    /// <summary>
    /// A record name as dnsmasq will answer it: lowercase, without a trailing dot, labels of letters, digits and '-'
    /// (1-63 characters, not starting or ending with '-'), at most 253 characters.
    /// </summary>
    public static string NormalizeName(string name)
    {
        var n = name.Trim().TrimEnd('.').ToLowerInvariant();
        var labels = n.Split('.');
        if (n.Length is 0 or > 253 || labels.Any(l => l.Length is 0 or > 63 || l[0] == '-' || l[^1] == '-' || !l.All(c => c is >= 'a' and <= 'z' or >= '0' and <= '9' or '-')))
            throw new LabException($"invalid DNS name '{name}': use labels of letters, digits and '-' separated by dots, e.g. api.example.com");
        return n;
    }

    /// <summary>An IPv4 (A) or IPv6 (AAAA) address in its canonical form.</summary>
    public static string NormalizeAddress(string address)
    {
        if (!IPAddress.TryParse(address, out var parsed) || parsed.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork && address.Count(c => c == '.') != 3)
            throw new LabException($"invalid address '{address}': give an IPv4 (A record) or IPv6 (AAAA record) address, e.g. 10.202.0.1 or 2001:db8::1");
        return parsed.ToString();
    }
}
