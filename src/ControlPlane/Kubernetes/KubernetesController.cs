using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using k8s;
using k8s.Models;
using Mesh.ControlPlane.Cluster;
using Mesh.ControlPlane.Endpoints;
using Mesh.ControlPlane.Policies;
using Mesh.ControlPlane.State;
using Mesh.Contracts.Api;
using Mesh.Contracts.Policies;

namespace Mesh.ControlPlane.Kubernetes;

/// <summary>What the controller reconciles: a pod's endpoint, or a policy object's policy.</summary>
public abstract record Work
{
    /// <summary>The endpoint of pod <paramref name="Key"/> ("namespace/name").</summary>
    public sealed record Pod(string Key) : Work;

    /// <summary>The policy of a policy object; <paramref name="Namespace"/> is "" for cluster-wide kinds.</summary>
    public sealed record Policy(PolicyKind Kind, string Namespace, string Name) : Work;

    private Work() { }
}

/// <summary>
/// One term of the Kubernetes controller on the replica that holds its lease: follows the API server's namespaces,
/// pods, nodes and policy objects (<see cref="Informer{T}"/>), and brings Mesh's endpoints and policies to match them,
/// level-triggered: each changed key is reconciled from the caches and Mesh's view as they are then, so a relist, a
/// repeated event or a restarted term adds nothing to the log when nothing differs. Mesh objects Kubernetes no longer
/// has are removed only when they are Kubernetes' to remove: endpoints on a node Kubernetes knows, policies the
/// controller applied. Each event names its Kubernetes source as its principal (<see cref="KubernetesObjects.PrincipalOf"/>).
/// </summary>
public sealed class KubernetesController
{
    private const int Workers = 4;
    private static readonly TimeSpan ConflictRetry = TimeSpan.FromSeconds(2);

    private readonly EndpointService _endpoints;
    private readonly PolicyService _policies;
    private readonly ClusterState _state;
    private readonly CommandGateway _commands;
    private readonly PolicyStatusWriter _status;
    private readonly ILogger _log;
    private readonly Informer<V1Namespace> _namespaces;
    private readonly Informer<V1Pod> _pods;
    private readonly Informer<V1Node> _nodes;
    private readonly Informer<V1NetworkPolicy> _networkPolicies;
    private readonly Dictionary<PolicyKind, (CustomResource Resource, Informer<CustomObject> Informer)> _custom;
    private readonly WorkQueue<Work> _queue = new();
    // Who last wrote each object this term has seen: the principal of the events its deletion causes (a deleted object
    // is no longer in the cache), and the proof that the object was Kubernetes' to begin with.
    private readonly ConcurrentDictionary<Work, string> _principals = new();

    public KubernetesController(IKubernetes client, EndpointService endpoints, PolicyService policies, ClusterState state,
        CommandGateway commands, PolicyStatusWriter status, ILogger<KubernetesController> log)
    {
        (_endpoints, _policies, _state, _commands, _status, _log) = (endpoints, policies, state, commands, status, log);
        _namespaces = new(KubernetesSources.Namespaces(client), log);
        _pods = new(KubernetesSources.Pods(client), log);
        _nodes = new(KubernetesSources.Nodes(client), log);
        _networkPolicies = new(KubernetesSources.NetworkPolicies(client), log);
        _custom = new()
        {
            [PolicyKind.CiliumNetworkPolicy] = (CustomResource.CiliumNetworkPolicy, new(KubernetesSources.Custom(client, CustomResource.CiliumNetworkPolicy), log)),
            [PolicyKind.CiliumClusterwideNetworkPolicy] = (CustomResource.CiliumClusterwideNetworkPolicy, new(KubernetesSources.Custom(client, CustomResource.CiliumClusterwideNetworkPolicy), log)),
            [PolicyKind.ClusterNetworkPolicy] = (CustomResource.ClusterNetworkPolicy, new(KubernetesSources.Custom(client, CustomResource.ClusterNetworkPolicy), log)),
        };
    }

    /// <summary>Runs the term until <paramref name="ct"/> ends (the lease was lost or the replica stops).</summary>
    public async Task RunAsync(CancellationToken ct)
    {
        var following = new List<Task>
        {
            _namespaces.RunAsync((key, ns) => NamespaceChanged(key), ct),
            _pods.RunAsync((key, pod) => Changed(new Work.Pod(key), pod?.Metadata), ct),
            _nodes.RunAsync((_, _) => { }, ct),
            _networkPolicies.RunAsync((key, p) => Changed(PolicyWork(PolicyKind.KubernetesNetworkPolicy, key), p?.Metadata), ct),
        };
        following.AddRange(_custom.Select(c => c.Value.Informer.RunAsync((key, p) => Changed(PolicyWork(c.Key, key), p?.Metadata), ct)));

        // Nothing is reconciled from half a picture: a pod before its namespace's labels are known would get another identity.
        await Task.WhenAll(new Task[] { _namespaces.Synced, _pods.Synced, _nodes.Synced, _networkPolicies.Synced }
            .Concat(_custom.Values.Select(c => c.Informer.Synced))).WaitAsync(ct);
        _log.LogInformation("kubernetes: {Namespaces} namespaces, {Pods} pods, {Nodes} nodes, {Policies} policy objects listed; reconciling",
            _namespaces.Items.Count, _pods.Items.Count, _nodes.Items.Count, _networkPolicies.Items.Count + _custom.Values.Sum(c => c.Informer.Items.Count));
        QueueWhatKubernetesNoLongerHas();

        following.AddRange(Enumerable.Range(0, Workers).Select(_ => WorkAsync(ct)));
        following.Add(_status.RunAsync(ct));
        await Task.WhenAll(following);
    }

    private void Changed(Work work, V1ObjectMeta? meta)
    {
        if (meta is not null) _principals[work] = KubernetesObjects.PrincipalOf(meta);
        _queue.Add(work);
    }

    /// <summary>A namespace's labels are part of each of its pods' identity.</summary>
    private void NamespaceChanged(string ns)
    {
        foreach (var key in _pods.Items.Keys.Where(k => k.StartsWith(ns + "/", StringComparison.Ordinal))) _queue.Add(new Work.Pod(key));
    }

    private static Work.Policy PolicyWork(PolicyKind kind, string key) =>
        key.Split('/') is [var ns, var name] ? new(kind, ns, name) : new(kind, PolicyService.Clusterwide, key);

    /// <summary>Mesh objects that may be Kubernetes' and that it does not have (deleted while no controller ran).</summary>
    private void QueueWhatKubernetesNoLongerHas()
    {
        var view = _state.Current;
        foreach (var e in view.Endpoints.Values.Where(e => _nodes.Items.ContainsKey(e.Spec.Node)))
            _queue.Add(new Work.Pod(e.Id));
        foreach (var p in view.Policies.Values.Where(p => p.AppliedBy.StartsWith(KubernetesObjects.PrincipalPrefix, StringComparison.Ordinal)))
            _queue.Add(new Work.Policy(p.Policy.Kind, p.Policy.Namespace ?? PolicyService.Clusterwide, p.Policy.Name));
    }

    private async Task WorkAsync(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            Work work;
            try { work = await _queue.TakeAsync(ct); }
            catch (OperationCanceledException) { return; }
            try
            {
                var retry = work switch
                {
                    Work.Pod pod => await ReconcilePodAsync(pod, ct),
                    Work.Policy policy => await ReconcilePolicyAsync(policy, ct),
                    _ => null,
                };
                if (retry is { } delay) _queue.AddAfter(work, delay, ct);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested) { return; }
            catch (Exception e)
            {
                _log.LogWarning(e, "kubernetes: reconciling {Work} failed; trying again", work);
                _queue.AddAfter(work, ConflictRetry, ct);
            }
            finally { _queue.Done(work); }
        }
    }

    /// <summary>Brings the pod's endpoint to what the pod is now; a delay when it must be tried again later.</summary>
    private async Task<TimeSpan?> ReconcilePodAsync(Work.Pod work, CancellationToken ct)
    {
        var ns = work.Key[..work.Key.IndexOf('/')];
        var pod = _pods.Items.GetValueOrDefault(work.Key);
        var desired = pod is not null && _namespaces.Items.TryGetValue(ns, out var namespaceObject) ? KubernetesObjects.EndpointOf(pod, namespaceObject) : null;
        var current = _state.Current.Endpoints.GetValueOrDefault(work.Key);
        var context = _commands.ContextOf(_principals.GetValueOrDefault(work) ?? KubernetesObjects.PrincipalPrefix + "unknown");

        if (desired is null)
        {
            // A pod that is gone, or no longer networked, loses its endpoint. An endpoint of a pod this term never saw is
            // Kubernetes' to remove only on a node Kubernetes knows: elsewhere another integration registered it.
            if (current is null || (pod is null && !_principals.ContainsKey(work) && !_nodes.Items.ContainsKey(current.Spec.Node))) return null;
            await _endpoints.DeleteAsync(current.Spec.Namespace, current.Spec.Name, context, ct);
            _principals.TryRemove(work, out _);
            return null;
        }
        if (current is not null && EndpointService.SpecOf(desired) is { } spec && current.Spec.SameAs(spec)) return null;

        switch (await _endpoints.RegisterAsync(desired, context, ct))
        {
            case EndpointRegisterResult.Invalid invalid:
                _log.LogWarning("kubernetes: pod {Pod} cannot be an endpoint: {Errors}", work.Key, Describe(invalid.Errors.Errors));
                return null;
            case EndpointRegisterResult.Conflict conflict:
                _log.LogInformation("kubernetes: pod {Pod} waits: {Errors}", work.Key, Describe(conflict.Errors.Errors));
                return ConflictRetry;
            case EndpointRegisterResult.TooManyNewIdentities limited:
                _log.LogInformation("kubernetes: pod {Pod} waits: {Refusal}", work.Key, limited.Refusal);
                return limited.Refusal.RetryAfter;
            default:
                return null;
        }
    }

    /// <summary>Brings the policy to what the object says now, and tells the status writer how that went.</summary>
    private async Task<TimeSpan?> ReconcilePolicyAsync(Work.Policy work, CancellationToken ct)
    {
        var found = Find(work);
        var current = _state.Current.Policies.GetValueOrDefault(ClusterView.PolicyKey(work.Kind, work.Namespace, work.Name));
        var context = _commands.ContextOf(_principals.GetValueOrDefault(work) ?? KubernetesObjects.PrincipalPrefix + "unknown");
        if (found is not { } source)
        {
            _status.Forget(work);
            _principals.TryRemove(work, out _);
            if (current is not null && current.AppliedBy.StartsWith(KubernetesObjects.PrincipalPrefix, StringComparison.Ordinal))
                await _policies.DeleteAsync(work.Kind, work.Namespace, work.Name, context, ct);
            return null;
        }

        var ns = PolicyKinds.IsClusterwide(work.Kind) ? null : work.Namespace;
        var (policy, refused) = PolicyService.Place(ns, work.Name, source.Document);
        if (policy is not null && current is not null && current.Hash == PolicyJson.Hash(policy))
        {
            _status.Accepted(work, source.Meta, current.Version.Value, source.Status);
            return null;
        }
        switch (refused ?? await _policies.ApplyAsync(policy!, context, ct))
        {
            case PolicyApplyResult.Applied applied:
                _status.Accepted(work, source.Meta, applied.Answer.Version, source.Status);
                break;
            case PolicyApplyResult.Invalid invalid:
                _status.Refused(work, source.Meta, Describe(invalid.Errors.Errors), current?.Version.Value, source.Status);
                break;
            case PolicyApplyResult.OverBudget overBudget:
                _status.Refused(work, source.Meta, overBudget.Title, current?.Version.Value, source.Status);
                break;
            case PolicyApplyResult.Misplaced misplaced:
                _status.Refused(work, source.Meta, $"the document is misplaced ({misplaced.What})", current?.Version.Value, source.Status);
                break;
        }
        return null;
    }

    /// <summary>
    /// The policy object behind <paramref name="work"/> as a document, with its metadata and the status it carries (a
    /// NetworkPolicy has none); null when Kubernetes has no such object.
    /// </summary>
    private (string Document, V1ObjectMeta Meta, JsonNode? Status)? Find(Work.Policy work)
    {
        var key = work.Namespace.Length == 0 ? work.Name : $"{work.Namespace}/{work.Name}";
        if (work.Kind == PolicyKind.KubernetesNetworkPolicy)
            return _networkPolicies.Items.TryGetValue(key, out var np) ? (KubernetesObjects.DocumentOf(np), np.Metadata, null) : null;
        var (resource, informer) = _custom[work.Kind];
        return informer.Items.TryGetValue(key, out var obj)
            ? (KubernetesObjects.DocumentOf(obj, resource), obj.Metadata, obj.Fields.TryGetValue("status", out var status) ? JsonNode.Parse(status.GetRawText()) : null)
            : null;
    }

    private static string Describe(IReadOnlyDictionary<string, string[]> errors) =>
        string.Join("; ", errors.Select(e => e.Key.Length == 0 ? string.Join(", ", e.Value) : $"{e.Key}: {string.Join(", ", e.Value)}"));
}
