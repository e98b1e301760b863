using System.Text.Json;
using System.Text.Json.Nodes;
using Mesh.Contracts.Cni;
using Mesh.Contracts.Input;

namespace Mesh.NodeAgent.Cni;

/// <summary>
/// The network configuration on stdin: {"cniVersion","name","type":"mesh-cni","agentSocket","mtu","ipam":{"type",...}}.
/// A "prevResult" (chained, or CHECK) is not read: CHECK compares the kernel with what the agent was told. The raw bytes
/// are kept: the IPAM plugin gets them unchanged, as the spec's delegation demands.
/// </summary>
public sealed record NetworkConfig(string CniVersion, string Name, string AgentSocket, int? Mtu, string IpamType, byte[] Raw)
{
    public static readonly string[] SupportedVersions = ["0.3.0", "0.3.1", "0.4.0", "1.0.0"];

    public static NetworkConfig Parse(byte[] raw)
    {
        JsonObject config;
        try
        {
            config = JsonNode.Parse(raw, documentOptions: new JsonDocumentOptions { MaxDepth = 32 }) as JsonObject
                ?? throw new CniError(CniError.DecodeFailure, "the network configuration on stdin is not a JSON object");
        }
        catch (JsonException e)
        {
            throw new CniError(CniError.DecodeFailure, "the network configuration on stdin is not valid JSON: fix the file in the runtime's CNI config directory", e.Message);
        }
        var version = String(config, "cniVersion") ?? throw Invalid("cniVersion is missing");
        if (!SupportedVersions.Contains(version))
            throw new CniError(CniError.IncompatibleVersion,
                $"cniVersion {InputLimits.Quote(version)} is not supported: use one of {string.Join(", ", SupportedVersions)}");
        var ipam = config["ipam"] as JsonObject
            ?? throw Invalid("ipam is missing: mesh-cni delegates addresses to an IPAM plugin, e.g. \"ipam\":{\"type\":\"host-local\",\"ranges\":[[{\"subnet\":\"10.244.1.0/24\"}]]}");
        var ipamType = String(ipam, "type", "ipam.type") ?? throw Invalid("ipam.type is missing: name the IPAM plugin, e.g. host-local");
        if (ipamType.Contains('/') || ipamType is "." or "..")
            throw Invalid($"ipam.type {InputLimits.Quote(ipamType)} must be a plugin's file name in CNI_PATH, not a path");
        int? mtu = null;
        if (config["mtu"] is { } mtuNode)
        {
            if (mtuNode.GetValueKind() != JsonValueKind.Number || !mtuNode.AsValue().TryGetValue(out int m) || m is < 68 or > 65535)
                throw Invalid($"mtu {InputLimits.Quote(mtuNode.ToJsonString())} is not a number of bytes between 68 and 65535");
            mtu = m;
        }
        return new NetworkConfig(
            version,
            String(config, "name") ?? throw Invalid("name is missing: every network configuration names its network"),
            String(config, "agentSocket") ?? CniSocket.DefaultPath,
            mtu,
            ipamType,
            raw);
    }

    /// <summary>Results before 1.0.0 carry each address's IP version.</summary>
    public bool ResultsNameIpVersion => CniVersion != "1.0.0";

    /// <summary>CHECK exists since 0.4.0.</summary>
    public bool HasCheck => CniVersion is "0.4.0" or "1.0.0";

    private static string? String(JsonObject o, string field, string? path = null) =>
        o[field] switch
        {
            null => null,
            JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
            var other => throw Invalid($"{path ?? field} must be a string, not {InputLimits.Quote(other.ToJsonString())}"),
        };

    private static CniError Invalid(string message) => new(CniError.InvalidNetworkConfig, "network configuration: " + message);
}
