using System.Net;
using Mesh.Testing;

namespace Mesh.NodeAgent.Tests.Cni;

/// <summary>
/// mesh-cni run as a container runtime runs it (its own process in the node's namespace, the CNI environment, the
/// network configuration on stdin, host-local for addresses) against an agent socket that holds nothing.
/// </summary>
[Trait("Category", "Privileged")]
public sealed class CniPluginPrivilegedTests
{
    [Fact]
    public async Task Add_wires_two_pods_that_talk_over_tcp_and_del_twice_succeeds_and_frees_the_address()
    {
        Privileged.Require();
        var hold = new RecordingHold();
        await using var node = await CniNode.StartAsync(_ => hold);
        var a = node.AddPodNamespace("a");
        var b = node.AddPodNamespace("b");

        var addA = node.Invoke("ADD", a, "a");
        var addB = node.Invoke("ADD", b, "b");

        var result = addA.Success;
        Assert.Equal("1.0.0", result["cniVersion"]!.GetValue<string>());
        Assert.True(IPNetwork.Parse(CniNode.Subnet).Contains(addA.Ip), $"{addA.Ip} is from the IPAM's subnet");
        Assert.Equal($"{addA.Ip}/32", result["ips"]![0]!["address"]!.GetValue<string>());
        Assert.Equal("169.254.1.1", result["ips"]![0]!["gateway"]!.GetValue<string>());
        Assert.Equal(1, result["ips"]![0]!["interface"]!.GetValue<int>());
        var interfaces = result["interfaces"]!.AsArray();
        Assert.Equal(CniNode.HostInterface("a"), interfaces[0]!["name"]!.GetValue<string>());
        Assert.Equal(("eth0", $"/run/netns/{a}"), (interfaces[1]!["name"]!.GetValue<string>(), interfaces[1]!["sandbox"]!.GetValue<string>()));
        Assert.Matches("^([0-9a-f]{2}:){5}[0-9a-f]{2}$", interfaces[1]!["mac"]!.GetValue<string>());
        Assert.Equal("0.0.0.0/0", result["routes"]![0]!["dst"]!.GetValue<string>());
        Assert.True(node.NodeHas(CniNode.HostInterface("a")), "the host side of a's veth is in the node namespace");
        Assert.Contains($"{addA.Ip} dev {CniNode.HostInterface("a")}", node.NodeRoutes());
        Assert.Equal([CniNode.HostInterface("a"), CniNode.HostInterface("b")], hold.Held.Order());

        node.Listen(b, addB.Ip, 8080);
        Assert.True(CniNode.Converses(a, addB.Ip, 8080), "a reaches b over TCP through the node");

        Assert.Equal(0, node.Invoke("DEL", a, "a").ExitCode);
        var again = node.Invoke("DEL", a, "a");
        Assert.True(again.ExitCode == 0, $"a second DEL succeeds too: {again.Stdout}");
        Assert.False(node.NodeHas(CniNode.HostInterface("a")), "DEL removed a's veth");
        Assert.DoesNotContain(CniNode.HostInterface("a"), hold.Held);

        // The pool holds two addresses: c can only get one if DEL gave a's back.
        var c = node.AddPodNamespace("c");
        Assert.Equal(addA.Ip, node.Invoke("ADD", c, "c").Ip);
    }

    [Fact]
    public async Task Del_succeeds_when_the_pod_namespace_is_gone_and_when_the_container_was_never_added()
    {
        Privileged.Require();
        await using var node = await CniNode.StartAsync(_ => new RecordingHold());
        var a = node.AddPodNamespace("a");
        node.Invoke("ADD", a, "a").Success.ToString();

        var withoutNetns = node.Invoke("DEL", podNetns: null, "a");
        var unknown = node.Invoke("DEL", podNetns: null, "never-added");

        Assert.True(withoutNetns.ExitCode == 0, withoutNetns.Stdout);
        Assert.True(unknown.ExitCode == 0, unknown.Stdout);
        Assert.False(node.NodeHas(CniNode.HostInterface("a")));
    }

    [Fact]
    public async Task Check_passes_after_add_and_fails_once_the_veth_is_deleted_by_hand()
    {
        Privileged.Require();
        await using var node = await CniNode.StartAsync(_ => new RecordingHold());
        var a = node.AddPodNamespace("a");
        var add = node.Invoke("ADD", a, "a");
        var withPrevResult = System.Text.Json.Nodes.JsonNode.Parse(node.Config())!.AsObject();
        withPrevResult["prevResult"] = add.Success.DeepClone();

        var check = node.Invoke("CHECK", a, "a", withPrevResult.ToJsonString());
        Assert.True(check.ExitCode == 0, $"CHECK after ADD passes: {check.Stdout}");

        System.Diagnostics.Process.Start("ip", ["-n", node.Node, "link", "del", CniNode.HostInterface("a")])!.WaitForExit();
        var broken = node.Invoke("CHECK", a, "a", withPrevResult.ToJsonString());

        Assert.Equal(102, broken.ErrorCode);
        Assert.Contains($"the host side {CniNode.HostInterface("a")} is missing", broken.Json["msg"]!.GetValue<string>());
    }

    [Fact]
    public async Task Version_names_the_supported_versions()
    {
        Privileged.Require();
        await using var node = await CniNode.StartAsync(hold: null);

        var version = node.Invoke("VERSION", podNetns: null, "a", """{"cniVersion":"1.0.0"}""");

        Assert.Equal("""{"cniVersion":"1.0.0","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0"]}""", version.Success.ToJsonString());
    }

    [Fact]
    public async Task Bad_configuration_and_environment_get_the_spec_error_codes_and_say_what_to_fix()
    {
        Privileged.Require();
        await using var node = await CniNode.StartAsync(_ => new RecordingHold());
        var a = node.AddPodNamespace("a");

        var noIpam = node.Invoke("ADD", a, "a", """{"cniVersion":"1.0.0","name":"mesh","type":"mesh-cni"}""");
        var badJson = node.Invoke("ADD", a, "a", """{"cniVersion":"1.0.0",""");
        var oldVersion = node.Invoke("ADD", a, "a", """{"cniVersion":"0.2.0","name":"mesh","type":"mesh-cni","ipam":{"type":"host-local"}}""");
        var noNetns = node.Invoke("ADD", podNetns: null, "a");
        var noCommand = node.Invoke("", a, "a");

        Assert.Equal((7, "network configuration: ipam is missing"), (noIpam.ErrorCode, noIpam.Json["msg"]!.GetValue<string>()[..38]));
        Assert.Equal(6, badJson.ErrorCode);
        Assert.Equal(1, oldVersion.ErrorCode);
        Assert.Contains("use one of 0.3.0, 0.3.1, 0.4.0, 1.0.0", oldVersion.Json["msg"]!.GetValue<string>());
        Assert.Equal(4, noNetns.ErrorCode);
        Assert.StartsWith("CNI_NETNS is not set", noNetns.Json["msg"]!.GetValue<string>());
        Assert.Equal(4, noCommand.ErrorCode);
        Assert.All(new[] { noIpam, badJson, oldVersion, noNetns, noCommand }, o => Assert.NotEqual(0, o.ExitCode));
        Assert.False(node.NodeHas(CniNode.HostInterface("a")), "no failed ADD left a veth");
    }

    [Fact]
    public async Task Add_without_an_agent_is_try_again_later_and_leaves_neither_veth_nor_address_behind()
    {
        Privileged.Require();
        await using var node = await CniNode.StartAsync(hold: null);
        var a = node.AddPodNamespace("a");

        var add = node.Invoke("ADD", a, "a");

        Assert.Equal(11, add.ErrorCode);
        Assert.Contains($"the Mesh node agent is not reachable on unix://{node.Socket}", add.Json["msg"]!.GetValue<string>());
        Assert.False(node.NodeHas(CniNode.HostInterface("a")), "the veth is undone");
        await node.ServeAsync(new RecordingHold());
        var b = node.AddPodNamespace("b");
        var c = node.AddPodNamespace("c");
        Assert.Equal(0, node.Invoke("ADD", b, "b").ExitCode);
        Assert.True(node.Invoke("ADD", c, "c").ExitCode == 0, "the failed ADD gave its address back: both of the pool's addresses are free");
    }
}
