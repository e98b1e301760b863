using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using k8s;
using k8s.Autorest;
using k8s.Models;
using Mesh.ControlPlane.Nodes;
using Mesh.Contracts.Api;
using Mesh.Contracts.Policies;

namespace Mesh.ControlPlane.Kubernetes;

/// <summary>A condition as Kubernetes writes them (metav1.Condition), without its transition time.</summary>
public sealed record PolicyCondition(string Type, string Status, string Reason, string Message, long ObservedGeneration);

/// <summary>
/// Tells each policy object what Mesh made of it, as two conditions: <c>Valid</c> (accepted, with the Mesh version that
/// holds it, or the field errors) and <c>Enforced</c> (that version is enforced on how many of the nodes). CRDs get them
/// in <c>status.conditions</c> (the status subresource); a NetworkPolicy, which has no status in the Kubernetes API, gets
/// an Event for each change of a condition, as <c>kubectl describe</c> shows them. Written when a verdict changes and
/// every status interval as nodes catch up; a condition that has not changed is not written again, and keeps its
/// transition time.
/// </summary>
public sealed class PolicyStatusWriter(IKubernetes client, NodeService nodes, KubernetesOptions options,
    TimeProvider clock, ILogger<PolicyStatusWriter> log)
{
    public const string ValidCondition = "Valid", EnforcedCondition = "Enforced";
    private const string Component = "mesh-controlplane";

    /// <summary>What the controller made of an object's generation: the version applied, or why not (and the version still enforced).</summary>
    private sealed record Outcome(long Generation, long? Version, string? Error, long? StillEnforced);

    private sealed record Verdict(V1ObjectMeta Meta, Outcome Outcome);

    private sealed record Written(IReadOnlyList<PolicyCondition> Conditions, IReadOnlyDictionary<string, DateTimeOffset> Since);

    private readonly ConcurrentDictionary<Work.Policy, Verdict> _verdicts = new();
    private readonly ConcurrentDictionary<Work.Policy, Written> _written = new();
    private readonly SemaphoreSlim _wake = new(0);

    /// <param name="existing">the conditions the object carries now (a previous term wrote them), so an unchanged one is not written again</param>
    public void Accepted(Work.Policy work, V1ObjectMeta meta, long version, JsonNode? existing) =>
        Record(work, new(meta, new(meta.Generation ?? 0, version, null, null)), existing);

    public void Refused(Work.Policy work, V1ObjectMeta meta, string error, long? stillEnforced, JsonNode? existing) =>
        Record(work, new(meta, new(meta.Generation ?? 0, null, error, stillEnforced)), existing);

    public void Forget(Work.Policy work)
    {
        _verdicts.TryRemove(work, out _);
        _written.TryRemove(work, out _);
    }

    private void Record(Work.Policy work, Verdict verdict, JsonNode? existing)
    {
        if (existing is not null && !_written.ContainsKey(work) && Parse(existing) is { } carried) _written.TryAdd(work, carried);
        var known = _verdicts.GetValueOrDefault(work);
        _verdicts[work] = verdict;
        if (known?.Outcome == verdict.Outcome) return;
        if (_wake.CurrentCount == 0) _wake.Release();
    }

    public async Task RunAsync(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            // Listed once per round, and only when there is a status to write: a cluster may have no policies from Kubernetes.
            IReadOnlyList<NodeView>? cluster = null;
            foreach (var (work, verdict) in _verdicts)
            {
                try { await WriteAsync(work, verdict, ConditionsOf(verdict, cluster ??= nodes.List()), ct); }
                catch (OperationCanceledException) when (ct.IsCancellationRequested) { return; }
                catch (HttpOperationException e) when (e.Response.StatusCode == System.Net.HttpStatusCode.NotFound)
                {
                    _written.TryRemove(work, out _);   // deleted meanwhile: its watch event forgets it
                }
                catch (Exception e) when (e is HttpOperationException or HttpRequestException or KubernetesException)
                {
                    log.LogWarning("kubernetes: writing the status of {Kind} {Name} failed ({Error}); trying again in {Interval} s",
                        work.Kind, Name(work), e.Message, options.StatusInterval.TotalSeconds);
                }
            }
            try { await _wake.WaitAsync(options.StatusInterval, ct); }
            catch (OperationCanceledException) { return; }
        }
    }

    /// <summary>The two conditions of a verdict, as the nodes <c>meshctl node list</c> shows stand now.</summary>
    private static List<PolicyCondition> ConditionsOf(Verdict verdict, IReadOnlyList<NodeView> cluster)
    {
        var (generation, applied, error, stillEnforced) = verdict.Outcome;
        var valid = error is null
            ? new PolicyCondition(ValidCondition, "True", "Accepted", $"applied as Mesh version {applied}", generation)
            : new PolicyCondition(ValidCondition, "False", "Invalid", error, generation);
        if ((applied ?? stillEnforced) is not { } version)
            return [valid, new(EnforcedCondition, "False", "Invalid", "not enforced: Mesh holds no valid version of this policy", generation)];
        var total = cluster.Count;
        var enforcing = cluster.Count(n => n.AckedVersion >= version);
        var which = error is null ? $"version {version}" : $"the last valid version, {version},";
        var enforced = total > 0 && enforcing == total;
        return [valid, new(EnforcedCondition, enforced ? "True" : "False", enforced ? "Enforced" : total == 0 ? "NoNodes" : "Pending",
            $"{which} is enforced on {enforcing} of {total} node{(total == 1 ? "" : "s")}", generation)];
    }

    private async Task WriteAsync(Work.Policy work, Verdict verdict, IReadOnlyList<PolicyCondition> conditions, CancellationToken ct)
    {
        var before = _written.GetValueOrDefault(work);
        if (before is not null && before.Conditions.SequenceEqual(conditions)) return;
        var now = clock.GetUtcNow();
        var since = conditions.ToDictionary(c => c.Type,
            c => before?.Conditions.FirstOrDefault(b => b.Type == c.Type)?.Status == c.Status && before.Since.TryGetValue(c.Type, out var t) ? t : now);

        if (work.Kind == PolicyKind.KubernetesNetworkPolicy)
            foreach (var condition in conditions.Where(c => before?.Conditions.Contains(c) != true))
                await RecordEventAsync(verdict.Meta, condition, now, ct);
        else
            await PatchStatusAsync(work, conditions, since, ct);
        _written[work] = new(conditions, since);
    }

    private async Task PatchStatusAsync(Work.Policy work, IReadOnlyList<PolicyCondition> conditions, IReadOnlyDictionary<string, DateTimeOffset> since, CancellationToken ct)
    {
        var body = new JsonObject
        {
            ["status"] = new JsonObject
            {
                ["conditions"] = new JsonArray([.. conditions.Select(c => (JsonNode)new JsonObject
                {
                    ["type"] = c.Type, ["status"] = c.Status, ["reason"] = c.Reason, ["message"] = c.Message,
                    ["observedGeneration"] = c.ObservedGeneration,
                    ["lastTransitionTime"] = since[c.Type].UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture),
                })]),
            },
        };
        var patch = new V1Patch(body.ToJsonString(), V1Patch.PatchType.MergePatch);
        var resource = work.Kind switch
        {
            PolicyKind.CiliumNetworkPolicy => CustomResource.CiliumNetworkPolicy,
            PolicyKind.CiliumClusterwideNetworkPolicy => CustomResource.CiliumClusterwideNetworkPolicy,
            _ => CustomResource.ClusterNetworkPolicy,
        };
        if (resource.Namespaced)
            await client.CustomObjects.PatchNamespacedCustomObjectStatusAsync(patch, resource.Group, resource.Version, work.Namespace, resource.Plural, work.Name, cancellationToken: ct);
        else
            await client.CustomObjects.PatchClusterCustomObjectStatusAsync(patch, resource.Group, resource.Version, resource.Plural, work.Name, cancellationToken: ct);
    }

    /// <summary>
    /// One Event per condition a NetworkPolicy reaches, named after the object and the condition, so a new term that
    /// reaches the same condition again finds it recorded (409) instead of recording it twice.
    /// </summary>
    private async Task RecordEventAsync(V1ObjectMeta meta, PolicyCondition condition, DateTimeOffset now, CancellationToken ct)
    {
        var digest = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"{meta.Uid}\n{condition}")))[..16];
        var name = meta.Name.Length > 200 ? meta.Name[..200] : meta.Name;
        var @event = new Corev1Event
        {
            Metadata = new V1ObjectMeta { Name = $"{name}.{digest}", NamespaceProperty = meta.NamespaceProperty },
            InvolvedObject = new V1ObjectReference
            {
                ApiVersion = PolicyParser.KubernetesApiVersion, Kind = PolicyParser.KubernetesKind,
                Name = meta.Name, NamespaceProperty = meta.NamespaceProperty, Uid = meta.Uid, ResourceVersion = meta.ResourceVersion,
            },
            Reason = condition.Reason,
            Message = $"{condition.Type}: {condition.Message}",
            Type = condition.Status == "True" ? "Normal" : "Warning",
            Source = new V1EventSource { Component = Component },
            ReportingComponent = Component,
            FirstTimestamp = now.UtcDateTime,
            LastTimestamp = now.UtcDateTime,
            Count = 1,
        };
        try { await client.CoreV1.CreateNamespacedEventAsync(@event, meta.NamespaceProperty, cancellationToken: ct); }
        catch (HttpOperationException e) when (e.Response.StatusCode == System.Net.HttpStatusCode.Conflict) { }
    }

    /// <summary>The Valid and Enforced conditions an object carries, as a previous term wrote them; null when it carries none.</summary>
    private static Written? Parse(JsonNode status)
    {
        if (status["conditions"] is not JsonArray array) return null;
        var conditions = new List<PolicyCondition>();
        var since = new Dictionary<string, DateTimeOffset>();
        foreach (var c in array.OfType<JsonObject>())
        {
            var type = (string?)c["type"];
            if (type is not (ValidCondition or EnforcedCondition)) continue;
            conditions.Add(new(type, (string?)c["status"] ?? "", (string?)c["reason"] ?? "", (string?)c["message"] ?? "", (long?)c["observedGeneration"] ?? 0));
            if (DateTimeOffset.TryParse((string?)c["lastTransitionTime"], CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var t)) since[type] = t;
        }
        return conditions.Count > 0 ? new(conditions, since) : null;
    }

    private static string Name(Work.Policy work) => work.Namespace.Length == 0 ? work.Name : $"{work.Namespace}/{work.Name}";
}
