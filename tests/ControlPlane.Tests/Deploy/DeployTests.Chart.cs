using k8s.Models;
using YamlDotNet.RepresentationModel;

namespace Mesh.ControlPlane.Tests.Deploy;

public sealed partial class DeployTests
{
    [Fact]
    public void The_chart_is_a_Helm_3_chart_whose_values_parse()
    {
        var meta = LoadMapping(Path.Combine(ChartRenderer.Chart, "Chart.yaml"));
        Assert.Equal(("v2", "mesh"), (meta["apiVersion"], meta["name"]));
        Assert.False(string.IsNullOrEmpty(meta["version"]));
        var values = new YamlStream();
        using var reader = new StringReader(File.ReadAllText(Path.Combine(ChartRenderer.Chart, "values.yaml")));
        values.Load(reader);
        var root = (YamlMappingNode)values.Documents.Single().RootNode;
        foreach (var key in new[] { "image", "crds", "controller", "controlPlane", "agent", "cni" })
            Assert.True(root.Children.ContainsKey(key), $"values.yaml has no {key}");
    }

    [Fact]
    public async Task Replicas_and_the_crds_follow_the_values()
    {
        var objects = await RenderAsync("""
            controlPlane: { replicas: 5 }
            crds: { install: false }
            """);
        Assert.Equal(5, objects.Single<V1Deployment>("mesh-controlplane").Spec.Replicas);
        Assert.Empty(objects.OfType<V1CustomResourceDefinition>());
        Assert.Equal(3, Plain.OfType<V1CustomResourceDefinition>().Count());
        // Everything else stays as it is by default.
        Assert.Equal(Plain.All.Count - 1 - 3, objects.All.Count);
        Assert.Equal(DeployedObjects.Grants(Plain.Single<V1ClusterRole>("mesh-controller")), DeployedObjects.Grants(objects.Single<V1ClusterRole>("mesh-controller")));
    }

    [Fact]
    public async Task Without_the_controller_the_control_plane_has_no_role_no_api_token_and_no_kubernetes_flag()
    {
        var objects = await RenderAsync("controller: { enabled: false }");
        Assert.False(objects.Has<V1ClusterRole>("mesh-controller"));
        Assert.False(objects.Has<V1ClusterRoleBinding>("mesh-controller"));
        var pod = objects.Single<V1Deployment>("mesh-controlplane").Spec.Template.Spec;
        Assert.False(pod.AutomountServiceAccountToken);
        Assert.False(objects.Single<V1ServiceAccount>("mesh-controlplane").AutomountServiceAccountToken);
        Assert.DoesNotContain("--kubernetes", Assert.Single(pod.Containers).Args);
        Assert.True(objects.Has<V1ClusterRole>("mesh-agent"));
    }

    [Fact]
    public async Task The_cni_directories_socket_secrets_and_images_follow_the_values()
    {
        var objects = await RenderAsync("""
            image:
              agent: { repository: registry.example/mesh/agent, tag: "1.2" }
              controlPlane: { repository: registry.example/mesh/controlplane, tag: "1.2" }
            cni: { binDir: /usr/libexec/cni, confDir: /etc/cni/conf.d, confName: 10-mesh.conflist, podCIDRAnnotation: mesh.example/pod-cidr }
            agent: { cniSocket: /run/mesh-agent/cni.sock, extraArgs: [--metrics-listen, "127.0.0.1:9965"] }
            controlPlane:
              postgres: { secretName: pg-credentials, key: dsn }
              tokens: { secretName: tokens-2, key: static.csv }
            """);
        var pod = objects.Single<V1DaemonSet>("mesh-agent").Spec.Template.Spec;
        var install = pod.InitContainers.Single(c => c.Name == "install-cni");
        string HostPath(string volume) => pod.Volumes.Single(v => v.Name == volume).HostPath.Path;
        Assert.Equal("/usr/libexec/cni", HostPath("cni-bin"));
        Assert.Equal("/etc/cni/conf.d", HostPath("cni-conf"));
        Assert.Equal("/run/mesh-agent", HostPath("cni-socket-dir"));
        Assert.Equal(("10-mesh.conflist", "mesh.example/pod-cidr", "/run/mesh-agent/cni.sock"),
            (EnvOf(install, "CNI_CONF_NAME"), EnvOf(install, "POD_CIDR_ANNOTATION"), EnvOf(install, "MESH_CNI_SOCKET")));
        var agent = Assert.Single(pod.Containers);
        Assert.Equal("/run/mesh-agent/cni.sock", ArgumentAfter(agent, "--cni-socket"));
        Assert.Equal("/run/mesh-agent", agent.VolumeMounts.Single(m => m.Name == "cni-socket-dir").MountPath);
        Assert.Equal("127.0.0.1:9965", ArgumentAfter(agent, "--metrics-listen"));
        Assert.All(pod.InitContainers.Append(agent), c => Assert.Equal("registry.example/mesh/agent:1.2", c.Image));

        var cpPod = objects.Single<V1Deployment>("mesh-controlplane").Spec.Template.Spec;
        var cp = Assert.Single(cpPod.Containers);
        Assert.Equal("registry.example/mesh/controlplane:1.2", cp.Image);
        var pg = Assert.Single(cp.Env, e => e.Name == "MESH_PG").ValueFrom.SecretKeyRef;
        Assert.Equal(("pg-credentials", "dsn"), (pg.Name, pg.Key));
        Assert.Equal("/etc/mesh/tokens/static.csv", FlagValue(cp, "--token-file"));
        Assert.Equal("tokens-2", cpPod.Volumes.Single(v => v.Name == "tokens").Secret.SecretName);
    }

    [Fact]
    public async Task A_chart_without_the_PostgreSQL_Secret_refuses_to_render_and_names_the_value()
    {
        var result = await chart.RenderAsync("controlPlane: { postgres: { secretName: null } }");
        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("controlPlane.postgres.secretName", result.Stderr);
        Assert.Empty(result.Stdout);
    }

    private async Task<DeployedObjects> RenderAsync(string values)
    {
        var result = await chart.RenderAsync(values);
        Assert.True(result.ExitCode == 0, $"the chart did not render: {result.Output}");
        return DeployedObjects.Load(result.Stdout, $"the chart rendered with {values}");
    }

    private static Dictionary<string, string> LoadMapping(string file) =>
        new YamlDotNet.Serialization.DeserializerBuilder().Build().Deserialize<Dictionary<string, string>>(File.ReadAllText(file));
}
