using System.Text.Json;
using System.Text.Json.Nodes;
using k8s;
using k8s.Models;
using Mesh.Contracts.Netns;
using Mesh.Contracts.Policies;
using Mesh.ControlPlane.Kubernetes;

namespace Mesh.ControlPlane.Tests.Kubernetes;

/// <summary>What pods and policy objects, as the API server serves them, mean to Mesh.</summary>
public sealed class KubernetesObjectsTests
{
    private static V1Namespace Namespace(string name, Dictionary<string, string>? labels = null) =>
        new() { Metadata = new() { Name = name, Labels = labels } };

    private static V1Pod Pod(Action<V1Pod>? change = null)
    {
        var pod = KubernetesJson.Deserialize<V1Pod>("""
            {"apiVersion":"v1","kind":"Pod",
             "metadata":{"name":"web-1","namespace":"shop","labels":{"app":"web"}},
             "spec":{"nodeName":"node-1","containers":[
                {"name":"web","image":"web","ports":[{"name":"http","containerPort":8080},{"containerPort":9999}]},
                {"name":"side","image":"side","ports":[{"name":"dns","containerPort":53,"protocol":"UDP"}]}]},
             "status":{"phase":"Running","podIP":"10.244.1.7","podIPs":[{"ip":"10.244.1.7"},{"ip":"fd00::7"}]}}
            """);
        change?.Invoke(pod);
        return pod;
    }

    [Fact]
    public void A_running_pod_is_an_endpoint_on_its_node_with_its_labels_its_namespaces_labels_and_its_named_ports()
    {
        var endpoint = KubernetesObjects.EndpointOf(Pod(), Namespace("shop", new() { ["team"] = "payments" }))!;

        Assert.Equal(("shop", "web-1", "node-1", "10.244.1.7"), (endpoint.Namespace, endpoint.Name, endpoint.Node, endpoint.Ip));
        Assert.Equal(PodInterface.HostName("shop", "web-1"), endpoint.Interface);
        Assert.Equal(new Dictionary<string, string> { ["app"] = "web" }, endpoint.Labels);
        Assert.Equal(new Dictionary<string, string> { ["team"] = "payments" }, endpoint.NamespaceLabels);
        Assert.Equal([("dns", 53, "UDP"), ("http", 8080, "TCP")], endpoint.Ports!.Select(p => (p.Name, p.Port, p.Protocol)));
    }

    [Fact]
    public void A_pod_is_no_endpoint_on_the_hosts_network_before_it_is_scheduled_or_has_an_IPv4_address_or_after_it_finished()
    {
        var ns = Namespace("shop");
        Assert.Null(KubernetesObjects.EndpointOf(Pod(p => p.Spec.HostNetwork = true), ns));
        Assert.Null(KubernetesObjects.EndpointOf(Pod(p => p.Spec.NodeName = null), ns));
        Assert.Null(KubernetesObjects.EndpointOf(Pod(p => p.Status = new V1PodStatus { Phase = "Pending" }), ns));
        Assert.Null(KubernetesObjects.EndpointOf(Pod(p => p.Status = new V1PodStatus { PodIP = "fd00::7", PodIPs = [new() { Ip = "fd00::7" }] }), ns));
        Assert.Null(KubernetesObjects.EndpointOf(Pod(p => p.Status.Phase = "Succeeded"), ns));
        Assert.Null(KubernetesObjects.EndpointOf(Pod(p => p.Status.Phase = "Failed"), ns));
        Assert.NotNull(KubernetesObjects.EndpointOf(Pod(p => p.Status.PodIPs = null), ns));
    }

    [Fact]
    public void A_policy_object_becomes_a_document_the_parser_takes_without_what_only_the_API_server_keeps()
    {
        var cnp = KubernetesJson.Deserialize<CustomObject>("""
            {"apiVersion":"cilium.io/v2","kind":"CiliumNetworkPolicy",
             "metadata":{"name":"allow-web","namespace":"shop","uid":"u-1","resourceVersion":"42","generation":3,
               "annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{}","policy.mesh.io/mode":"audit"},
               "managedFields":[{"manager":"kubectl","operation":"Update"}]},
             "spec":{"endpointSelector":{"matchLabels":{"app":"web"}},"ingress":[{"fromEndpoints":[{"matchLabels":{"app":"client"}}]}]},
             "status":{"conditions":[{"type":"Valid","status":"True"}]}}
            """);
        var document = JsonNode.Parse(KubernetesObjects.DocumentOf(cnp, CustomResource.CiliumNetworkPolicy))!.AsObject();

        Assert.Equal(["apiVersion", "kind", "metadata", "spec"], document.Select(f => f.Key).Order());
        Assert.Equal("""{"name":"allow-web","namespace":"shop","annotations":{"policy.mesh.io/mode":"audit"}}""", document["metadata"]!.ToJsonString());
        var parsed = PolicyParser.Parse(document.ToJsonString(), "shop");
        Assert.True(parsed.Ok, string.Join("; ", parsed.Errors));
        Assert.Equal(("shop", "allow-web", PolicyKind.CiliumNetworkPolicy), (parsed.Policy.Namespace, parsed.Policy.Name, parsed.Policy.Kind));
        Assert.Equal(PolicyMode.Audit, parsed.Policy.Mode);
    }

    [Fact]
    public void A_NetworkPolicy_becomes_a_document_of_its_kind()
    {
        var np = KubernetesJson.Deserialize<V1NetworkPolicy>("""
            {"metadata":{"name":"deny-all","namespace":"shop","uid":"u-2"},"spec":{"podSelector":{},"policyTypes":["Ingress"]}}
            """);
        var parsed = PolicyParser.Parse(KubernetesObjects.DocumentOf(np), "shop");
        Assert.True(parsed.Ok, string.Join("; ", parsed.Errors));
        Assert.Equal(PolicyKind.KubernetesNetworkPolicy, parsed.Policy.Kind);
    }

    [Fact]
    public void The_principal_names_the_manager_that_last_wrote_the_object_not_a_status_writer()
    {
        var meta = new V1ObjectMeta
        {
            ManagedFields =
            [
                new() { Manager = "kubectl-client-side-apply", Operation = "Update", Time = new DateTime(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc) },
                new() { Manager = "argocd-controller", Operation = "Apply", Time = new DateTime(2026, 1, 2, 0, 0, 0, DateTimeKind.Utc) },
                new() { Manager = "mesh-controlplane", Operation = "Update", Subresource = "status", Time = new DateTime(2026, 1, 3, 0, 0, 0, DateTimeKind.Utc) },
            ],
        };
        Assert.Equal("kubernetes:argocd-controller", KubernetesObjects.PrincipalOf(meta));
        Assert.Equal("kubernetes:unknown", KubernetesObjects.PrincipalOf(new V1ObjectMeta()));
        Assert.Equal("kubernetes:evil", KubernetesObjects.PrincipalOf(new V1ObjectMeta { ManagedFields = [new() { Manager = "ev\nil " }] }));
    }
}
