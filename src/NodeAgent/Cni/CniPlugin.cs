using System.Collections;
using System.Text.Json;
using System.Text.Json.Nodes;
using Mesh.Contracts.Cni;
using Mesh.Contracts.Netns;

namespace Mesh.NodeAgent.Cni;

/// <summary>
/// mesh-cni's four commands. ADD takes an address from the IPAM plugin, creates the pod's veth with its host side
/// down, has the node agent hold that interface closed, and only then brings it up: from the first packet on, nothing
/// crosses until the node enforces the pod's endpoint. DEL undoes all of it and succeeds however little is left.
/// </summary>
public static class CniPlugin
{
    /// <summary>Runs one invocation; returns the exit code after printing the result or the error on <paramref name="stdout"/>.</summary>
    public static async Task<int> RunAsync(IDictionary environment, Stream stdin, TextWriter stdout)
    {
        var version = "1.0.0";
        try
        {
            var command = CniInvocation.ParseCommand(environment);
            if (command == CniCommand.Version)
            {
                WriteVersion(stdout);
                return 0;
            }
            var invocation = CniInvocation.Parse(command, environment);
            using var buffer = new MemoryStream();
            await stdin.CopyToAsync(buffer);
            var config = NetworkConfig.Parse(buffer.ToArray());
            version = config.CniVersion;
            switch (command)
            {
                case CniCommand.Add: await AddAsync(config, invocation, stdout); break;
                case CniCommand.Del: await DelAsync(config, invocation); break;
                case CniCommand.Check: await CheckAsync(config, invocation); break;
            }
            return 0;
        }
        catch (CniError e)
        {
            WriteError(stdout, version, e.Code, e.Message, e.Details);
            return 1;
        }
    }

    private static async Task AddAsync(NetworkConfig config, CniInvocation invocation, TextWriter stdout)
    {
        var ipam = new IpamPlugin(config, invocation);
        var address = ipam.Add();
        var host = PodInterface.HostName(invocation.PodNamespace!, invocation.PodName!);
        PodLink? link = null;
        var attached = false;
        using var agent = new AgentClient(config.AgentSocket);
        try
        {
            link = Wire(() => PodWiring.Create(null, invocation.Netns!, host, invocation.IfName, address.Address, config.Mtu), "create");
            await agent.AttachAsync(invocation.ContainerId, new PodAttachment(invocation.PodNamespace!, invocation.PodName!, invocation.PodUid,
                invocation.Netns!, invocation.IfName, host, address.Address.ToString()));
            attached = true;
            Wire(() => { PodWiring.Connect(null, link); return link; }, "connect");
        }
        catch (CniError e)
        {
            // Every step is undone even when an earlier undo failed; what could not be undone is reported with the error.
            string?[] undone =
            [
                Undo(() => { if (link is not null) PodWiring.Delete(null, host); }, $"delete {host}"),
                Undo(ipam.Del, $"release the address {address.Address}"),
                attached ? Undo(() => agent.DetachAsync(invocation.ContainerId).GetAwaiter().GetResult(), "detach from the agent") : null,
            ];
            var failed = undone.OfType<string>().ToList();
            throw failed.Count == 0 ? e : new CniError(e.Code, e.Message, $"{e.Details}; undoing the ADD failed too: {string.Join("; ", failed)}");
        }
        WriteAddResult(stdout, config, invocation, link, address);
    }

    private static async Task DelAsync(NetworkConfig config, CniInvocation invocation)
    {
        using var agent = new AgentClient(config.AgentSocket);
        var host = invocation.PodNamespace is { } ns && invocation.PodName is { } name ? PodInterface.HostName(ns, name) : null;
        // A runtime that lost the pod's name still has its container id: the agent remembers the interface.
        CniError? agentDown = null;
        if (host is null)
        {
            try { host = (await agent.GetAsync(invocation.ContainerId))?.Attachment.HostInterface; }
            catch (CniError e) { agentDown = e; }
        }
        if (host is not null) Wire(() => PodWiring.Delete(null, host), "delete");
        new IpamPlugin(config, invocation).Del();
        if (agentDown is not null) throw agentDown;
        await agent.DetachAsync(invocation.ContainerId);
    }

    private static async Task CheckAsync(NetworkConfig config, CniInvocation invocation)
    {
        if (!config.HasCheck)
            throw new CniError(CniError.IncompatibleVersion, $"CHECK needs cniVersion 0.4.0 or later; this network configuration says {config.CniVersion}");
        using var agent = new AgentClient(config.AgentSocket);
        var known = await agent.GetAsync(invocation.ContainerId)
            ?? throw new CniError(CniError.NotAsAdded, $"the Mesh node agent knows no pod of container {invocation.ContainerId}: delete and add the pod again");
        var attachment = known.Attachment;
        var host = PodInterface.HostName(invocation.PodNamespace!, invocation.PodName!);
        if (attachment.HostInterface != host || attachment.IfName != invocation.IfName)
            throw new CniError(CniError.NotAsAdded, $"the Mesh node agent knows container {invocation.ContainerId} on {attachment.HostInterface}/{attachment.IfName}, not {host}/{invocation.IfName}: delete and add the pod again");
        var (_, problem) = Wire(() => PodWiring.Inspect(null, invocation.Netns!, host, invocation.IfName, System.Net.IPAddress.Parse(attachment.Ip)), "inspect");
        if (problem is not null)
            throw new CniError(CniError.NotAsAdded, $"the pod is not attached as ADD left it: {problem}; delete and add the pod again");
        new IpamPlugin(config, invocation).Check();
    }

    private static T Wire<T>(Func<T> step, string what)
    {
        try { return step(); }
        catch (IOException e)
        {
            throw new CniError(CniError.LinkFailed, $"could not {what} the pod's veth: {e.Message}; a DEL of this pod removes what is left, then ADD may be tried again");
        }
    }

    /// <returns>null, or what went wrong</returns>
    private static string? Undo(Action step, string what)
    {
        try
        {
            step();
            return null;
        }
        catch (Exception e) when (e is CniError or IOException) { return $"{what}: {e.Message}"; }
    }

    private static void WriteAddResult(TextWriter stdout, NetworkConfig config, CniInvocation invocation, PodLink link, IpamResult address)
    {
        var result = new JsonObject
        {
            ["cniVersion"] = config.CniVersion,
            ["interfaces"] = new JsonArray(
                new JsonObject { ["name"] = link.HostInterface, ["mac"] = link.HostMac },
                new JsonObject { ["name"] = link.PodInterface, ["mac"] = link.PodMac, ["sandbox"] = invocation.Netns }),
        };
        var ip = new JsonObject { ["address"] = $"{link.Ip}/32", ["gateway"] = PodWiring.Gateway, ["interface"] = 1 };
        if (config.ResultsNameIpVersion) ip["version"] = "4";
        result["ips"] = new JsonArray(ip);
        result["routes"] = new JsonArray(new JsonObject { ["dst"] = "0.0.0.0/0", ["gw"] = PodWiring.Gateway });
        result["dns"] = address.Dns ?? new JsonObject();
        stdout.Write(result.ToJsonString());
    }

    private static void WriteVersion(TextWriter stdout)
    {
        var versions = new JsonArray();
        foreach (var v in NetworkConfig.SupportedVersions) versions.Add(v);
        stdout.Write(new JsonObject { ["cniVersion"] = "1.0.0", ["supportedVersions"] = versions }.ToJsonString());
    }

    private static void WriteError(TextWriter stdout, string version, int code, string message, string? details)
    {
        var error = new JsonObject { ["cniVersion"] = version, ["code"] = code, ["msg"] = message };
        if (!string.IsNullOrEmpty(details)) error["details"] = details;
        stdout.Write(error.ToJsonString(new JsonSerializerOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }));
    }
}
