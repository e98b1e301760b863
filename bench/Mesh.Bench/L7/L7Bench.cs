using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime;
using System.Text.Json;
using Mesh.Bench.Datapath;
using Mesh.Contracts.Netns;
using Mesh.Lab;
using Mesh.NodeAgent.Proxy;

namespace Mesh.Bench.L7;

/// <summary>
/// The L7 rows: HTTP and DNS from a client pod to a server pod of the same node through the node's proxies, against
/// the same load under a plain L4 allow, the two taking turns round by round; then the first connection to each of
/// <see cref="FqdnNames"/> addresses that only a toFQDNs rule allows, made as soon as the DNS answer arrives. The
/// server pod serves HTTP on 80 (the lab's pod server, in a process of its own), DNS on 53 (the lab's dnsmasq) and
/// holds <see cref="FqdnCidr"/> on its loopback, which the node routes to it: a distinct address for every name.
/// </summary>
internal static class L7Bench
{
    public const int Connections = 16, Rounds = 5, DnsQueries = 2_000, FqdnNames = 200;
    public static readonly TimeSpan LoadTime = TimeSpan.FromSeconds(4), LatencyTime = TimeSpan.FromSeconds(3);

    /// <summary>Inside the lab's namespaces only: beside its outside hosts' range, and never a pod's.</summary>
    private const string FqdnCidr = "10.202.200.0/24";

    /// <summary>Under the first SYN retransmission (1 s): a first SYN the datapath dropped fails the connection.</summary>
    private static readonly TimeSpan FirstConnectTimeout = TimeSpan.FromMilliseconds(900);

    /// <summary>A stub resolver's usual wait before it asks again.</summary>
    private static readonly TimeSpan DnsTimeout = TimeSpan.FromSeconds(2);

    private const string LatencyName = "latency.bench.example";
    private static readonly IPAddress LatencyAddress = IPAddress.Parse("10.202.200.250");

    private enum Setup { Plain, Proxied }

    public static async Task<IReadOnlyList<Metric>> RunAsync()
    {
        // The proxies run in this process: they must run with the agent's runtime settings (workstation GC, tiered
        // PGO, ProxyRuntime's), not the bench's server GC, whose pauses on a small machine would be charged to them.
        if (GCSettings.IsServerGC)
        {
            if (Environment.GetEnvironmentVariable(WorkstationGc) == "0")
                throw new InvalidOperationException($"{WorkstationGc}=0 did not turn server GC off; the proxies would not run as in the agent");
            return await RunAsAgentAsync();
        }
        using var lab = BenchLab.Create();
        var client = lab.AddPod("a", []);
        var server = lab.AddPod("b", [client]);
        var serverIp = IPAddress.Parse(server.Ip);
        var servers = new List<RecordedProcess>();
        try
        {
            servers.Add(StartPodServer(lab, server));
            servers.Add(StartDns(lab, server));
            IpCommand.In(server.Netns, "route", "replace", "local", FqdnCidr, "dev", "lo");
            IpCommand.In(lab.Node.Netns, "route", "replace", FqdnCidr, "via", server.Ip, "dev", server.HostInterface);
            // From inside the server's own namespace: over lo, which nothing of the datapath sees.
            BenchLab.WaitForListener(server.Netns, serverIp, L7Policies.HttpPort, TimeSpan.FromSeconds(30));
            DnsProbe.WaitForAnswer(server.Netns, serverIp, LatencyName, TimeSpan.FromSeconds(20));

            await using var node = await L7Node.StartAsync(lab);
            var version = 1ul;
            void Enforce(Setup setup) => node.Enforce(setup == Setup.Plain
                ? L7Policies.Plain(version++, client, server) : L7Policies.Proxied(version++, client, server));
            // As in the agent, the proxies take traffic from the first version applied.
            Enforce(Setup.Plain);
            await node.Published;

            var metrics = new List<Metric>();
            metrics.AddRange(Http(client, server, node, Enforce));
            metrics.AddRange(Dns(client, serverIp, Enforce));
            Enforce(Setup.Proxied);
            metrics.Add(FirstConnections(client, serverIp));
            return metrics;
        }
        finally
        {
            foreach (var process in servers) DetachedProcess.Stop(process);
        }
    }

    private const string WorkstationGc = "DOTNET_gcServer";

    /// <summary>This section again, in a process of its own with the agent's runtime settings; its rows.</summary>
    private static async Task<IReadOnlyList<Metric>> RunAsAgentAsync()
    {
        var rows = Path.GetTempFileName();
        try
        {
            File.WriteAllText(rows, "[]");
            var start = BenchProcess.Again("--only", "l7");
            start.Environment[WorkstationGc] = "0";
            start.Environment["DOTNET_TieredPGO"] = "1";
            foreach (var (name, value) in ProxyRuntime.Settings) start.Environment[name] = value;
            start.Environment["MESH_BENCH_ROWS"] = rows;
            start.RedirectStandardOutput = true;   // its table: the caller prints the rows
            using var child = Process.Start(start) ?? throw new InvalidOperationException("could not start the l7 section's process");
            await child.StandardOutput.ReadToEndAsync();
            await child.WaitForExitAsync();
            if (child.ExitCode != 0) throw new InvalidOperationException($"the l7 section's process failed (exit code {child.ExitCode})");
            return JsonSerializer.Deserialize<List<Metric>>(File.ReadAllText(rows), new JsonSerializerOptions(JsonSerializerDefaults.Web))!;
        }
        finally { File.Delete(rows); }
    }

    private static IReadOnlyList<Metric> Http(LabPod client, LabPod server, L7Node node, Action<Setup> enforce)
    {
        var url = $"http://{server.Ip}/";
        var load = new Dictionary<Setup, List<WrkResult>> { [Setup.Plain] = [], [Setup.Proxied] = [] };
        var latency = new Dictionary<Setup, List<WrkResult>> { [Setup.Plain] = [], [Setup.Proxied] = [] };
        // Warm-up, not measured: the proxy's code compiled, its upstream connections pooled.
        foreach (var setup in load.Keys)
        {
            enforce(setup);
            Wrk.Run(client.Netns, url, Connections, TimeSpan.FromSeconds(2));
        }
        var forwardedBefore = node.Judged.HttpAllowed;
        var proxyCpu = TimeSpan.Zero;   // this process's: the proxies and the agent's part, nothing of wrk's or the server's
        for (var round = 1; round <= Rounds; round++)
            foreach (var setup in load.Keys)
            {
                Console.Error.WriteLine($"  http round {round}/{Rounds}: {setup.ToString().ToLowerInvariant()}");
                enforce(setup);
                var cpuBefore = Environment.CpuUsage.TotalTime;
                load[setup].Add(Wrk.Run(client.Netns, url, Connections, LoadTime));
                if (setup == Setup.Proxied) proxyCpu += Environment.CpuUsage.TotalTime - cpuBefore;
                latency[setup].Add(Wrk.Run(client.Netns, url, 1, LatencyTime));
            }
        // Proof that the proxied rounds went through the proxy and the direct ones did not: the proxy forwarded what wrk
        // completed through it, plus at most the requests in flight when each run stopped.
        var proxied = load[Setup.Proxied].Sum(r => r.Requests) + latency[Setup.Proxied].Sum(r => r.Requests);
        var forwarded = node.Judged.HttpAllowed - forwardedBefore;
        if (forwarded < proxied || forwarded > proxied + Rounds * (Connections + 1))
            throw new InvalidOperationException($"the proxy forwarded {forwarded} requests, but wrk completed {proxied} through it");
        if (node.Judged.Refused > 0) throw new InvalidOperationException($"the proxies refused {node.Judged.Refused} requests the rule allows");

        double Rate(Setup s) => Stats.Median(load[s].Select(r => r.RequestsPerSecond));
        double P99(Setup s) => Stats.Median(latency[s].Select(r => r.P99Microseconds));
        var ratio = Stats.Median(load[Setup.Proxied].Zip(load[Setup.Plain], (p, d) => p.RequestsPerSecond / d.RequestsPerSecond));
        string Each(Dictionary<Setup, List<WrkResult>> runs, Setup s, Func<WrkResult, double> value) =>
            string.Join(" ", runs[s].Select(r => value(r).ToString("0", CultureInfo.InvariantCulture)));
        var how = $"wrk in the client pod, keep-alive HTTP/1.1 GET to the server pod on the same node; rounds of direct and proxied in turn, median of {Rounds}";
        return
        [
            new("l7.http_rps_ratio", ratio, "x",
                $"through the proxy (one rules.http rule, GET /.*; each request a Hubble flow in the node's ring) {Rate(Setup.Proxied):N0} rps vs direct (L4 allow) {Rate(Setup.Plain):N0} rps, " +
                $"{Connections} connections, {LoadTime.TotalSeconds:0} s per round; {how}; median of the per-round ratios; " +
                $"rounds proxied {Each(load, Setup.Proxied, r => r.RequestsPerSecond)}, direct {Each(load, Setup.Plain, r => r.RequestsPerSecond)}; " +
                $"{Environment.ProcessorCount} CPUs shared by wrk, the proxy and the server; the proxy's CPU per request " +
                $"{proxyCpu.TotalMicroseconds / load[Setup.Proxied].Sum(r => r.Requests):0.#} µs; target ≥ 0.5"),
            new("l7.http_p99_added_us", P99(Setup.Proxied) - P99(Setup.Plain), "µs",
                $"p99 of sequential requests (wrk, one connection, {LatencyTime.TotalSeconds:0} s per round) through the proxy {P99(Setup.Proxied):0} µs " +
                $"minus direct {P99(Setup.Plain):0} µs; medians of the per-round p99s; rounds proxied {Each(latency, Setup.Proxied, r => r.P99Microseconds)}, " +
                $"direct {Each(latency, Setup.Plain, r => r.P99Microseconds)}"),
        ];
    }

    private static IReadOnlyList<Metric> Dns(LabPod client, IPAddress server, Action<Setup> enforce)
    {
        var p99 = new Dictionary<Setup, List<double>> { [Setup.Plain] = [], [Setup.Proxied] = [] };
        var unanswered = new Dictionary<Setup, int> { [Setup.Plain] = 0, [Setup.Proxied] = 0 };
        using var probe = new DnsProbe(client.Netns, server, DnsTimeout);
        foreach (var setup in p99.Keys)
        {
            enforce(setup);
            probe.P99(LatencyName, DnsQueries / 4);   // warm-up; the proxied one learns the name's address once
        }
        for (var round = 1; round <= Rounds; round++)
            foreach (var setup in p99.Keys)
            {
                Console.Error.WriteLine($"  dns round {round}/{Rounds}: {setup.ToString().ToLowerInvariant()}");
                enforce(setup);
                var (value, lost) = probe.P99(LatencyName, DnsQueries);
                p99[setup].Add(value);
                unanswered[setup] += lost;
            }
        var (proxied, plain) = (Stats.Median(p99[Setup.Proxied]), Stats.Median(p99[Setup.Plain]));
        string Spread(Setup s) => string.Join(" ", p99[s].Select(v => v.ToString("0", CultureInfo.InvariantCulture)));
        return
        [
            new("dns.proxy_p99_added_us", proxied - plain, "µs",
                $"p99 of {DnsQueries:N0} sequential UDP A queries from the client pod to dnsmasq in the server pod through the DNS proxy " +
                $"(rules.dns matchPattern {L7Policies.Pattern}) {proxied:0} µs minus direct (L4 allow) {plain:0} µs; median of {Rounds} rounds in turn; " +
                $"rounds proxied {Spread(Setup.Proxied)}, direct {Spread(Setup.Plain)}; unanswered within {DnsTimeout.TotalSeconds:0} s " +
                $"(counted at that time): proxied {unanswered[Setup.Proxied]}, direct {unanswered[Setup.Plain]}; target ≤ 1,000"),
        ];
    }

    /// <summary>
    /// Each name once through the proxy, then at once a TCP connection to the address it answered, which only the
    /// toFQDNs allow lets through. First, a connection to an address no answer has taught must fail, or the ratio
    /// would prove nothing.
    /// </summary>
    private static Metric FirstConnections(LabPod client, IPAddress server)
    {
        var unlearned = FqdnAddress(0);
        if (TryConnect(client.Netns, unlearned, TimeSpan.FromSeconds(1)))
            throw new InvalidOperationException($"{unlearned}:80 accepted a connection before any answer taught its address: the row would mean nothing");
        Console.Error.WriteLine($"  first connections to {FqdnNames} names' addresses");
        using var probe = new DnsProbe(client.Netns, server, DnsTimeout);
        var ok = 0;
        var (failed, retried) = (new List<string>(), 0);
        for (var i = 0; i < FqdnNames; i++)
        {
            // A query left unanswered is asked again, as a resolver would; the connection is made after the answer.
            var answer = probe.Query(FqdnName(i));
            for (var attempt = 1; answer is null && attempt < 3; attempt++, retried++) answer = probe.Query(FqdnName(i));
            if (answer is not var (rcode, address, _)) throw new InvalidOperationException($"{FqdnName(i)}: no answer to 3 queries");
            if (rcode != 0 || !FqdnAddress(i).Equals(address))
                throw new InvalidOperationException($"{FqdnName(i)}: rcode {rcode}, address {address}, expected {FqdnAddress(i)}");
            if (TryConnect(client.Netns, address, FirstConnectTimeout)) ok++;
            else failed.Add(FqdnName(i));
        }
        return new("dns.first_connection_ok_ratio", (double)ok / FqdnNames, "x",
            $"{ok} of {FqdnNames} first TCP connections succeeded, each made as soon as the DNS proxy's answer for a distinct name " +
            $"(matchPattern {L7Policies.Pattern}) arrived, to a distinct address only the toFQDNs allow covers, within {FirstConnectTimeout.TotalMilliseconds:0} ms " +
            $"(before the first SYN retransmission); an address not yet answered was refused first; queries asked again after {DnsTimeout.TotalSeconds:0} s without an answer: {retried}" +
            (failed.Count > 0 ? $"; failed: {string.Join(", ", failed.Take(10))}" : "") + "; must be 1");
    }

    private static string FqdnName(int i) => string.Create(CultureInfo.InvariantCulture, $"n{i:000}.bench.example");

    private static IPAddress FqdnAddress(int i) => IPAddress.Parse(string.Create(CultureInfo.InvariantCulture, $"10.202.200.{i + 1}"));

    private static bool TryConnect(string netns, IPAddress address, TimeSpan timeout)
    {
        using var socket = NetworkNamespace.Run(netns, () => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
        using var attempt = new CancellationTokenSource(timeout);
        try
        {
            socket.ConnectAsync(new IPEndPoint(address, L7Policies.HttpPort), attempt.Token).AsTask().GetAwaiter().GetResult();
            return true;
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException) { return false; }
    }

    /// <summary>The lab's pod server, HTTP on port 80 only, in a process of its own: its CPU is not the proxy's.</summary>
    private static RecordedProcess StartPodServer(BenchLab lab, LabPod pod)
    {
        var again = BenchProcess.Again(PodServerProcess.Mode, pod.Netns);
        // An application server runs with the runtime's defaults, not the proxies' settings this process has.
        return lab.StartTagged($"pod server {pod.Name}", again.FileName, [.. again.ArgumentList],
            ProxyRuntime.Settings.ToDictionary(setting => setting.Key, _ => ""));
    }

    /// <summary>The lab's dnsmasq in <paramref name="pod"/>, answering every name of the rows.</summary>
    private static RecordedProcess StartDns(BenchLab lab, LabPod pod)
    {
        var hosts = Path.Combine(lab.LogDirectory, "bench-hosts");
        var records = Enumerable.Range(0, FqdnNames).ToDictionary(FqdnName, i => new List<string> { FqdnAddress(i).ToString() });
        records[LatencyName] = [LatencyAddress.ToString()];
        LabDnsmasq.WriteHosts(hosts, records);
        var launch = LabDnsmasq.Launch(pod, hosts, ttlSeconds: 300, Path.Combine(lab.LogDirectory, "dnsmasq.log"));
        return lab.StartTagged($"dns server {pod.Name}", launch.FileName, launch.Arguments);
    }
}

/// <summary>The bench started again as the server pod's HTTP server (the lab's pod server on port 80).</summary>
internal static class PodServerProcess
{
    public const string Mode = "--l7-pod-server";

    public static int Run(string[] args) =>
        PodServer.RunUntilTerminated(args[1], "bench", [.. PodServer.NamedPorts.Where(p => p.Port == L7Policies.HttpPort && p.Protocol == LabProtocol.Tcp)]);
}
