using System.Net;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Mesh.Testing.Kubernetes;

/// <summary>Who writes, and how, as managedFields records it: operation Update or Apply, and the subresource written.</summary>
internal sealed record Writer(string Manager, string Operation, string? Subresource);

/// <summary>
/// Creates, updates, patches and deletes as kube-apiserver's storage strategies do: the server owns uid,
/// creationTimestamp, resourceVersion, generation and managedFields; with a status subresource, the main resource
/// keeps its status and /status changes nothing else; generation counts changes outside metadata and status; a write
/// that changes nothing is no write (no new resourceVersion, no event).
/// </summary>
internal sealed partial class ObjectWrites(ObjectStore store)
{
    private static readonly ApiResource Namespaces = ApiResource.All.Single(r => r.Plural == "namespaces");
    private const string NamespaceNameLabel = "kubernetes.io/metadata.name";

    public JsonObject? Get(ApiResource resource, string? ns, string name) =>
        (JsonObject?)store.Find(resource, ns, name)?.DeepClone();

    public JsonObject Create(ApiResource resource, string? ns, JsonObject body, Writer writer)
    {
        lock (store.Sync)
        {
            var obj = (JsonObject)body.DeepClone();
            CheckKind(resource, obj);
            var metadata = obj["metadata"] as JsonObject ?? new JsonObject();
            obj["metadata"] = metadata;
            if (resource.Namespaced)
            {
                if ((string?)metadata["namespace"] is { Length: > 0 } given && given != ns)
                    throw ApiStatus.BadRequest("the namespace of the provided object does not match the namespace sent on the request");
                if (store.Find(Namespaces, null, ns!) is null) throw ApiStatus.NotFound(Namespaces, ns!);
                metadata["namespace"] = ns;
            }
            else metadata.Remove("namespace");
            var name = (string?)metadata["name"];
            if (string.IsNullOrEmpty(name) && (string?)metadata["generateName"] is { Length: > 0 } prefix)
                metadata["name"] = name = prefix + string.Concat(Enumerable.Range(0, 5).Select(_ => "bcdfghjklmnpqrstvwxz2456789"[Random.Shared.Next(27)]));
            if (string.IsNullOrEmpty(name))
                throw ApiStatus.Invalid(resource, "", "metadata.name: Required value: name or generateName is required");
            CheckName(resource, name);
            if (store.Find(resource, ns, name) is not null) throw ApiStatus.AlreadyExists(resource, name);

            foreach (var owned in new[] { "uid", "resourceVersion", "creationTimestamp", "generation", "managedFields", "deletionTimestamp", "selfLink" })
                metadata.Remove(owned);
            metadata["uid"] = Guid.NewGuid().ToString();
            metadata["creationTimestamp"] = Now();
            if (resource.HasGeneration) metadata["generation"] = 1L;
            if (resource.HasStatus && resource.Kind != "Node") obj.Remove("status");
            Default(resource, obj);
            metadata["managedFields"] = new JsonArray(ManagedFieldsEntry(resource, writer, body));
            return store.Put(resource, obj);
        }
    }

    /// <summary>What kubectl apply amounts to: create, or replace everything but what the server owns.</summary>
    public JsonObject CreateOrReplace(ApiResource resource, string? ns, string name, JsonObject obj, Writer writer)
    {
        var body = (JsonObject)obj.DeepClone();
        (body["metadata"] as JsonObject)?.Remove("resourceVersion");
        lock (store.Sync)
            return store.Find(resource, ns, name) is null ? Create(resource, ns, body, writer) : Update(resource, ns, name, body, writer);
    }

    /// <summary>PUT: the whole object, optionally guarded by the resourceVersion it was read at.</summary>
    public JsonObject Update(ApiResource resource, string? ns, string name, JsonObject body, Writer writer)
    {
        lock (store.Sync)
        {
            var current = store.Find(resource, ns, name) ?? throw ApiStatus.NotFound(resource, name);
            if ((string?)body["metadata"]?["name"] is { } given && given != name)
                throw ApiStatus.BadRequest($"the name of the object ({given}) does not match the name on the URL ({name})");
            CheckKind(resource, body);
            return Commit(resource, current, (JsonObject)body.DeepClone(), writer, body);
        }
    }

    /// <summary>PATCH: <paramref name="patch"/> turns the current object into the next. Server-side apply creates a missing object.</summary>
    public (JsonObject Object, bool Created) Patch(ApiResource resource, string? ns, string name, Func<JsonObject, JsonObject> patch,
        JsonObject patchBody, Writer writer)
    {
        lock (store.Sync)
        {
            var current = store.Find(resource, ns, name);
            if (current is null)
            {
                if (writer.Operation != "Apply" || writer.Subresource is not null) throw ApiStatus.NotFound(resource, name);
                var fresh = patch(new JsonObject { ["apiVersion"] = resource.ApiVersion, ["kind"] = resource.Kind, ["metadata"] = new JsonObject { ["name"] = name } });
                return (Create(resource, ns, fresh, writer), true);
            }
            return (Commit(resource, current, patch((JsonObject)current.DeepClone()), writer, patchBody), false);
        }
    }

    /// <summary>Deletes at once (no graceful deletion, no finalizers). A namespace takes everything in it along, first.</summary>
    public JsonObject Delete(ApiResource resource, string? ns, string name, JsonObject? options)
    {
        lock (store.Sync)
        {
            var current = store.Find(resource, ns, name) ?? throw ApiStatus.NotFound(resource, name);
            var preconditions = options?["preconditions"];
            if (((string?)preconditions?["resourceVersion"] is { } rv && rv != (string?)current["metadata"]!["resourceVersion"])
                || ((string?)preconditions?["uid"] is { } uid && uid != (string?)current["metadata"]!["uid"]))
                throw ApiStatus.Conflict(resource, name);
            if (resource == Namespaces)
            {
                foreach (var inside in ApiResource.All.Where(r => r.Namespaced))
                    foreach (var obj in store.InNamespace(inside, name))
                        store.Remove(inside, name, (string)obj["metadata"]!["name"]!);
            }
            return store.Remove(resource, ns, name)!;
        }
    }

    private JsonObject Commit(ApiResource resource, JsonObject current, JsonObject next, Writer writer, JsonObject written)
    {
        var currentMetadata = (JsonObject)current["metadata"]!;
        if ((string?)next["metadata"]?["resourceVersion"] is { Length: > 0 } expected && expected != (string?)currentMetadata["resourceVersion"])
            throw ApiStatus.Conflict(resource, (string)currentMetadata["name"]!);
        if (writer.Subresource == "status")
        {
            var status = next["status"]?.DeepClone();
            next = (JsonObject)current.DeepClone();
            if (status is null) next.Remove("status"); else next["status"] = status;
        }
        else if (resource.HasStatus)
        {
            next.Remove("status");
            if (current["status"] is { } kept) next["status"] = kept.DeepClone();
        }
        next["apiVersion"] = resource.ApiVersion;
        next["kind"] = resource.Kind;
        var metadata = next["metadata"] as JsonObject ?? new JsonObject();
        next["metadata"] = metadata;
        foreach (var owned in new[] { "name", "namespace", "uid", "creationTimestamp", "generation", "managedFields", "deletionTimestamp", "selfLink", "resourceVersion" })
        {
            metadata.Remove(owned);
            if (currentMetadata[owned] is { } value) metadata[owned] = value.DeepClone();
        }
        if (resource == Namespaces) Default(resource, next);
        if (resource.HasGeneration && !JsonNode.DeepEquals(Content(current), Content(next)))
            metadata["generation"] = (long)currentMetadata["generation"]! + 1;
        if (JsonNode.DeepEquals(WithoutBookkeeping(current), WithoutBookkeeping(next))) return (JsonObject)current.DeepClone();

        var entries = metadata["managedFields"] as JsonArray ?? new JsonArray();
        var same = entries.OfType<JsonObject>().FirstOrDefault(e =>
            (string?)e["manager"] == writer.Manager && (string?)e["operation"] == writer.Operation && (string?)e["subresource"] == writer.Subresource);
        if (same is not null) entries.Remove(same);
        entries.Add(ManagedFieldsEntry(resource, writer, written));
        metadata["managedFields"] = entries;
        return store.Put(resource, next);
    }

    /// <summary>What the server sets on create: a namespace is Active and labelled with its name, a pod is Pending.</summary>
    private static void Default(ApiResource resource, JsonObject obj)
    {
        var metadata = (JsonObject)obj["metadata"]!;
        switch (resource.Kind)
        {
            case "Namespace":
                var labels = metadata["labels"] as JsonObject ?? new JsonObject();
                labels[NamespaceNameLabel] = (string)metadata["name"]!;
                metadata["labels"] = labels;
                obj["spec"] ??= new JsonObject { ["finalizers"] = new JsonArray("kubernetes") };
                obj["status"] ??= new JsonObject { ["phase"] = "Active" };
                break;
            case "Pod":
                obj["status"] ??= new JsonObject { ["phase"] = "Pending" };
                break;
        }
    }

    /// <summary>The part of an object whose change bumps generation: everything but metadata and status.</summary>
    private static JsonObject Content(JsonObject obj)
    {
        var content = (JsonObject)obj.DeepClone();
        content.Remove("metadata");
        content.Remove("status");
        return content;
    }

    private static JsonObject WithoutBookkeeping(JsonObject obj)
    {
        var copy = (JsonObject)obj.DeepClone();
        var metadata = (JsonObject)copy["metadata"]!;
        metadata.Remove("resourceVersion");
        metadata.Remove("managedFields");
        return copy;
    }

    /// <summary>
    /// A managedFields entry. fieldsV1 is coarse: the fields the request wrote, as "f:" keys down to leaves and lists
    /// (the real server goes on into list items with "k:" and "v:" keys).
    /// </summary>
    private static JsonObject ManagedFieldsEntry(ApiResource resource, Writer writer, JsonObject written)
    {
        var fields = new JsonObject();
        foreach (var (key, value) in written)
        {
            if (key is "kind" or "apiVersion") continue;
            if (writer.Subresource == "status" && key != "status") continue;
            if (key == "metadata")
            {
                var metadataFields = new JsonObject();
                foreach (var (field, fieldValue) in value as JsonObject ?? [])
                    if (field is "labels" or "annotations" or "finalizers" or "ownerReferences")
                        metadataFields["f:" + field] = FieldSet(fieldValue);
                if (metadataFields.Count > 0) fields["f:metadata"] = metadataFields;
            }
            else fields["f:" + key] = FieldSet(value);
        }
        var entry = new JsonObject
        {
            ["manager"] = writer.Manager,
            ["operation"] = writer.Operation,
            ["apiVersion"] = resource.ApiVersion,
            ["time"] = Now(),
            ["fieldsType"] = "FieldsV1",
            ["fieldsV1"] = fields,
        };
        if (writer.Subresource is not null) entry["subresource"] = writer.Subresource;
        return entry;
    }

    private static JsonObject FieldSet(JsonNode? node) =>
        node is JsonObject obj ? new JsonObject(obj.Select(p => KeyValuePair.Create<string, JsonNode?>("f:" + p.Key, FieldSet(p.Value)))) : new JsonObject();

    private static void CheckKind(ApiResource resource, JsonObject obj)
    {
        if ((string?)obj["kind"] is { Length: > 0 } kind && kind != resource.Kind)
            throw ApiStatus.BadRequest($"the body of the request was in an unknown format: kind {kind} is not {resource.Kind}");
        if ((string?)obj["apiVersion"] is { Length: > 0 } apiVersion && apiVersion != resource.ApiVersion)
            throw ApiStatus.BadRequest($"the API version in the data ({apiVersion}) does not match the expected API version ({resource.ApiVersion})");
        obj["apiVersion"] = resource.ApiVersion;
        obj["kind"] = resource.Kind;
    }

    private static void CheckName(ApiResource resource, string name)
    {
        var valid = resource == Namespaces ? name.Length <= 63 && DnsLabel().IsMatch(name) : name.Length <= 253 && DnsSubdomain().IsMatch(name);
        if (!valid)
            throw ApiStatus.Invalid(resource, name, $"metadata.name: Invalid value: \"{name}\": a lowercase RFC 1123 {(resource == Namespaces ? "label" : "subdomain")} must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character");
    }

    private static string Now() => DateTimeOffset.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture);

    [GeneratedRegex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")]
    private static partial Regex DnsLabel();

    [GeneratedRegex(@"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")]
    private static partial Regex DnsSubdomain();
}
