using System.Text.Json.Nodes;
using k8s.Models;

namespace Mesh.ControlPlane.Tests.Deploy;

/// <summary>
/// The init container install-cni's script, run as the manifests give it (its command and env) with the host directories
/// and the service account moved into a directory of the test's own, and curl replaced by a stub answering as the API
/// server would for GET /api/v1/nodes/NODE.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed partial class DeployTests
{
    private const string CompactNode =
        """{"kind":"Node","apiVersion":"v1","metadata":{"name":"node-1","annotations":{"mesh.example/pod-cidr":"10.9.0.0/16"},"managedFields":[{"fieldsV1":{"f:spec":{"f:podCIDR":{}}}}]},"spec":{"podCIDR":"10.244.1.0/24","podCIDRs":["10.244.1.0/24"]}}""";

    // What the API server answers curl: the same object, pretty-printed.
    private static readonly string PrettyNode = JsonNode.Parse(CompactNode)!.ToJsonString(new() { WriteIndented = true });

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Install_cni_copies_the_plugin_and_writes_the_conflist_for_the_nodes_pod_range(bool pretty)
    {
        using var run = new InstallCniRun(pretty ? PrettyNode : CompactNode);
        var result = await run.RunAsync();
        Assert.True(result.ExitCode == 0, result.Output);

        var conflist = JsonNode.Parse(File.ReadAllText(Path.Combine(run.ConfDir, "05-mesh.conflist")))!;
        var expected = JsonNode.Parse("""
            {"cniVersion":"1.0.0","name":"mesh","plugins":[{"type":"mesh-cni","agentSocket":"/var/run/mesh/cni.sock",
             "ipam":{"type":"host-local","ranges":[[{"subnet":"10.244.1.0/24"}]]}}]}
            """);
        Assert.True(JsonNode.DeepEquals(expected, conflist), conflist.ToJsonString());
        var plugin = Path.Combine(run.BinDir, "mesh-cni");
        Assert.Equal(InstallCniRun.PluginBytes, File.ReadAllText(plugin));
        Assert.Equal((UnixFileMode)0b111_101_101, File.GetUnixFileMode(plugin));
        Assert.Equal(["05-mesh.conflist"], Directory.GetFiles(run.ConfDir).Select(Path.GetFileName));
        Assert.Equal(["mesh-cni"], Directory.GetFiles(run.BinDir).Select(Path.GetFileName));

        var curl = File.ReadAllLines(run.CurlArguments);
        Assert.Equal("https://10.96.0.1:443/api/v1/nodes/node-1", curl[^1]);
        Assert.Equal(Path.Combine(run.ServiceAccountDir, "ca.crt"), curl[Array.IndexOf(curl, "--cacert") + 1]);
        Assert.Contains($"Authorization: Bearer {InstallCniRun.Token}", curl);
    }

    [Fact]
    public async Task Install_cni_takes_the_pod_range_from_the_annotation_it_is_given_and_brackets_an_IPv6_API_address()
    {
        using var run = new InstallCniRun(PrettyNode);
        var result = await run.RunAsync(new() { ["POD_CIDR_ANNOTATION"] = "mesh.example/pod-cidr", ["KUBERNETES_SERVICE_HOST"] = "fd00:10:96::1" });
        Assert.True(result.ExitCode == 0, result.Output);
        var conflist = JsonNode.Parse(File.ReadAllText(Path.Combine(run.ConfDir, "05-mesh.conflist")))!;
        Assert.Equal("10.9.0.0/16", (string?)conflist["plugins"]![0]!["ipam"]!["ranges"]![0]![0]!["subnet"]);
        Assert.Equal("https://[fd00:10:96::1]:443/api/v1/nodes/node-1", File.ReadAllLines(run.CurlArguments)[^1]);
    }

    [Theory]
    [InlineData("""{"kind":"Node","metadata":{"name":"node-1"},"spec":{}}""", "--allocate-node-cidrs")]
    [InlineData("""{"kind":"Node","metadata":{"name":"node-1"},"spec":{"podCIDR":"10.0.0.0/24\",\"x\":\"y"}}""", "is not a CIDR")]
    public async Task Install_cni_refuses_a_node_without_a_usable_pod_range_and_installs_nothing(string node, string message)
    {
        using var run = new InstallCniRun(node);
        var result = await run.RunAsync();
        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains(message, result.Stderr);
        Assert.Contains("node-1", result.Stderr);
        Assert.Empty(Directory.GetFiles(run.ConfDir));
        Assert.Empty(Directory.GetFiles(run.BinDir));
    }

    private sealed class InstallCniRun : IDisposable
    {
        public const string Token = "service-account-token";
        public const string PluginBytes = "the mesh-cni binary";

        private readonly string _root = Directory.CreateTempSubdirectory("mesh-install-cni-").FullName;
        private readonly V1Container _container = Plain.Single<V1DaemonSet>("mesh-agent").Spec.Template.Spec.InitContainers.Single(c => c.Name == "install-cni");

        public InstallCniRun(string nodeJson)
        {
            foreach (var dir in new[] { BinDir, ConfDir, ServiceAccountDir, StubDir }) Directory.CreateDirectory(dir);
            File.WriteAllText(Path.Combine(ServiceAccountDir, "token"), Token);
            File.WriteAllText(Path.Combine(ServiceAccountDir, "ca.crt"), "the cluster's CA");
            File.WriteAllText(Plugin, PluginBytes);
            File.WriteAllText(NodeJson, nodeJson);
            var curl = Path.Combine(StubDir, "curl");
            File.WriteAllText(curl, "#!/bin/sh\nprintf '%s\\n' \"$@\" > \"$CURL_ARGUMENTS\"\ncat \"$NODE_JSON\"\n");
            File.SetUnixFileMode(curl, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }

        public string BinDir => Path.Combine(_root, "opt-cni-bin");
        public string ConfDir => Path.Combine(_root, "etc-cni-net.d");
        public string ServiceAccountDir => Path.Combine(_root, "serviceaccount");
        public string CurlArguments => Path.Combine(_root, "curl-arguments");
        private string StubDir => Path.Combine(_root, "stubs");
        private string Plugin => Path.Combine(_root, "mesh-cni");
        private string NodeJson => Path.Combine(_root, "node.json");

        public Task<Mesh.Testing.CliRun.Result> RunAsync(Dictionary<string, string>? overrides = null)
        {
            Assert.Equal(["sh", "-ec"], _container.Command.Take(2));
            var env = _container.Env.Where(e => e.Value is not null).ToDictionary(e => e.Name, e => e.Value);
            env["HOST_CNI_BIN_DIR"] = BinDir;
            env["HOST_CNI_CONF_DIR"] = ConfDir;
            env["SERVICE_ACCOUNT_DIR"] = ServiceAccountDir;
            env["MESH_CNI_PLUGIN"] = Plugin;
            env["NODE_NAME"] = "node-1";
            env["KUBERNETES_SERVICE_HOST"] = "10.96.0.1";
            env["KUBERNETES_SERVICE_PORT"] = "443";
            env["PATH"] = $"{StubDir}:{Environment.GetEnvironmentVariable("PATH")}";
            env["CURL_ARGUMENTS"] = CurlArguments;
            env["NODE_JSON"] = NodeJson;
            foreach (var (k, v) in overrides ?? []) env[k] = v;
            return ChartRenderer.RunAsync("sh", ["-ec", _container.Command[2]], env);
        }

        public void Dispose() => Directory.Delete(_root, recursive: true);
    }
}
