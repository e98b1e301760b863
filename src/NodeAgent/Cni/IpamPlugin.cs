using System.Diagnostics;
using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Mesh.Contracts.Input;

namespace Mesh.NodeAgent.Cni;

/// <summary>
/// Delegation to the IPAM plugin the configuration names (CNI spec, "Delegated plugins"): found in CNI_PATH, run with
/// the plugin's own environment (CNI_COMMAND changed for an undo) and the same configuration on stdin. Its error
/// result is passed on as it is: its code and message already say what is wrong.
/// </summary>
public sealed class IpamPlugin(NetworkConfig config, CniInvocation invocation)
{
    /// <summary>ADD: the address it assigned (the first IPv4 one), and its routes and DNS for the result.</summary>
    public IpamResult Add()
    {
        var result = Run("ADD") ?? throw new CniError(CniError.DecodeFailure, $"IPAM plugin {config.IpamType} printed no result for ADD");
        foreach (var ip in result["ips"]?.AsArray() ?? [])
        {
            var text = ip?["address"]?.GetValue<string>();
            if (text is not null && IPNetwork.TryParse(text, out var network) && network.BaseAddress.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork)
            {
                // IPNetwork drops the host bits; the address is the part before the slash.
                var address = IPAddress.Parse(text[..text.IndexOf('/')]);
                return new IpamResult(address, result["dns"]?.DeepClone() as JsonObject);
            }
        }
        throw new CniError(CniError.InvalidNetworkConfig,
            $"IPAM plugin {config.IpamType} assigned no IPv4 address: configure an IPv4 range in ipam (mesh-cni wires IPv4 pods)", result.ToJsonString());
    }

    public void Check() => Run("CHECK");

    public void Del() => Run("DEL");

    private JsonObject? Run(string command)
    {
        var executable = invocation.Path.Select(dir => Path.Combine(dir, config.IpamType)).FirstOrDefault(File.Exists)
            ?? throw new CniError(CniError.InvalidNetworkConfig,
                $"IPAM plugin {InputLimits.Quote(config.IpamType)} was not found in CNI_PATH ({string.Join(':', invocation.Path)}): install it there or fix ipam.type");
        var info = new ProcessStartInfo(executable)
        {
            RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        info.Environment["CNI_COMMAND"] = command;
        string stdout, stderr;
        int exit;
        using (var process = Process.Start(info) ?? throw new CniError(CniError.TryAgainLater, $"could not start IPAM plugin {executable}"))
        {
            process.StandardInput.BaseStream.Write(config.Raw);
            process.StandardInput.Close();
            var err = process.StandardError.ReadToEndAsync();
            stdout = process.StandardOutput.ReadToEnd();
            process.WaitForExit();
            stderr = err.Result;
            exit = process.ExitCode;
        }
        JsonObject? parsed;
        try { parsed = string.IsNullOrWhiteSpace(stdout) ? null : JsonNode.Parse(stdout) as JsonObject; }
        catch (JsonException e)
        {
            throw new CniError(CniError.DecodeFailure, $"IPAM plugin {config.IpamType} {command}: its output is not JSON", $"{e.Message}; output: {stdout.Trim()} {stderr.Trim()}");
        }
        if (exit == 0) return parsed;
        var code = parsed?["code"] is JsonValue c && c.TryGetValue(out int n) ? n : CniError.TryAgainLater;
        var msg = parsed?["msg"]?.GetValue<string>() ?? stderr.Trim();
        var details = parsed?["details"]?.GetValue<string>();
        throw new CniError(code, $"IPAM plugin {config.IpamType} {command} failed: {msg}", details);
    }
}

public sealed record IpamResult(IPAddress Address, JsonObject? Dns);
