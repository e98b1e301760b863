using k8s.Models;
using Mesh.ControlPlane.Kubernetes;
using Mesh.Testing;

namespace Mesh.ControlPlane.Tests.Deploy;

/// <summary>
/// deploy/: the plain manifests are the Helm chart rendered with its default values (./dev manifests writes them, and
/// these tests fail while they differ), so what is checked on them holds for the chart's defaults too; the chart's
/// values are checked by rendering it with others.
/// </summary>
public sealed partial class DeployTests(ChartRenderer chart) : IClassFixture<ChartRenderer>
{
    private static readonly Lazy<DeployedObjects> PlainObjects = new(() => DeployedObjects.LoadDirectory(ChartRenderer.Manifests));
    private static DeployedObjects Plain => PlainObjects.Value;

    [Fact]
    public void Every_manifest_loads_strictly_as_its_Kubernetes_type_and_is_named()
    {
        Assert.NotEmpty(Plain.All);
        foreach (var o in Plain.All)
        {
            Assert.False(string.IsNullOrEmpty(o.ApiVersion), $"a {o.Kind} without apiVersion");
            Assert.False(string.IsNullOrEmpty(o.Kind), $"{o.Metadata?.Name}: no kind");
            Assert.False(string.IsNullOrEmpty(o.Metadata?.Name), $"a {o.Kind} without metadata.name");
        }
        var clusterScoped = new[] { "Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding" };
        foreach (var o in Plain.All.Where(o => !clusterScoped.Contains(o.Kind)))
            Assert.True(o.Metadata.NamespaceProperty == ChartRenderer.Namespace, $"{o.Kind} {o.Metadata.Name} is in namespace '{o.Metadata.NamespaceProperty}'");
        Assert.Equal(ChartRenderer.Namespace, Plain.Single<V1Namespace>(ChartRenderer.Namespace).Metadata.Name);
    }

    [Fact]
    public async Task The_plain_manifests_are_the_chart_rendered_with_its_default_values()
    {
        var rendered = await chart.RenderToDirectoryAsync();
        var expected = Directory.GetFiles(rendered).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToArray();
        // 00-namespace.yaml is written by hand: a chart installs into its release's namespace and does not own it.
        var actual = Directory.GetFiles(ChartRenderer.Manifests, "*.yaml").Select(Path.GetFileName)
            .Where(f => f != "00-namespace.yaml").Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(expected, actual);
        foreach (var file in expected)
            Assert.True(File.ReadAllText(Path.Combine(rendered, file!)) == File.ReadAllText(Path.Combine(ChartRenderer.Manifests, file!)),
                $"deploy/manifests/{file} is not what the chart renders: run ./dev manifests");
    }

    [Fact]
    public void The_controllers_role_grants_exactly_the_calls_the_controller_makes()
    {
        var role = Plain.Single<V1ClusterRole>("mesh-controller");
        Assert.All(role.Rules, rule =>
        {
            Assert.Null(rule.ResourceNames);
            Assert.Null(rule.NonResourceURLs);
        });
        var required = KubernetesAccess.Required.SelectMany(a => a.Verbs.Select(v => (a.Group, a.Resource, v))).ToHashSet();
        var granted = DeployedObjects.Grants(role);
        Assert.Empty(granted.Except(required));
        Assert.Empty(required.Except(granted));

        var binding = Plain.Single<V1ClusterRoleBinding>("mesh-controller");
        Assert.Equal(("ClusterRole", "mesh-controller"), (binding.RoleRef.Kind, binding.RoleRef.Name));
        var subject = Assert.Single(binding.Subjects);
        Assert.Equal(("ServiceAccount", "mesh-controlplane", ChartRenderer.Namespace), (subject.Kind, subject.Name, subject.NamespaceProperty));
        Assert.Equal("mesh-controlplane", Plain.Single<V1Deployment>("mesh-controlplane").Spec.Template.Spec.ServiceAccountName);
    }

    [Fact]
    public void Every_custom_resource_the_controller_reads_has_its_CRD_with_the_status_it_patches()
    {
        var crds = Plain.OfType<V1CustomResourceDefinition>().ToDictionary(c => (c.Spec.Group, c.Spec.Names.Plural));
        var custom = KubernetesAccess.Required.Where(a => a.Group is "cilium.io" or "policy.networking.k8s.io").ToArray();
        var kinds = custom.Select(a => (a.Group, Plural: a.Resource.Split('/')[0])).Distinct().ToArray();
        Assert.Equal(kinds.Order(), crds.Keys.Order());
        foreach (var (group, plural) in kinds)
        {
            var crd = crds[(group, plural)];
            Assert.Equal($"{plural}.{group}", crd.Metadata.Name);
            var version = Assert.Single(crd.Spec.Versions);
            Assert.True(version.Served && version.Storage, $"{crd.Metadata.Name} {version.Name} is not served and stored");
            Assert.True(version.Schema.OpenAPIV3Schema.XKubernetesPreserveUnknownFields, $"{crd.Metadata.Name}: the schema drops unknown fields");
            if (custom.Any(a => a.Group == group && a.Resource == $"{plural}/status"))
                Assert.NotNull(version.Subresources?.Status);
            // The API server refuses a CRD of a *.k8s.io group that does not name its API review.
            if (group.EndsWith(".k8s.io", StringComparison.Ordinal))
                Assert.True(crd.Metadata.Annotations.ContainsKey("api-approved.kubernetes.io"), $"{crd.Metadata.Name} lacks api-approved.kubernetes.io");
        }
        Assert.Equal(("v2", "Namespaced"), (crds[("cilium.io", "ciliumnetworkpolicies")].Spec.Versions[0].Name, crds[("cilium.io", "ciliumnetworkpolicies")].Spec.Scope));
        Assert.Equal(("v2", "Cluster"), (crds[("cilium.io", "ciliumclusterwidenetworkpolicies")].Spec.Versions[0].Name, crds[("cilium.io", "ciliumclusterwidenetworkpolicies")].Spec.Scope));
        var cnp = crds[("policy.networking.k8s.io", "clusternetworkpolicies")];
        Assert.Equal(("v1alpha2", "Cluster", "ClusterNetworkPolicy"), (cnp.Spec.Versions[0].Name, cnp.Spec.Scope, cnp.Spec.Names.Kind));
    }

    [Fact]
    public void The_agents_role_only_reads_nodes_and_only_install_cni_holds_its_token()
    {
        Assert.Equal([("", "nodes", "get")], DeployedObjects.Grants(Plain.Single<V1ClusterRole>("mesh-agent")));
        var binding = Plain.Single<V1ClusterRoleBinding>("mesh-agent");
        Assert.Equal(("ClusterRole", "mesh-agent"), (binding.RoleRef.Kind, binding.RoleRef.Name));
        Assert.Equal(("ServiceAccount", "mesh-agent"), (Assert.Single(binding.Subjects).Kind, binding.Subjects[0].Name));

        var pod = Plain.Single<V1DaemonSet>("mesh-agent").Spec.Template.Spec;
        Assert.Equal("mesh-agent", pod.ServiceAccountName);
        Assert.False(pod.AutomountServiceAccountToken);
        var tokenVolume = Assert.Single(pod.Volumes, v => v.Projected?.Sources.Any(s => s.ServiceAccountToken is not null) == true).Name;
        var holders = pod.InitContainers.Concat(pod.Containers).Where(c => c.VolumeMounts.Any(m => m.Name == tokenVolume)).Select(c => c.Name);
        Assert.Equal(["install-cni"], holders);
    }

    [Fact]
    public void The_agent_runs_privileged_on_the_host_network_with_bpffs_and_the_cni_directories()
    {
        var pod = Plain.Single<V1DaemonSet>("mesh-agent").Spec.Template.Spec;
        Assert.True(pod.HostNetwork);
        Assert.Equal("ClusterFirstWithHostNet", pod.DnsPolicy);
        var agent = Assert.Single(pod.Containers);
        Assert.True(agent.SecurityContext.Privileged);

        string HostPathOf(V1Container c, string mountPath) =>
            pod.Volumes.Single(v => v.Name == Assert.Single(c.VolumeMounts, m => m.MountPath == mountPath).Name).HostPath.Path;
        Assert.Equal("/sys/fs/bpf", HostPathOf(agent, "/sys/fs/bpf"));
        Assert.Equal("/var/run/mesh", HostPathOf(agent, "/var/run/mesh"));
        Assert.Equal("/var/run/mesh/cni.sock", ArgumentAfter(agent, "--cni-socket"));

        var install = pod.InitContainers.Single(c => c.Name == "install-cni");
        Assert.Equal("/opt/cni/bin", HostPathOf(install, EnvOf(install, "HOST_CNI_BIN_DIR")));
        Assert.Equal("/etc/cni/net.d", HostPathOf(install, EnvOf(install, "HOST_CNI_CONF_DIR")));
        var mount = pod.InitContainers.Single(c => c.Name == "mount-bpffs");
        Assert.True(mount.SecurityContext.Privileged);
        Assert.Equal("Bidirectional", Assert.Single(mount.VolumeMounts).MountPropagation);
        Assert.Equal("/sys/fs/bpf", HostPathOf(mount, "/sys/fs/bpf"));
    }

    [Fact]
    public void The_control_plane_runs_three_replicas_with_its_secrets_and_https_probes()
    {
        var deployment = Plain.Single<V1Deployment>("mesh-controlplane");
        Assert.Equal(3, deployment.Spec.Replicas);
        var pod = deployment.Spec.Template.Spec;
        var cp = Assert.Single(pod.Containers);

        var pg = Assert.Single(cp.Env, e => e.Name == "MESH_PG").ValueFrom.SecretKeyRef;
        Assert.Equal(("mesh-postgres", "connectionString"), (pg.Name, pg.Key));
        Assert.DoesNotContain(cp.Args, a => a.StartsWith("--pg", StringComparison.Ordinal));

        string SecretOf(string file)
        {
            var mount = Assert.Single(cp.VolumeMounts, m => file.StartsWith(m.MountPath + "/", StringComparison.Ordinal));
            return pod.Volumes.Single(v => v.Name == mount.Name).Secret.SecretName;
        }
        Assert.Equal("mesh-tokens", SecretOf(FlagValue(cp, "--token-file")));
        Assert.Equal("mesh-controlplane-tls", SecretOf(FlagValue(cp, "--tls-cert-file")));
        Assert.Equal("mesh-controlplane-tls", SecretOf(FlagValue(cp, "--tls-private-key-file")));
        Assert.Contains("--kubernetes", cp.Args);

        Assert.Equal(("/readyz", "HTTPS", "api"), (cp.ReadinessProbe.HttpGet.Path, cp.ReadinessProbe.HttpGet.Scheme, cp.ReadinessProbe.HttpGet.Port.Value));
        Assert.Equal(("/healthz", "HTTPS", "api"), (cp.LivenessProbe.HttpGet.Path, cp.LivenessProbe.HttpGet.Scheme, cp.LivenessProbe.HttpGet.Port.Value));

        // Replicas find each other through PostgreSQL at the address they advertise: their pod IP, not the listen address.
        Assert.Equal("$(POD_IP)", FlagValue(cp, "--advertise"));
        Assert.Equal("status.podIP", Assert.Single(cp.Env, e => e.Name == "POD_IP").ValueFrom.FieldRef.FieldPath);

        var service = Plain.Single<V1Service>("mesh-controlplane");
        Assert.Equal(["api", "grpc"], service.Spec.Ports.Select(p => p.TargetPort.Value));
        Assert.Equal(deployment.Spec.Selector.MatchLabels, service.Spec.Selector);
        Assert.Equal($"https://mesh-controlplane.{ChartRenderer.Namespace}:7081",
            ArgumentAfter(Assert.Single(Plain.Single<V1DaemonSet>("mesh-agent").Spec.Template.Spec.Containers), "--control-plane"));
    }

    [Fact]
    public async Task Every_flag_the_manifests_pass_is_one_the_binary_lists_in_its_help()
    {
        foreach (var (container, binary) in new[]
                 {
                     (Assert.Single(Plain.Single<V1Deployment>("mesh-controlplane").Spec.Template.Spec.Containers), RepoPaths.Binary("ControlPlane", "mesh-controlplane.dll")),
                     (Assert.Single(Plain.Single<V1DaemonSet>("mesh-agent").Spec.Template.Spec.Containers), RepoPaths.Binary("NodeAgent", "mesh-agent.dll")),
                 })
        {
            var help = await ChartRenderer.RunAsync("dotnet", [binary, "--help"]);
            var known = System.Text.RegularExpressions.Regex.Matches(help.Output, @"--[a-z][a-z0-9-]*").Select(m => m.Value).ToHashSet();
            Assert.True(known.Count > 5, $"{Path.GetFileName(binary)} --help listed no flags: {help.Output}");
            var used = container.Args.Where(a => a.StartsWith("--", StringComparison.Ordinal)).Select(a => a.Split('=')[0]).ToArray();
            Assert.NotEmpty(used);
            Assert.All(used, flag => Assert.True(known.Contains(flag),
                $"{container.Name} is given {flag}, which {Path.GetFileName(binary)} --help does not list"));
        }
    }

    private static string FlagValue(V1Container c, string flag) =>
        Assert.Single(c.Args, a => a.StartsWith(flag + "=", StringComparison.Ordinal))[(flag.Length + 1)..];

    private static string ArgumentAfter(V1Container c, string flag) => c.Args[c.Args.IndexOf(flag) + 1];

    private static string EnvOf(V1Container c, string name) => Assert.Single(c.Env, e => e.Name == name).Value;
}
