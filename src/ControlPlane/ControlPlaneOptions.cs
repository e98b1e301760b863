namespace Mesh.ControlPlane;

/// <summary>Settings, from the command line (--pg=..., --api-port=...) or environment (MESH_PG, ...).</summary>
public sealed class ControlPlaneOptions
{
    /// <summary>PostgreSQL connection string of the event store. Default: the private server `./dev up` starts.</summary>
    public string Pg { get; set; } = "Host=127.0.0.1;Port=55432;Username=postgres;Database=mesh";
    /// <summary>Address both listeners bind to. Default 127.0.0.1.</summary>
    public string Listen { get; set; } = "127.0.0.1";
    /// <summary>REST API and OpenAPI document (HTTP/1.1 and HTTP/2). Default 7080.</summary>
    public int ApiPort { get; set; } = 7080;
    /// <summary>Agent protocol: gRPC over HTTP/2 (TLS, or prior knowledge with --plaintext). Default 7081.</summary>
    public int GrpcPort { get; set; } = 7081;
    /// <summary>Address the other replicas and agents reach this one at. Default: <see cref="Listen"/>.</summary>
    public string? Advertise { get; set; }
    /// <summary>Sharing the aggregates with the other replicas (--member-id, --remoting-port, --seed-nodes, --shards,
    /// --lease-ttl and --passivate-after seconds).</summary>
    public Cluster.ClusterOptions Cluster { get; set; } = new();

    /// <summary>An identity no endpoint has used for this long is released (--identity-grace seconds). Default 15 min.</summary>
    public TimeSpan IdentityGrace { get; set; } = TimeSpan.FromMinutes(15);

    /// <summary>New identities (label sets not allocated yet) one principal may have allocated per minute
    /// (--identity-allocation-rate). Default 120.</summary>
    public int IdentityAllocationRate { get; set; } = 120;

    /// <summary>New identities one principal may have allocated at once before the rate applies (--identity-allocation-burst). Default 240.</summary>
    public int IdentityAllocationBurst { get; set; } = 240;

    /// <summary>
    /// A node's reports (the version it enforces) are recorded in its stream at most this often (--node-report-interval
    /// seconds). Default 10 s: a thousand nodes then add at most a hundred events a second to the log however fast
    /// policies change; the replica an agent talks to knows its acks at once.
    /// </summary>
    public TimeSpan NodeReportInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Flow history older than this is dropped, a whole day at a time (--flow-retention seconds). Default 7 days.</summary>
    public TimeSpan FlowRetention { get; set; } = TimeSpan.FromDays(7);

    /// <summary>How often the flow history's retention runs (--flow-retention-interval seconds). Default 1 hour.</summary>
    public TimeSpan FlowRetentionInterval { get; set; } = TimeSpan.FromHours(1);

    /// <summary>Who may call: --token-file, --jwt-issuer, --jwt-audience, --jwt-key-file, --oidc-authority, --jwt-username-claim, --jwt-groups-claim.</summary>
    public Security.SecurityOptions Security { get; set; } = new();

    /// <summary>
    /// The certificate both ports serve (--tls-cert-file and --tls-private-key-file, PEM).
    /// Null: plain HTTP, which the command line allows only when asked for by --plaintext.
    /// </summary>
    public TlsFiles? Tls { get; set; }

    /// <summary>
    /// The Kubernetes controller (--kubernetes; --kubeconfig FILE, else the pod's service account;
    /// --kubernetes-status-interval seconds). Null: Mesh knows only what its own API is told.
    /// </summary>
    public Kubernetes.KubernetesOptions? Kubernetes { get; set; }

    public string AdvertiseAddress => Advertise ?? Listen;

    /// <summary>How clients address this replica's ports: https, or http with --plaintext.</summary>
    public string Scheme => Tls is null ? "http" : "https";

    public string ApiUrl => $"{Scheme}://{AdvertiseAddress}:{ApiPort}";
    public string GrpcUrl => $"{Scheme}://{AdvertiseAddress}:{GrpcPort}";

    /// <summary>The options, one line each, for <c>mesh-controlplane --help</c>.</summary>
    public const string Usage = """
        mesh-controlplane: the REST API, the agent protocol, and the event-sourced desired state behind them.

        Options (--name=value or --name value; each also as an environment variable, e.g. MESH_PG):
          --pg                      PostgreSQL connection string of the event store
                                    (default: Host=127.0.0.1;Port=55432;Username=postgres;Database=mesh)
          --listen                  address both ports bind to (default 127.0.0.1)
          --api-port                REST API, HTTP/1.1 and HTTP/2 (default 7080)
          --grpc-port               agent protocol and gRPC management API, HTTP/2 (default 7081)
          --advertise               address other replicas and agents reach this one at (default: --listen)
          --tls-cert-file           PEM certificate both ports serve; ./dev up makes one
          --tls-private-key-file    PEM private key of that certificate
          --plaintext               serve plain HTTP instead of TLS (a lab on loopback)
          --insecure-allow-anonymous  with --plaintext: unauthenticated calls act as an administrator
        Who may call:
          --token-file              static tokens, token,user,uid,"group1,group2" per line (Kubernetes' format)
          --jwt-issuer, --jwt-audience, --jwt-key-file, --oidc-authority, --jwt-username-claim, --jwt-groups-claim
                                    JWT bearer tokens of an issuer (keys from a PEM file or OIDC discovery)
        Cluster of replicas:
          --member-id, --remoting-port, --seed-nodes, --shards, --lease-ttl, --stable-after, --passivate-after
        Kubernetes:
          --kubernetes              run the controller: pods, namespaces and policy objects of the cluster become Mesh's
                                    (one replica at a time runs it)
          --kubeconfig              kubeconfig file of the API server (default: the pod's service account)
          --kubernetes-status-interval  how often policy objects' status catches up with the nodes (default 5)
        Timers (seconds) and limits:
          --identity-grace          an identity unused this long is released (default 900)
          --node-report-interval    a node's acknowledgements are recorded at most this often (default 10)
          --flow-retention          flow history older than this is dropped, a day at a time (default 604800)
          --flow-retention-interval how often retention runs (default 3600)
          --identity-allocation-rate   new identities per minute per caller (default 120)
          --identity-allocation-burst  new identities a caller may allocate at once (default 240)
        """;

    public static ControlPlaneOptions From(IConfiguration config)
    {
        var o = new ControlPlaneOptions();
        o.Pg = config["pg"] ?? config["MESH_PG"] ?? o.Pg;
        o.Listen = config["listen"] ?? config["MESH_LISTEN"] ?? o.Listen;
        o.ApiPort = int.TryParse(config["api-port"] ?? config["MESH_API_PORT"], out var api) ? api : o.ApiPort;
        o.GrpcPort = int.TryParse(config["grpc-port"] ?? config["MESH_GRPC_PORT"], out var grpc) ? grpc : o.GrpcPort;
        o.Advertise = config["advertise"] ?? config["MESH_ADVERTISE"];
        var cluster = o.Cluster;
        if ((config["member-id"] ?? config["MESH_MEMBER_ID"]) is { Length: > 0 } id) cluster = cluster with { MemberId = id };
        if (int.TryParse(config["shards"] ?? config["MESH_SHARDS"], out var shards)) cluster = cluster with { Shards = shards };
        if ((config["remoting-port"] ?? config["MESH_REMOTING_PORT"]) is { } remoting)
            cluster = cluster with { RemotingPort = int.TryParse(remoting, out var port) && port is > 0 and <= 65535 ? port
                : throw new ArgumentException($"--remoting-port (MESH_REMOTING_PORT): \"{remoting}\" is not a port number (1-65535)") };
        if ((config["seed-nodes"] ?? config["MESH_SEED_NODES"]) is { Length: > 0 } seeds)
            cluster = cluster with { SeedNodes = seeds.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) };
        if (Seconds(config, "lease-ttl", "MESH_LEASE_TTL") is { } ttl)
            cluster = cluster with { LeaseTtl = ttl, HeartbeatInterval = TimeSpan.FromSeconds(Math.Min(1, ttl.TotalSeconds / 5)) };
        if (Seconds(config, "stable-after", "MESH_STABLE_AFTER") is { } stable) cluster = cluster with { StableAfter = stable };
        if (Seconds(config, "passivate-after", "MESH_PASSIVATE_AFTER") is { } idle) cluster = cluster with { PassivateAfter = idle };
        o.Cluster = cluster;
        o.Security = Mesh.ControlPlane.Security.SecurityOptions.From(config);
        var (cert, key) = (config["tls-cert-file"] ?? config["MESH_TLS_CERT_FILE"], config["tls-private-key-file"] ?? config["MESH_TLS_PRIVATE_KEY_FILE"]);
        var plaintext = Flag(config, "plaintext", "MESH_PLAINTEXT");
        o.Tls = (cert, key, plaintext) switch
        {
            ({ Length: > 0 }, { Length: > 0 }, false) => TlsFiles.Read(cert, key),
            ({ Length: > 0 }, { Length: > 0 }, true) => throw new ArgumentException("--plaintext and --tls-cert-file: choose one"),
            (null, null, true) => null,
            (null, null, false) => throw new ArgumentException(
                "no TLS certificate: give --tls-cert-file and --tls-private-key-file (./dev up makes them), or --plaintext to serve plain HTTP"),
            _ => throw new ArgumentException("--tls-cert-file and --tls-private-key-file go together"),
        };
        o.Security = o.Security with { AllowAnonymous = Flag(config, "insecure-allow-anonymous", "MESH_INSECURE_ALLOW_ANONYMOUS") };
        if (o.Security.AllowAnonymous && o.Tls is not null)
            throw new ArgumentException("--insecure-allow-anonymous is only for --plaintext labs: a TLS-protected control plane authenticates every call");
        if (Seconds(config, "identity-grace", "MESH_IDENTITY_GRACE") is { } grace) o.IdentityGrace = grace;
        if (Seconds(config, "node-report-interval", "MESH_NODE_REPORT_INTERVAL") is { } report) o.NodeReportInterval = report;
        if (Seconds(config, "flow-retention", "MESH_FLOW_RETENTION") is { } retention) o.FlowRetention = retention;
        if (Seconds(config, "flow-retention-interval", "MESH_FLOW_RETENTION_INTERVAL") is { } sweep) o.FlowRetentionInterval = sweep;
        if (PositiveCount(config, "identity-allocation-rate", "MESH_IDENTITY_ALLOCATION_RATE", "new identities per minute") is { } rate)
            o.IdentityAllocationRate = rate;
        if (PositiveCount(config, "identity-allocation-burst", "MESH_IDENTITY_ALLOCATION_BURST", "new identities") is { } burst)
            o.IdentityAllocationBurst = burst;
        var kubeconfig = config["kubeconfig"] ?? config["MESH_KUBECONFIG"];
        var statusInterval = Seconds(config, "kubernetes-status-interval", "MESH_KUBERNETES_STATUS_INTERVAL");
        if (Flag(config, "kubernetes", "MESH_KUBERNETES"))
        {
            if (kubeconfig is not null && !File.Exists(kubeconfig)) throw new ArgumentException($"--kubeconfig: {kubeconfig} does not exist");
            o.Kubernetes = new(kubeconfig, statusInterval ?? Mesh.ControlPlane.Kubernetes.KubernetesOptions.DefaultStatusInterval);
        }
        else if (kubeconfig is not null || statusInterval is not null)
            throw new ArgumentException("--kubeconfig and --kubernetes-status-interval set up the Kubernetes controller: add --kubernetes to run it");
        return o;
    }

    private static readonly string[] Switches = ["--plaintext", "--insecure-allow-anonymous", "--kubernetes"];

    /// <summary>
    /// The command line with each bare switch given its value (--plaintext becomes --plaintext=true): the configuration
    /// reader would otherwise take the next argument as the switch's value, or drop a switch given last.
    /// </summary>
    public static string[] WithSwitchValues(string[] args) => [.. args.Select(a => Switches.Contains(a) ? a + "=true" : a)];

    /// <summary>A switch: true or false (a bare one was made "true" by <see cref="WithSwitchValues"/>).</summary>
    private static bool Flag(IConfiguration config, string option, string variable) =>
        (config[option] ?? config[variable]) is { } text && (bool.TryParse(text, out var on)
            ? on
            : throw new ArgumentException($"--{option} ({variable}): \"{text}\" is not true or false"));

    /// <summary>A whole number of <paramref name="what"/> greater than 0, or null when not given; anything else is refused by name.</summary>
    private static int? PositiveCount(IConfiguration config, string option, string variable, string what)
    {
        if ((config[option] ?? config[variable]) is not { } text) return null;
        return int.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var count) && count > 0
            ? count
            : throw new ArgumentException($"--{option} ({variable}): \"{text}\" is not a whole number of {what} greater than 0");
    }

    /// <summary>A duration given in seconds, or null when not given. A value that is not a positive number is refused
    /// by name: a typo must not quietly leave a timer at its default.</summary>
    private static TimeSpan? Seconds(IConfiguration config, string option, string variable)
    {
        if ((config[option] ?? config[variable]) is not { } text) return null;
        return double.TryParse(text, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var seconds)
            && seconds > 0 && double.IsFinite(seconds)
            ? TimeSpan.FromSeconds(seconds)
            : throw new ArgumentException($"--{option} ({variable}): \"{text}\" is not a number of seconds greater than 0");
    }
}

/// <summary>The certificate and key both ports serve, read once at start (a restart picks up a renewed pair).</summary>
public sealed record TlsFiles(string CertFile, string KeyFile, System.Security.Cryptography.X509Certificates.X509Certificate2 Certificate)
{
    /// <exception cref="ArgumentException">a file is missing, or the pair is not a PEM certificate and its key</exception>
    public static TlsFiles Read(string certFile, string keyFile)
    {
        foreach (var (file, option) in new[] { (certFile, "--tls-cert-file"), (keyFile, "--tls-private-key-file") })
            if (!File.Exists(file)) throw new ArgumentException($"{option}: {file} does not exist");
        try { return new TlsFiles(certFile, keyFile, System.Security.Cryptography.X509Certificates.X509Certificate2.CreateFromPemFile(certFile, keyFile)); }
        catch (System.Security.Cryptography.CryptographicException e)
        {
            throw new ArgumentException($"--tls-cert-file/--tls-private-key-file: {certFile} and {keyFile} are not a PEM certificate and its private key ({e.Message})", e);
        }
    }
}
