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
    /// <summary>Agent protocol, gRPC over cleartext HTTP/2 (prior knowledge). Default 7081.</summary>
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

    /// <summary>Who may call: --token-file, --jwt-issuer, --jwt-audience, --jwt-key-file, --oidc-authority, --jwt-username-claim, --jwt-groups-claim.</summary>
    public Security.SecurityOptions Security { get; set; } = new();

    public string AdvertiseAddress => Advertise ?? Listen;

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
        if (Seconds(config, "identity-grace", "MESH_IDENTITY_GRACE") is { } grace) o.IdentityGrace = grace;
        if (Seconds(config, "node-report-interval", "MESH_NODE_REPORT_INTERVAL") is { } report) o.NodeReportInterval = report;
        if (PositiveCount(config, "identity-allocation-rate", "MESH_IDENTITY_ALLOCATION_RATE", "new identities per minute") is { } rate)
            o.IdentityAllocationRate = rate;
        if (PositiveCount(config, "identity-allocation-burst", "MESH_IDENTITY_ALLOCATION_BURST", "new identities") is { } burst)
            o.IdentityAllocationBurst = burst;
        return o;
    }

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
