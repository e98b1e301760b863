using System.Net;

namespace Mesh.Lab;

/// <summary>Result of <see cref="Lab.DnsUp"/>: the DNS pod and whether it was made (or restarted with a new TTL) now.</summary>
public sealed record LabDnsUpResult(bool WasUp, bool Restarted, LabPod Pod, LabDnsServer Server);

public sealed partial class Lab
{
    public const string DnsNamespace = "kube-system", DnsPodName = "kube-dns";

    /// <summary>The labels and named ports of Kubernetes' own kube-dns, so policies written for a cluster select the lab's.</summary>
    public static readonly IReadOnlyDictionary<string, string> DnsLabels = new Dictionary<string, string> { ["k8s-app"] = "kube-dns" };

    public static readonly IReadOnlyList<NamedPort> DnsPorts =
        [new("dns", 53, LabProtocol.Udp, PortService.Dns), new("dns-tcp", 53, LabProtocol.Tcp, PortService.Dns)];

    public static readonly TimeSpan DefaultDnsTtl = TimeSpan.FromSeconds(5);

    /// <summary>Whether <paramref name="pod"/> is the DNS server of the lab (a pod that only bears its name is not).</summary>
    public static bool IsDnsPod(LabState state, LabPod pod) =>
        state.Dns is not null && pod.Namespace == DnsNamespace && pod.Name == DnsPodName;

    private string DnsHostsFile => Path.Combine(Store.LabDirectory, "dns", "hosts");

    /// <summary>
    /// Runs the lab's DNS server as the pod kube-system/kube-dns (on <paramref name="node"/>, default: the node with
    /// the fewest pods) and makes it every pod's resolver. Already up: the same pod stays; a different TTL restarts
    /// its process (the records stay).
    /// </summary>
    public LabDnsUpResult DnsUp(TimeSpan? ttl = null, string? node = null)
    {
        var seconds = (int)Math.Round((ttl ?? DefaultDnsTtl).TotalSeconds);
        if (seconds is < 0 or > 604800) throw new LabException($"--ttl must be between 0 s and 7 days, not {ttl}");
        // Before anything is made: a missing dnsmasq would otherwise leave a pod without a server.
        LabDnsmasq.EnsureInstalled();
        using var _ = Store.Lock();
        var state = RequireUp();
        var existing = state.Pod(DnsNamespace, DnsPodName);
        if (existing is not null && state.Dns is null)
            throw new LabException($"pod {DnsNamespace}/{DnsPodName} exists but is not the lab's DNS server; delete it (`meshctl lab pod delete {DnsNamespace}/{DnsPodName}`) and run `meshctl lab dns up` again");

        var dns = state.Dns ?? new LabDnsServer { Pod = $"{DnsNamespace}/{DnsPodName}", HostsFile = DnsHostsFile };
        var wasUp = existing is not null;
        var restarted = false;
        dns.TtlSeconds = seconds;
        state.Dns = dns;
        LabDnsmasq.WriteHosts(dns.HostsFile, dns.Records);
        Store.Save(state);

        LabPod pod;
        if (existing is null)
        {
            pod = AddPodLocked(state, DnsNamespace, DnsPodName, DnsLabels, node,
                ((p, log) => LabDnsmasq.Launch(p, dns.HostsFile, seconds, log), DnsPorts));
            dns.Ip = pod.Ip;
            Store.Save(state);
        }
        else
        {
            pod = existing;
            var launchedTtl = pod.Server is { } server && DetachedProcess.IsAlive(server) ? LaunchedTtl(pod) : null;
            if (launchedTtl != seconds)
            {
                if (pod.Server is not null) DetachedProcess.Stop(pod.Server);
                pod.Server = DetachedProcess.Start(LabDnsmasq.Launch(pod, dns.HostsFile, seconds, pod.ServerLog!), options.Lab);
                Store.Save(state);
                WaitUntilServing(pod);
                restarted = true;
            }
        }
        WaitUntilAnswering(pod);
        foreach (var p in state.Pods) LabResolvConf.Write(p.Netns, options.Lab, dns.Ip);
        return new LabDnsUpResult(wasUp, restarted, pod, dns);
    }

    /// <summary>
    /// Stops the DNS server, removes its pod and every pod's resolv.conf; returns the removed pod (null when DNS was not
    /// up). Its endpoint is the caller's to remove first, as for any pod.
    /// </summary>
    public LabPod? DnsDown()
    {
        using var _ = Store.Lock();
        var state = Store.Load();
        if (state is null) return null;
        var pod = state.Pod(DnsNamespace, DnsPodName);
        if (pod is not null && state.Dns is not null)
        {
            if (pod.Server is not null) DetachedProcess.Stop(pod.Server);
            LabTopology.DeletePod(state, pod);
            state.Pods.Remove(pod);
        }
        foreach (var netns in LabResolvConf.Existing(Names.Prefix)) LabResolvConf.Remove(netns);
        var hosts = state.Dns?.HostsFile;
        state.Dns = null;
        Store.Save(state);
        if (hosts is not null && Directory.Exists(Path.GetDirectoryName(hosts))) Directory.Delete(Path.GetDirectoryName(hosts)!, recursive: true);
        return pod;
    }

    /// <summary>
    /// Adds <paramref name="addresses"/> (IPv4: A, IPv6: AAAA) to the records of <paramref name="name"/> and returns once
    /// the server answers with all of them. Returns the name (normalized) and its addresses now.
    /// </summary>
    public (string Name, IReadOnlyList<string> Addresses) DnsAdd(string name, IReadOnlyList<string> addresses)
    {
        var normalized = LabDnsmasq.NormalizeName(name);
        if (addresses.Count == 0) throw new LabException($"give at least one address for {normalized}, e.g. `meshctl lab dns add {normalized} 10.202.0.1`");
        var parsed = addresses.Select(LabDnsmasq.NormalizeAddress).ToList();
        return ChangeRecords(normalized, records => records.Union(parsed).ToList());
    }

    /// <summary>Removes every record of <paramref name="name"/>; returns the addresses it had.</summary>
    public IReadOnlyList<string> DnsRemove(string name)
    {
        var normalized = LabDnsmasq.NormalizeName(name);
        IReadOnlyList<string> removed = [];
        ChangeRecords(normalized, current => { removed = current; return []; });
        return removed;
    }

    private (string Name, IReadOnlyList<string> Addresses) ChangeRecords(string name, Func<List<string>, List<string>> change)
    {
        using var _ = Store.Lock();
        var state = RequireUp();
        var dns = state.Dns ?? throw new LabException($"lab '{options.Lab}' has no DNS server; start it with `meshctl lab dns up`");
        var pod = state.Pod(DnsNamespace, DnsPodName) ?? throw new LabException("the DNS pod is gone; run `meshctl lab dns down` and `meshctl lab dns up`");
        var now = change(dns.Records.TryGetValue(name, out var current) ? current : []);
        if (now.Count == 0) dns.Records.Remove(name);
        else dns.Records[name] = now;
        LabDnsmasq.WriteHosts(dns.HostsFile, dns.Records);
        Store.Save(state);
        if (pod.Server is null || !DetachedProcess.Hangup(pod.Server))
            throw new LabException($"the DNS server of lab '{options.Lab}' is not running; run `meshctl lab dns up` to start it again (see {pod.ServerLog})");
        WaitUntilAnswers(pod, name, now);
        return (name, now);
    }

    /// <summary>SIGHUP is asynchronous: ask the server itself (over its own loopback) until it gives exactly these addresses.</summary>
    private static void WaitUntilAnswers(LabPod pod, string name, IReadOnlyList<string> addresses)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        var expected = addresses.Order().ToList();
        while (true)
        {
            var answered = new[] { LabDnsType.A, LabDnsType.AAAA }
                .Select(t => LabDns.Query(pod.Netns, pod.Id, IPAddress.Parse(pod.Ip), name, t, tcp: false, TimeSpan.FromSeconds(1)))
                .ToList();
            var got = answered.SelectMany(r => r.Answers).Select(a => a.Data).Order().ToList();
            if (answered.All(r => r.Answered) && got.SequenceEqual(expected)) return;
            if (DateTime.UtcNow > deadline)
                throw new LabException($"the DNS server did not take the new records of {name} within 10 s (it answers {string.Join(", ", got)}); see {pod.ServerLog}");
            Thread.Sleep(50);
        }
    }

    private static void WaitUntilAnswering(LabPod pod)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (!LabDns.Query(pod.Netns, pod.Id, IPAddress.Parse(pod.Ip), "ready.lab", LabDnsType.A, tcp: false, TimeSpan.FromMilliseconds(500)).Answered)
        {
            if (DateTime.UtcNow > deadline || pod.Server is { } s && !DetachedProcess.IsAlive(s))
                throw new LabException($"the DNS server in {pod.Id} does not answer; see {pod.ServerLog}:\n{Tail(pod.ServerLog)}");
            Thread.Sleep(50);
        }
    }

    /// <summary>The --local-ttl the running dnsmasq was started with (from its command line), null when unknown.</summary>
    private static int? LaunchedTtl(LabPod pod)
    {
        try
        {
            var args = File.ReadAllText($"/proc/{pod.Server!.Pid}/cmdline").Split('\0');
            return args.FirstOrDefault(a => a.StartsWith("--local-ttl=", StringComparison.Ordinal)) is { } ttl
                && int.TryParse(ttl["--local-ttl=".Length..], out var value) ? value : null;
        }
        catch (IOException) { return null; }
    }
}
