using Mesh.Contracts.Input;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;
using static Mesh.Contracts.Policies.YamlFields;

namespace Mesh.Contracts.Policies;

/// <summary>
/// Reads one policy document, YAML or JSON, into a <see cref="NetworkPolicy"/>: a CiliumNetworkPolicy, a
/// CiliumClusterwideNetworkPolicy, a Kubernetes NetworkPolicy or a Kubernetes ClusterNetworkPolicy (the last two
/// translated into the same model; a ClusterNetworkPolicy's rules keep their tier, priority and actions). Every problem is
/// reported with the path of its field, all at once; a document with any problem yields no policy. Fields Mesh does
/// not enforce are refused by name, never ignored.
/// </summary>
public static partial class PolicyParser
{
    public const string ApiVersion = "cilium.io/v2";
    public const string NamespacedKind = "CiliumNetworkPolicy";
    public const string ClusterwideKind = "CiliumClusterwideNetworkPolicy";
    public const string KubernetesApiVersion = "networking.k8s.io/v1";
    public const string KubernetesKind = "NetworkPolicy";
    /// <summary>Kubernetes' ClusterNetworkPolicy (network-policy-api): admin and baseline tiers, priorities, actions.</summary>
    public const string TieredApiVersion = "policy.networking.k8s.io/v1alpha2";
    public const string TieredKind = "ClusterNetworkPolicy";
    /// <summary>Where a namespaced policy goes when neither the document nor the caller names a namespace (kubectl's default).</summary>
    public const string FallbackNamespace = "default";

    private static readonly string[] CiliumDocumentFields = ["apiVersion", "kind", "metadata", "spec", "specs", "status"];
    private static readonly string[] KubernetesDocumentFields = ["apiVersion", "kind", "metadata", "spec", "status"];
    private static readonly string[] MetadataFields =
        ["name", "namespace", "labels", "annotations", "uid", "resourceVersion", "generation", "creationTimestamp", "managedFields"];

    /// <param name="defaultNamespace">Namespace for a namespaced policy whose metadata names none.</param>
    /// <param name="firstLine">The line of its file the text starts on (one document of several), so a syntax error
    /// names the line a person finds in their editor.</param>
    public static PolicyParseResult Parse(string text, string? defaultNamespace = null, int firstLine = 1)
    {
        var reader = new YamlFields();
        var root = Load(text, reader, firstLine);
        var policy = root is null ? null : Document(root, defaultNamespace, reader);
        return reader.Errors.Count == 0 && policy is not null
            ? new PolicyParseResult(policy, [])
            : new PolicyParseResult(null, reader.Errors);
    }

    private static YamlNode? Load(string text, YamlFields reader, int firstLine)
    {
        var stream = new YamlStream();
        var events = new CheckedYamlParser(new Parser(new StringReader(text)));
        try
        {
            stream.Load(events);
        }
        catch (Exception e) when ((e as RefusedYaml ?? e.InnerException as RefusedYaml) is { } refused)
        {
            reader.Error("", $"{refused.Message} (line {refused.Start.Line + firstLine - 1}, column {refused.Start.Column})");
            return null;
        }
        catch (YamlException e)
        {
            reader.Error("", $"not valid YAML or JSON (line {e.Start.Line + firstLine - 1}, column {e.Start.Column}): {InnermostMessage(e)}");
            return null;
        }
        catch (ArgumentException) when (events.Current is { } at)
        {
            // YamlDotNet's reader gives some broken text ("a:\n  : b\nc") an event its own tree builder does not
            // take (a mapping that ends where its value should be), before the reader sees the error itself.
            reader.Error("", $"not valid YAML or JSON (line {at.Start.Line + firstLine - 1}, column {at.Start.Column}): a value is missing here");
            return null;
        }
        catch (InvalidOperationException)
        {
            // YamlDotNet's scanner fails this way, without a position, when the text ends inside a flow collection.
            var lastLine = text.TrimEnd().Count(c => c == '\n') + firstLine;
            reader.Error("", $"not valid YAML or JSON (line {lastLine}): the document ends inside an unclosed '{{' or '['");
            return null;
        }
        switch (stream.Documents.Count)
        {
            case 0:
                reader.Error("", "the document is empty");
                return null;
            case > 1:
                reader.Error("", $"expected one policy document, got {stream.Documents.Count}");
                return null;
            default:
                return stream.Documents[0].RootNode;
        }
    }

    private static string InnermostMessage(Exception e) => e.InnerException is { } inner ? InnermostMessage(inner) : e.Message;

    private static NetworkPolicy? Document(YamlNode root, string? defaultNamespace, YamlFields reader)
    {
        var map = reader.Mapping(root, "");
        if (map is null)
        {
            if (IsNull(root)) reader.Error("", "the document is empty");
            return null;
        }
        // The kind decides which fields exist, so read it before checking the others.
        var kindNode = map.Children.FirstOrDefault(kv => kv.Key is YamlScalarNode { Value: "kind" }).Value;
        var kindText = IsNull(kindNode) ? null : (kindNode as YamlScalarNode)?.Value;
        var kind = kindText switch
        {
            NamespacedKind => PolicyKind.CiliumNetworkPolicy,
            ClusterwideKind => PolicyKind.CiliumClusterwideNetworkPolicy,
            KubernetesKind => PolicyKind.KubernetesNetworkPolicy,
            TieredKind => PolicyKind.ClusterNetworkPolicy,
            _ => (PolicyKind?)null,
        };
        var fields = reader.Fields(map, "", kind is PolicyKind.KubernetesNetworkPolicy or PolicyKind.ClusterNetworkPolicy
            ? KubernetesDocumentFields : CiliumDocumentFields);

        var apiVersion = Required(fields, "", "apiVersion", reader);
        var kindValue = Required(fields, "", "kind", reader);
        var expectedApiVersion = kind switch
        {
            PolicyKind.KubernetesNetworkPolicy => KubernetesApiVersion,
            PolicyKind.ClusterNetworkPolicy => TieredApiVersion,
            _ => ApiVersion,
        };
        if (kindValue is not null && kind is null)
            reader.Error("kind", $"\"{kindValue}\" is not a supported kind (expected {NamespacedKind}, {ClusterwideKind}, {KubernetesKind} or {TieredKind})");
        if (apiVersion is not null && kind is not null && apiVersion != expectedApiVersion)
            reader.Error("apiVersion", $"\"{apiVersion}\" is not the apiVersion of a {kindValue} (expected {expectedApiVersion})");
        else if (apiVersion is not null && kind is null && apiVersion is not (ApiVersion or KubernetesApiVersion or TieredApiVersion))
            reader.Error("apiVersion", $"\"{apiVersion}\" is not supported (expected {ApiVersion}, {KubernetesApiVersion} or {TieredApiVersion})");

        var clusterScopedKind = kind is PolicyKind.CiliumClusterwideNetworkPolicy or PolicyKind.ClusterNetworkPolicy ? kindValue : null;
        var (name, ns, mode) = Metadata(fields.GetValueOrDefault("metadata"), clusterScopedKind, defaultNamespace, reader);
        if (kind is not { } k) return null;

        if (k == PolicyKind.ClusterNetworkPolicy)
        {
            var tiered = ClusterNetworkSpec(fields, reader);
            return name is not null && tiered is not null
                ? new NetworkPolicy(null, name, [tiered.Spec], k) { Mode = mode, Tier = tiered.Tier, Priority = tiered.Priority }
                : null;
        }
        var specs = k == PolicyKind.KubernetesNetworkPolicy ? KubernetesSpecs(fields, reader) : CiliumSpecs(fields, reader);
        return name is null || specs is null ? null : new NetworkPolicy(ns, name, specs, k) { Mode = mode };
    }

    /// <param name="clusterScopedKind">The kind, when it is one without a namespace; null for a namespaced kind.</param>
    private static (string? Name, string? Namespace, PolicyMode Mode) Metadata(YamlNode? node, string? clusterScopedKind, string? defaultNamespace, YamlFields reader)
    {
        const string path = "metadata";
        if (IsNull(node))
        {
            reader.Error(path, "is required");
            return (null, null, PolicyMode.Enforce);
        }
        if (reader.Mapping(node, path) is not { } map) return (null, null, PolicyMode.Enforce);
        var fields = reader.Fields(map, path, MetadataFields);
        var mode = Mode(fields.GetValueOrDefault("annotations"), Child(path, "annotations"), reader);

        var name = Required(fields, path, "name", reader);
        if (name is not null && KubernetesNames.DnsSubdomainProblem(name) is { } badName) reader.Error(Child(path, "name"), badName);

        var ns = reader.Scalar(fields.GetValueOrDefault("namespace"), Child(path, "namespace"));
        if (clusterScopedKind is not null)
        {
            if (ns is not null) reader.Error(Child(path, "namespace"), $"a {clusterScopedKind} has no namespace");
            return (name, null, mode);
        }
        ns ??= defaultNamespace ?? FallbackNamespace;
        if (KubernetesNames.DnsLabelProblem(ns) is { } badNamespace) reader.Error(Child(path, "namespace"), badNamespace);
        return (name, ns, mode);
    }

    /// <summary>The mode <see cref="PolicyModes.Annotation"/> asks for; other annotations are metadata Mesh keeps out of the policy.</summary>
    private static PolicyMode Mode(YamlNode? annotations, string path, YamlFields reader)
    {
        if (IsNull(annotations) || reader.Mapping(annotations, path) is not { } map) return PolicyMode.Enforce;
        var node = map.Children.FirstOrDefault(kv => kv.Key is YamlScalarNode { Value: PolicyModes.Annotation }).Value;
        if (node is null) return PolicyMode.Enforce;
        var modePath = Child(path, PolicyModes.Annotation);
        var text = reader.Scalar(node, modePath);
        if (text is null) return PolicyMode.Enforce;
        if (PolicyModes.TryParse(text, out var mode)) return mode;
        reader.Error(modePath, $"\"{text}\" is not a policy mode (expected enforce or audit)");
        return PolicyMode.Enforce;
    }

    private static string? Required(Dictionary<string, YamlNode> fields, string parent, string name, YamlFields reader)
    {
        var path = Child(parent, name);
        if (IsNull(fields.GetValueOrDefault(name)))
        {
            reader.Error(path, "is required");
            return null;
        }
        return reader.Scalar(fields[name], path);
    }

    private static bool? Boolean(YamlNode? node, string path, YamlFields reader)
    {
        var text = reader.Scalar(node, path);
        switch (text)
        {
            case null: return null;
            case "true" or "True" or "TRUE": return true;
            case "false" or "False" or "FALSE": return false;
            default:
                reader.Error(path, $"\"{text}\" is not a boolean (expected true or false)");
                return null;
        }
    }
}
