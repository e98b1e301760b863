using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Mesh.Contracts.Policies;
using Mesh.Contracts.Security;

namespace Mesh.Contracts.Api;

/// <summary>Thrown when the control plane refuses a request; Problem holds its RFC 9457 body.</summary>
public sealed class MeshApiException(HttpStatusCode status, string message, JsonObject? problem)
    : Exception(message)
{
    public HttpStatusCode Status { get; } = status;
    public JsonObject? Problem { get; } = problem;
}

/// <summary>Thrown when nothing answers at the control plane's address.</summary>
public sealed class ControlPlaneUnreachableException(Uri address, Exception inner)
    : Exception($"cannot reach the control plane at {address}: {inner.Message}", inner)
{
    public Uri Address { get; } = address;
}

/// <summary>Typed client of the control plane's REST API, used by meshctl, the lab and the tests.</summary>
public sealed class MeshApiClient(HttpClient http)
{
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public Uri BaseAddress => http.BaseAddress ?? throw new InvalidOperationException("HttpClient.BaseAddress is not set");

    /// <summary>
    /// A client that sends <paramref name="token"/> as its bearer token: the control plane knows the caller by it alone.
    /// On https, it believes only a server certificate issued by <paramref name="caFile"/>'s CA, when one is given.
    /// </summary>
    public static MeshApiClient Create(Uri address, string? token, TimeSpan? timeout = null, string? caFile = null) =>
        new(new HttpClient(new BearerToken(() => token, new SocketsHttpHandler().TrustingCa(caFile))) { BaseAddress = address, Timeout = timeout ?? TimeSpan.FromSeconds(30) });

    /// <summary>Creates or replaces a policy; a null namespace addresses a cluster-wide policy.</summary>
    public Task<PolicyApplied> ApplyPolicyAsync(string? ns, string name, string document, CancellationToken ct = default) =>
        SendAsync<PolicyApplied>(HttpMethod.Put, PolicyPath(ns, name),
            new StringContent(document, Encoding.UTF8, LooksLikeJson(document) ? "application/json" : "application/yaml"), ct);

    /// <summary>
    /// One policy; a null namespace addresses a cluster-wide policy. <paramref name="kind"/> picks the policy of that
    /// kind: a namespaced one (CiliumNetworkPolicy or KubernetesNetworkPolicy; null: the control plane's default,
    /// CiliumNetworkPolicy), or a cluster-wide one (CiliumClusterwideNetworkPolicy, the default, or ClusterNetworkPolicy).
    /// </summary>
    public Task<PolicyView?> GetPolicyAsync(string? ns, string name, PolicyKind? kind = null, CancellationToken ct = default) =>
        SendOrNullAsync<PolicyView>(HttpMethod.Get, PolicyPath(ns, name, kind), ct);

    public Task<IReadOnlyList<PolicyView>> ListPoliciesAsync(CancellationToken ct = default) =>
        SendAsync<IReadOnlyList<PolicyView>>(HttpMethod.Get, "v1/policies", null, ct);

    /// <summary>Deletes one policy, addressed as <see cref="GetPolicyAsync"/> does; null when there is none.</summary>
    public Task<WriteResult?> DeletePolicyAsync(string? ns, string name, PolicyKind? kind = null, CancellationToken ct = default) =>
        SendOrNullAsync<WriteResult>(HttpMethod.Delete, PolicyPath(ns, name, kind), ct);

    /// <summary>
    /// A dry run of <see cref="ApplyPolicyAsync"/>: checked and authorized as the apply, answered with its impact on the
    /// traffic recorded in the last <paramref name="window"/> (e.g. "2h"; the control plane's default, 24h, when null). Stores nothing.
    /// </summary>
    public Task<PolicyImpact> PreviewApplyPolicyAsync(string? ns, string name, string document, string? window = null, CancellationToken ct = default) =>
        SendAsync<PolicyImpact>(HttpMethod.Put, DryRun(PolicyPath(ns, name), window),
            new StringContent(document, Encoding.UTF8, LooksLikeJson(document) ? "application/json" : "application/yaml"), ct);

    /// <summary>A dry run of <see cref="DeletePolicyAsync"/>: its impact; null when there is no such policy. Stores nothing.</summary>
    public Task<PolicyImpact?> PreviewDeletePolicyAsync(string? ns, string name, PolicyKind? kind = null, string? window = null, CancellationToken ct = default) =>
        SendOrNullAsync<PolicyImpact>(HttpMethod.Delete, DryRun(PolicyPath(ns, name, kind), window), ct);

    /// <summary>
    /// Enforces a policy applied in audit mode: the stored policy again, enforced (one change in the log; none when it
    /// is enforced already). Addressed as <see cref="GetPolicyAsync"/> does; null when there is no such policy.
    /// </summary>
    public Task<PolicyApplied?> PromotePolicyAsync(string? ns, string name, PolicyKind? kind = null, CancellationToken ct = default) =>
        SendOrNullAsync<PolicyApplied>(HttpMethod.Post, PolicyPath(ns, name, kind, "/promote"), ct);

    /// <summary>A dry run of <see cref="PromotePolicyAsync"/>: what enforcing it would newly drop or allow. Stores nothing.</summary>
    public Task<PolicyImpact?> PreviewPromotePolicyAsync(string? ns, string name, PolicyKind? kind = null, string? window = null, CancellationToken ct = default) =>
        SendOrNullAsync<PolicyImpact>(HttpMethod.Post, DryRun(PolicyPath(ns, name, kind, "/promote"), window), ct);

    /// <summary>Restores the policies (or one) as they were at a version or time, or with DryRun only plans it.</summary>
    public Task<RollbackResult> RollbackPoliciesAsync(RollbackRequest request, CancellationToken ct = default) =>
        SendAsync<RollbackResult>(HttpMethod.Post, "v1/policies/rollback", JsonContent.Create(request, options: Json), ct);

    private static string DryRun(string path, string? window) =>
        $"{path}{(path.Contains('?') ? '&' : '?')}dryRun=true{(window is null ? "" : $"&window={Esc(window)}")}";

    /// <param name="action">a sub-resource after the policy's path, e.g. <c>/promote</c></param>
    private static string PolicyPath(string? ns, string name, PolicyKind? kind = null, string action = "") =>
        (ns is null ? $"v1/clusterwide-policies/{Esc(name)}{action}" : $"v1/policies/{Esc(ns)}/{Esc(name)}{action}")
        + (kind is { } k ? $"?kind={Esc(PolicyKinds.DocumentKind(k))}" : "");

    public Task<EndpointRegistered> RegisterEndpointAsync(EndpointRegistration endpoint, CancellationToken ct = default) =>
        SendAsync<EndpointRegistered>(HttpMethod.Post, "v1/endpoints", JsonContent.Create(endpoint, options: Json), ct);

    public Task<IReadOnlyList<EndpointView>> ListEndpointsAsync(CancellationToken ct = default) =>
        SendAsync<IReadOnlyList<EndpointView>>(HttpMethod.Get, "v1/endpoints", null, ct);

    public Task<WriteResult?> DeleteEndpointAsync(string ns, string name, CancellationToken ct = default) =>
        SendOrNullAsync<WriteResult>(HttpMethod.Delete, $"v1/endpoints/{Esc(ns)}/{Esc(name)}", ct);

    public Task<IReadOnlyList<IdentityView>> ListIdentitiesAsync(CancellationToken ct = default) =>
        SendAsync<IReadOnlyList<IdentityView>>(HttpMethod.Get, "v1/identities", null, ct);

    /// <summary>Removes a node whose agent is gone; null when no node of that name is known.</summary>
    public Task<WriteResult?> DeleteNodeAsync(string node, CancellationToken ct = default) =>
        SendOrNullAsync<WriteResult>(HttpMethod.Delete, $"v1/nodes/{Esc(node)}", ct);

    /// <summary>The node takes no new endpoints and its endpoints are removed; null when no node of that name is known.</summary>
    public Task<NodeDrainView?> DrainNodeAsync(string node, CancellationToken ct = default) =>
        SendOrNullAsync<NodeDrainView>(HttpMethod.Post, $"v1/nodes/{Esc(node)}/drain", ct);

    /// <summary>The node takes new endpoints again; null when no node of that name is known.</summary>
    public Task<WriteResult?> UncordonNodeAsync(string node, CancellationToken ct = default) =>
        SendOrNullAsync<WriteResult>(HttpMethod.Post, $"v1/nodes/{Esc(node)}/uncordon", ct);

    public Task<IReadOnlyList<NodeView>> ListNodesAsync(CancellationToken ct = default) =>
        SendAsync<IReadOnlyList<NodeView>>(HttpMethod.Get, "v1/nodes", null, ct);

    /// <summary>
    /// What changed from <paramref name="from"/> to <paramref name="to"/> (each a log position or an RFC 3339 time;
    /// <paramref name="to"/> null: the head): the policy documents and the connections that became allowed or denied.
    /// </summary>
    public Task<PolicyDiffView> PolicyDiffAsync(string from, string? to, CancellationToken ct = default) =>
        SendAsync<PolicyDiffView>(HttpMethod.Get, $"v1/policies/diff?from={Esc(from)}{(to is null ? "" : "&to=" + Esc(to))}", null, ct);

    /// <summary>
    /// The snapshot <paramref name="node"/> enforced at <paramref name="at"/> (a log position or an RFC 3339 time),
    /// recomputed from the log; null when the node had acknowledged no version by then.
    /// </summary>
    public Task<NodeReplayView?> ReplayNodeAsync(string node, string at, bool show, CancellationToken ct = default) =>
        SendOrNullAsync<NodeReplayView>(HttpMethod.Get, $"v1/nodes/{Esc(node)}/replay?at={Esc(at)}{(show ? "&show=true" : "")}", ct);

    /// <summary>The versions <paramref name="node"/> enforced, oldest first; with <paramref name="at"/>, only the one it enforced then.</summary>
    public Task<NodeHistoryView> NodeHistoryAsync(string node, DateTimeOffset? since = null, DateTimeOffset? until = null, DateTimeOffset? at = null,
        CancellationToken ct = default)
    {
        var query = string.Join("&", new[] { ("since", since), ("until", until), ("at", at) }
            .Where(q => q.Item2 is not null).Select(q => $"{q.Item1}={Esc(q.Item2!.Value.ToString("O", System.Globalization.CultureInfo.InvariantCulture))}"));
        return SendAsync<NodeHistoryView>(HttpMethod.Get, $"v1/nodes/{Esc(node)}/history{(query.Length > 0 ? "?" + query : "")}", null, ct);
    }

    /// <summary>
    /// Every change to the policies named, newest last (the newest <paramref name="limit"/>, or those after
    /// <paramref name="after"/>): one policy (<paramref name="name"/> with its namespace, or a cluster-wide one's with
    /// that kind), a namespace's, a kind's, or every policy's when all are null.
    /// </summary>
    public Task<IReadOnlyList<PolicyChange>> PolicyHistoryAsync(string? ns = null, string? name = null, PolicyKind? kind = null,
        DateTimeOffset? since = null, DateTimeOffset? until = null, int? limit = null, long? after = null, CancellationToken ct = default)
    {
        var query = string.Join("&", new (string Name, string? Value)[]
            {
                ("namespace", ns), ("name", name), ("kind", kind is { } k ? PolicyKinds.DocumentKind(k) : null),
                ("since", since?.ToString("O", System.Globalization.CultureInfo.InvariantCulture)),
                ("until", until?.ToString("O", System.Globalization.CultureInfo.InvariantCulture)),
                ("limit", limit?.ToString(System.Globalization.CultureInfo.InvariantCulture)),
                ("after", after?.ToString(System.Globalization.CultureInfo.InvariantCulture)),
            }.Where(q => q.Value is not null).Select(q => $"{q.Name}={Esc(q.Value!)}"));
        return SendAsync<IReadOnlyList<PolicyChange>>(HttpMethod.Get, "v1/policies/history" + (query.Length > 0 ? "?" + query : ""), null, ct);
    }

    /// <summary>The desired state as it was after log position <paramref name="at"/> (a whole number) or at an RFC 3339 time.</summary>
    public Task<HistoricalState> StateAtAsync(string at, CancellationToken ct = default) =>
        SendAsync<HistoricalState>(HttpMethod.Get, $"v1/state?at={Esc(at)}", null, ct);

    /// <summary>
    /// Why a connection from <paramref name="from"/> to <paramref name="to"/> (NAMESPACE/POD or an IP address) is
    /// forwarded or dropped at <paramref name="at"/> (a log position or an RFC 3339 time; null: now).
    /// </summary>
    public Task<ExplanationView> ExplainAsync(string from, string to, int? port, string? protocol = null, string? at = null, CancellationToken ct = default)
    {
        var query = string.Join("&", new[] { ("from", from), ("to", to), ("port", port?.ToString(System.Globalization.CultureInfo.InvariantCulture)), ("protocol", protocol), ("at", at) }
            .Where(q => q.Item2 is not null).Select(q => $"{q.Item1}={Esc(q.Item2!)}"));
        return SendAsync<ExplanationView>(HttpMethod.Get, $"v1/explain?{query}", null, ct);
    }

    /// <summary>Why the recorded flow of that uuid was forwarded or dropped, judged again at the version its node enforced.</summary>
    public Task<ExplanationView> ExplainFlowAsync(string uuid, CancellationToken ct = default) =>
        SendAsync<ExplanationView>(HttpMethod.Get, $"v1/flows/{Esc(uuid)}/explain", null, ct);

    public Task<StatusView> StatusAsync(CancellationToken ct = default) =>
        SendAsync<StatusView>(HttpMethod.Get, "v1/status", null, ct);

    public Task<EnforcementView> EnforcementAsync(CancellationToken ct = default) =>
        SendAsync<EnforcementView>(HttpMethod.Get, "v1/enforcement", null, ct);

    /// <summary>Sets the cluster's enforcement mode (<c>default</c>, <c>always</c>, <c>never</c>); setting the mode it has changes nothing.</summary>
    public Task<EnforcementView> SetEnforcementAsync(string mode, CancellationToken ct = default) =>
        SendAsync<EnforcementView>(HttpMethod.Put, "v1/enforcement", JsonContent.Create(new EnforcementRequest(mode), options: Json), ct);

    /// <summary>What switching to <paramref name="mode"/> would do to the traffic recorded in the last <paramref name="window"/>; changes nothing.</summary>
    public Task<PolicyImpact> PreviewEnforcementAsync(string mode, string? window = null, CancellationToken ct = default) =>
        SendAsync<PolicyImpact>(HttpMethod.Put, DryRun("v1/enforcement", window), JsonContent.Create(new EnforcementRequest(mode), options: Json), ct);

    public Task<ClusterStatusView> ClusterStatusAsync(CancellationToken ct = default) =>
        SendAsync<ClusterStatusView>(HttpMethod.Get, "v1/cluster", null, ct);

    /// <summary>Waits until every known node has acknowledged at least <paramref name="version"/> (default: the newest).</summary>
    public Task<bool> WaitForConvergenceAsync(long? version, TimeSpan timeout, CancellationToken ct = default) =>
        PollNodesAsync(async nodes =>
        {
            var target = version ?? (await StatusAsync(ct)).Version;
            return nodes.All(n => n.AckedVersion >= target) ? true : null;
        }, timeout, ct);

    /// <summary>Waits until <paramref name="node"/> has acknowledged <paramref name="version"/> or newer; false when
    /// <paramref name="timeout"/> passes first, or at once when no agent of the node is connected to wait for.</summary>
    public Task<bool> WaitForNodeAsync(string node, long version, TimeSpan timeout, CancellationToken ct = default) =>
        PollNodesAsync(nodes => Task.FromResult(nodes.FirstOrDefault(n => n.Node == node) switch
        {
            { } view when view.AckedVersion >= version => true,
            { Connected: true } => (bool?)null,
            _ => false,
        }), timeout, ct);

    /// <summary>Reads the nodes every 100 ms until <paramref name="decide"/> answers (true or false), or false once
    /// <paramref name="timeout"/> has passed.</summary>
    private async Task<bool> PollNodesAsync(Func<IReadOnlyList<NodeView>, Task<bool?>> decide, TimeSpan timeout, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            if (await decide(await ListNodesAsync(ct)) is { } decided) return decided;
            if (DateTime.UtcNow >= deadline) return false;
            await Task.Delay(100, ct);
        }
    }

    private async Task<T> SendAsync<T>(HttpMethod method, string path, HttpContent? content, CancellationToken ct)
    {
        using var response = await SendRawAsync(method, path, content, ct);
        await EnsureSuccessAsync(response, ct);
        return (await response.Content.ReadFromJsonAsync<T>(Json, ct))!;
    }

    private async Task<T?> SendOrNullAsync<T>(HttpMethod method, string path, CancellationToken ct) where T : class
    {
        using var response = await SendRawAsync(method, path, null, ct);
        if (response.StatusCode == HttpStatusCode.NotFound) return null;
        await EnsureSuccessAsync(response, ct);
        return await response.Content.ReadFromJsonAsync<T>(Json, ct);
    }

    private async Task<HttpResponseMessage> SendRawAsync(HttpMethod method, string path, HttpContent? content, CancellationToken ct)
    {
        try
        {
            return await http.SendAsync(new HttpRequestMessage(method, path) { Content = content }, ct);
        }
        catch (HttpRequestException e) when (e.StatusCode is null)
        {
            throw new ControlPlaneUnreachableException(BaseAddress, e);
        }
    }

    private static async Task EnsureSuccessAsync(HttpResponseMessage response, CancellationToken ct)
    {
        if (response.IsSuccessStatusCode) return;
        var body = await response.Content.ReadAsStringAsync(ct);
        JsonObject? problem = null;
        try { problem = JsonNode.Parse(body) as JsonObject; } catch (JsonException) { }
        throw new MeshApiException(response.StatusCode, DescribeProblem(response.StatusCode, problem, body), problem);
    }

    /// <summary>One readable message from a problem document: its title, detail and every field error.</summary>
    public static string DescribeProblem(HttpStatusCode status, JsonObject? problem, string fallback)
    {
        if (problem is null) return $"{(int)status} {status}: {fallback}";
        var sb = new StringBuilder();
        sb.Append(problem["title"]?.GetValue<string>() ?? status.ToString());
        if (problem["detail"]?.GetValue<string>() is { Length: > 0 } detail) sb.Append(": ").Append(detail);
        if (problem["errors"] is JsonObject errors)
            foreach (var (field, messages) in errors)
                foreach (var m in messages?.AsArray() ?? [])
                    sb.Append('\n').Append("  ").Append(field).Append(": ").Append(m?.GetValue<string>());
        return sb.ToString();
    }

    private static bool LooksLikeJson(string document) => document.TrimStart().StartsWith('{');
    private static string Esc(string segment) => Uri.EscapeDataString(segment);
}
