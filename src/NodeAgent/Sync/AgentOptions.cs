using Mesh.NodeAgent.Export;

namespace Mesh.NodeAgent.Sync;

/// <summary>The agent's command line: mesh-agent --node NAME [--netns NS] [--control-plane URL[,URL...]] [--pin-root DIR] ...</summary>
/// <param name="ControlPlaneReplicas">the replicas of one control plane, in the order the agent tries them</param>
public sealed record AgentOptions(
    string Node,
    string? Netns,
    IReadOnlyList<Uri> ControlPlaneReplicas,
    string PinRoot,
    string? BpfObject,
    string StateDir,
    string? TokenFile = null,
    string? CaFile = null,
    string? HubbleSocket = null,
    int HubbleBufferSize = Hubble.FlowBuffer.DefaultCapacity,
    System.Net.IPEndPoint? MetricsListen = null,
    string? MetricsTokenFile = null,
    FlowExportOptions? Export = null,
    string CniSocket = Mesh.Contracts.Cni.CniSocket.DefaultPath,
    Datapath.NodeDevices? Devices = null,
    Proxy.Dns.FqdnCacheOptions? FqdnCache = null)
{
    /// <summary>How long learned DNS addresses are kept (--tofqdns-min-ttl, --tofqdns-idle-connection-grace-period).</summary>
    public Proxy.Dns.FqdnCacheOptions Fqdns => FqdnCache ?? new();

    /// <summary>The node's own devices (--devices): every interface with an address unless told otherwise.</summary>
    public Datapath.NodeDevices NodeDevices => Devices ?? Datapath.NodeDevices.AutoDetect;

    /// <summary>Where Hubble's Observer API listens: --hubble-socket, else hubble.sock in the state dir.</summary>
    public string HubbleSocketPath => HubbleSocket ?? Path.Combine(StateDir, "hubble.sock");

    public const string Usage = """
        mesh-agent: enforces this node's policy snapshots in the kernel and reports every version it applied.

        Options:
          --node NAME             this node's name (required)
          --netns NAME            network namespace holding the endpoints' veths (default: the agent's own)
          --control-plane URLS    the gRPC address of each replica of the control plane, comma-separated; the agent
                                  follows one and moves to the next when it fails
                                  (default: $MESH_GRPC or https://127.0.0.1:7081)
          --pin-root DIR          where maps and programs are pinned (default: /sys/fs/bpf/mesh/NODE)
          --bpf-object FILE       compiled datapath (default: endpoint.o next to the agent)
          --state-dir DIR         flow log and state (default: $MESH_HOME/agent/NODE)
          --token-file FILE       holds this node's token (a token of the control plane with the group
                                  mesh:node:NODE), read at each connect (default: $MESH_AGENT_TOKEN_FILE)
          --ca-file FILE          PEM certificate of the CA that issued the control plane's certificate; on
                                  https:// the agent believes no other (default: $MESH_CA_FILE, else the
                                  system's roots)
          --hubble-socket PATH    unix socket serving Hubble's Observer API (mode 0600)
                                  (default: hubble.sock in the state dir)
          --hubble-buffer-size N  recent flows kept in memory for it (default: 65536, at most 1048576)
          --devices auto|none|IF[,IF...]  the node's own devices, where traffic from other nodes arrives: traffic
                                  that a local pod's L7 ingress rules cover is handed to the node's proxy there
                                  (default: auto, every interface with an IPv4 address but loopback)
          --tofqdns-min-ttl SECONDS  keep an address a DNS answer allowed (toFQDNs) at least this long, whatever its
                                  TTL (default: $MESH_AGENT_TOFQDNS_MIN_TTL, else 3600, as Cilium)
          --tofqdns-idle-connection-grace-period SECONDS  and this much longer after its TTL, unless a connection
                                  still uses it (default: $MESH_AGENT_TOFQDNS_IDLE_CONNECTION_GRACE_PERIOD, else 5)
          --cni-socket PATH       unix socket mesh-cni tells of the pods it attaches (mode 0600); each is held
                                  closed until this node enforces its endpoint (default: /var/run/mesh/cni.sock)
          --metrics-listen IP:PORT  serve GET /metrics (Prometheus text) there, e.g. 127.0.0.1:9965 or [::]:9965
                                  (default: $MESH_AGENT_METRICS_LISTEN, else not served)
          --metrics-token-file FILE  holds the bearer token a scraper of /metrics must present; required with
                                  --metrics-listen, read again when it changes (default: $MESH_AGENT_METRICS_TOKEN_FILE)

        Exporting flows (Hubble's exporter; each flag defaults to $MESH_AGENT_ and its name, e.g.
        $MESH_AGENT_HUBBLE_EXPORT_FILE_PATH):
          --hubble-export-file-path PATH     write every flow as a JSON line to PATH, or to the agent's stdout with
                                             "stdout" (default: not exported)
          --hubble-export-file-max-size-mb N rotate the file before it grows past N MB; 0 never rotates (default: 10)
          --hubble-export-file-max-backups N rotated files kept, oldest deleted first; 0 keeps all (default: 5)
          --hubble-export-file-compress BOOL gzip the rotated files (default: false)
          --hubble-export-allowlist FILTERS  export only flows matching one of these Hubble flow filters (JSON, e.g.
                                             {"source_pod":["default/"]}), separated by commas or newlines, or a JSON array
          --hubble-export-denylist FILTERS   never export flows matching one of these
          --hubble-export-fieldmask PATHS    export only these fields of each flow, comma-separated
                                             (e.g. time,source.namespace,verdict; default: all)
          --hubble-flowlogs-config-path FILE Hubble's dynamic exporters: a YAML flowLogs list, applied again whenever
                                             it changes, without a restart
          --hubble-flowlogs-config-check-interval SECONDS  read that file again this often, in case a change was
                                             not seen (default: 10)
        """;

    public static AgentOptions Parse(string[] args)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var i = 0; i < args.Length; i++)
        {
            if (!args[i].StartsWith("--", StringComparison.Ordinal) || i + 1 >= args.Length)
                throw new ArgumentException($"unexpected argument '{args[i]}'\n\n{Usage}");
            values[args[i][2..]] = args[++i];
        }
        string? Get(string key) => values.TryGetValue(key, out var v) ? v : null;
        string? FlagOrEnv(string key) => Get(key) ?? NonEmpty(Environment.GetEnvironmentVariable("MESH_AGENT_" + key.Replace('-', '_').ToUpperInvariant()));
        var node = Get("node") ?? throw new ArgumentException($"--node is required\n\n{Usage}");
        var home = Environment.GetEnvironmentVariable("MESH_HOME") ?? "/var/lib/mesh";
        var metricsListen = Get("metrics-listen") is { } listen ? ParseListen(listen, "--metrics-listen")
            : NonEmpty(Environment.GetEnvironmentVariable("MESH_AGENT_METRICS_LISTEN")) is { } envListen
                ? ParseListen(envListen, "--metrics-listen (from $MESH_AGENT_METRICS_LISTEN)")
                : null;
        var metricsTokenFile = Get("metrics-token-file") ?? NonEmpty(Environment.GetEnvironmentVariable("MESH_AGENT_METRICS_TOKEN_FILE"));
        // Every API of Mesh authenticates its callers: metrics without a token would be the one that does not.
        if (metricsListen is not null && metricsTokenFile is null)
            throw new ArgumentException($"--metrics-listen needs --metrics-token-file: /metrics answers only a scraper presenting that token\n\n{Usage}");
        return new AgentOptions(
            node,
            Get("netns"),
            Get("control-plane") is { } flag ? ParseReplicas(flag, "--control-plane")
                : Environment.GetEnvironmentVariable("MESH_GRPC") is { } env ? ParseReplicas(env, "--control-plane (from $MESH_GRPC)")
                : [new Uri("https://127.0.0.1:7081")],
            Get("pin-root") ?? $"/sys/fs/bpf/mesh/{node}",
            Get("bpf-object"),
            Get("state-dir") ?? Path.Combine(home, "agent", node),
            Get("token-file") ?? Environment.GetEnvironmentVariable("MESH_AGENT_TOKEN_FILE"),
            Get("ca-file") ?? Environment.GetEnvironmentVariable("MESH_CA_FILE"),
            Get("hubble-socket"),
            Get("hubble-buffer-size") is { } size ? ParseBufferSize(size) : Hubble.FlowBuffer.DefaultCapacity,
            metricsListen,
            metricsTokenFile,
            ParseExport(FlagOrEnv),
            Get("cni-socket") ?? Mesh.Contracts.Cni.CniSocket.DefaultPath,
            Get("devices") is { } devices ? ParseDevices(devices) : null,
            new Proxy.Dns.FqdnCacheOptions
            {
                MinTtl = Seconds(FlagOrEnv("tofqdns-min-ttl"), "--tofqdns-min-ttl") ?? TimeSpan.FromHours(1),
                Grace = Seconds(FlagOrEnv("tofqdns-idle-connection-grace-period"), "--tofqdns-idle-connection-grace-period") ?? TimeSpan.FromSeconds(5),
            });
    }

    private static TimeSpan? Seconds(string? text, string flag) => text is null ? null
        : ParseNumber(text, flag) is >= 0 and var seconds ? TimeSpan.FromSeconds(seconds)
        : throw new ArgumentException($"{flag}: '{text}' is not a number of seconds, 0 or more\n\n{Usage}");

    private static Datapath.NodeDevices ParseDevices(string text)
    {
        try { return Datapath.NodeDevices.Parse(text, "--devices"); }
        catch (ArgumentException e) { throw new ArgumentException($"{e.Message}\n\n{Usage}"); }
    }

    /// <summary>The exporter flags, each defaulting to $MESH_AGENT_ and its name in capitals.</summary>
    private static FlowExportOptions ParseExport(Func<string, string?> flagOrEnv)
    {
        FlowExporterSpec? exporter = null;
        try
        {
            if (flagOrEnv("hubble-export-file-path") is { } path)
                exporter = FlowExporterSpec.Create("", "hubble-export-file", path,
                    flagOrEnv("hubble-export-fieldmask")?.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries) ?? [],
                    FlowExporterSpec.ParseFilterList(flagOrEnv("hubble-export-allowlist"), "--hubble-export-allowlist"),
                    FlowExporterSpec.ParseFilterList(flagOrEnv("hubble-export-denylist"), "--hubble-export-denylist"),
                    maxSizeMb: flagOrEnv("hubble-export-file-max-size-mb") is { } size ? ParseNumber(size, "--hubble-export-file-max-size-mb") : FlowExporterSpec.DefaultMaxSizeMb,
                    maxBackups: flagOrEnv("hubble-export-file-max-backups") is { } backups ? ParseCount(backups, "--hubble-export-file-max-backups") : FlowExporterSpec.DefaultMaxBackups,
                    compress: flagOrEnv("hubble-export-file-compress") is { } compress && ParseBool(compress, "--hubble-export-file-compress"),
                    fieldMaskField: "--hubble-export-fieldmask", includeField: "--hubble-export-allowlist", excludeField: "--hubble-export-denylist",
                    maxSizeField: "--hubble-export-file-max-size-mb", maxBackupsField: "--hubble-export-file-max-backups");
        }
        catch (FlowExportConfigException e) { throw new ArgumentException($"{e.Message}\n\n{Usage}"); }
        var interval = flagOrEnv("hubble-flowlogs-config-check-interval") is { } seconds
            ? TimeSpan.FromSeconds(ParseNumber(seconds, "--hubble-flowlogs-config-check-interval") is > 0 and var s ? s
                : throw new ArgumentException($"--hubble-flowlogs-config-check-interval: '{seconds}' is not a positive number of seconds\n\n{Usage}"))
            : (TimeSpan?)null;
        return new FlowExportOptions(exporter, flagOrEnv("hubble-flowlogs-config-path"), interval);
    }

    private static double ParseNumber(string text, string flag) =>
        double.TryParse(text, System.Globalization.NumberStyles.AllowDecimalPoint, System.Globalization.CultureInfo.InvariantCulture, out var value)
            ? value
            : throw new ArgumentException($"{flag}: '{text}' is not a number\n\n{Usage}");

    private static int ParseCount(string text, string flag) =>
        int.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var value)
            ? value
            : throw new ArgumentException($"{flag}: '{text}' is not a whole number\n\n{Usage}");

    private static bool ParseBool(string text, string flag) =>
        bool.TryParse(text, out var value) ? value : throw new ArgumentException($"{flag}: '{text}' is not true or false\n\n{Usage}");

    private static string? NonEmpty(string? value) => string.IsNullOrWhiteSpace(value) ? null : value;

    private static System.Net.IPEndPoint ParseListen(string text, string source) =>
        // An address without a port parses as port 0.
        System.Net.IPEndPoint.TryParse(text, out var endpoint) && endpoint.Port != 0
            ? endpoint
            : throw new ArgumentException($"{source}: '{text}' is not IP:PORT (127.0.0.1:9965, [::1]:9965)\n\n{Usage}");

    private static int ParseBufferSize(string text)
    {
        if (!int.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var size) || size <= 0)
            throw new ArgumentException($"--hubble-buffer-size: '{text}' is not a positive number of flows\n\n{Usage}");
        return size <= Hubble.FlowBuffer.MaxCapacity ? size
            : throw new ArgumentException($"--hubble-buffer-size: {size} flows is more than the {Hubble.FlowBuffer.MaxCapacity} one agent holds " +
                $"({Hubble.FlowBuffer.BytesPerFlow} bytes each); export them (--hubble-export-file-path) to keep more\n\n{Usage}");
    }

    private static IReadOnlyList<Uri> ParseReplicas(string list, string source)
    {
        var replicas = new List<Uri>();
        foreach (var address in list.Split(',', StringSplitOptions.TrimEntries))
        {
            if (!Uri.TryCreate(address, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
                throw new ArgumentException($"{source}: '{address}' in '{list}' is not an absolute http:// or https:// address\n\n{Usage}");
            replicas.Add(uri);
        }
        return replicas;
    }
}
