using System.Diagnostics;
using System.Net;
using System.Text.Json.Nodes;

namespace Mesh.Testing;

/// <summary>
/// Runs mesh-cni as a container runtime does: its own process inside the node's network namespace (`ip netns exec`;
/// the plugin needs no bpffs), the CNI environment as the kubelet sets it, the network configuration on stdin, and
/// host-local from Debian's containernetworking-plugins for addresses.
/// </summary>
public static class CniRuntime
{
    public static readonly string Binary = RepoPaths.Binary(Path.Combine("NodeAgent", "Cni"), "mesh-cni");

    /// <summary>A network configuration for mesh-cni whose host-local pool is <paramref name="rangeStart"/>-<paramref name="rangeEnd"/>
    /// of <paramref name="subnet"/>, kept in <paramref name="ipamDataDir"/>.</summary>
    public static string Config(string agentSocket, string subnet, string rangeStart, string rangeEnd, string ipamDataDir) => new JsonObject
    {
        ["cniVersion"] = "1.0.0", ["name"] = "mesh", ["type"] = "mesh-cni", ["agentSocket"] = agentSocket, ["mtu"] = 1500,
        ["ipam"] = new JsonObject
        {
            ["type"] = "host-local",
            ["ranges"] = new JsonArray(new JsonArray(new JsonObject { ["subnet"] = subnet, ["rangeStart"] = rangeStart, ["rangeEnd"] = rangeEnd })),
            ["dataDir"] = ipamDataDir,
        },
    }.ToJsonString();

    /// <param name="podNetns">the pod's namespace as a path, null for none</param>
    /// <param name="environment">changes to the CNI environment after it is set up, e.g. removing a variable</param>
    public static CniOutcome Invoke(string nodeNetns, string command, string? podNetns, string ns, string pod, string containerId, string config,
        string ifName = "eth0", Action<IDictionary<string, string?>>? environment = null)
    {
        var info = new ProcessStartInfo("ip") { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { "netns", "exec", nodeNetns, Binary }) info.ArgumentList.Add(a);
        foreach (var key in info.Environment.Keys.Where(k => k.StartsWith("CNI_", StringComparison.Ordinal)).ToList()) info.Environment.Remove(key);
        info.Environment["CNI_COMMAND"] = command;
        info.Environment["CNI_CONTAINERID"] = containerId;
        if (podNetns is not null) info.Environment["CNI_NETNS"] = podNetns;
        info.Environment["CNI_IFNAME"] = ifName;
        // What the kubelet passes: IgnoreUnknown lets the IPAM plugin accept the pod's keys.
        info.Environment["CNI_ARGS"] = $"IgnoreUnknown=1;K8S_POD_NAMESPACE={ns};K8S_POD_NAME={pod};K8S_POD_UID=uid-{pod}";
        info.Environment["CNI_PATH"] = "/opt/cni/bin:/usr/lib/cni";
        environment?.Invoke(info.Environment);
        var clock = Stopwatch.StartNew();
        using var process = Process.Start(info)!;
        process.StandardInput.Write(config);
        process.StandardInput.Close();
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return new CniOutcome(process.ExitCode, stdout, stderr.Result, clock.Elapsed);
    }
}

/// <summary>What one plugin run printed and how it exited.</summary>
public sealed record CniOutcome(int ExitCode, string Stdout, string Stderr, TimeSpan Took)
{
    public JsonObject Json => JsonNode.Parse(Stdout) as JsonObject
        ?? throw new InvalidOperationException($"mesh-cni printed no JSON object (exit {ExitCode}): {Stdout} {Stderr}");

    public int? ErrorCode => ExitCode == 0 ? null : Json["code"]!.GetValue<int>();

    public JsonObject Success => ExitCode == 0 ? Json : throw new InvalidOperationException($"mesh-cni failed (exit {ExitCode}): {Stdout} {Stderr}");

    /// <summary>The pod's address from an ADD result.</summary>
    public IPAddress Ip
    {
        get
        {
            var address = Success["ips"]![0]!["address"]!.GetValue<string>();
            return IPAddress.Parse(address[..address.IndexOf('/')]);
        }
    }
}
