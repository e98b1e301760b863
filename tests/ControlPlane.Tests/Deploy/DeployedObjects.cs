using k8s;
using k8s.Models;

namespace Mesh.ControlPlane.Tests.Deploy;

/// <summary>The objects of a set of YAML files, each loaded strictly as its Kubernetes type (an unknown field fails).</summary>
public sealed class DeployedObjects(IReadOnlyList<IKubernetesObject<V1ObjectMeta>> objects)
{
    public IReadOnlyList<IKubernetesObject<V1ObjectMeta>> All => objects;

    public static DeployedObjects LoadDirectory(string directory) =>
        new([.. Directory.GetFiles(directory, "*.yaml").Order(StringComparer.Ordinal).SelectMany(file => LoadText(File.ReadAllText(file), file))]);

    public static DeployedObjects Load(string yaml, string source) => new([.. LoadText(yaml, source)]);

    private static IEnumerable<IKubernetesObject<V1ObjectMeta>> LoadText(string yaml, string source)
    {
        try
        {
            return KubernetesYaml.LoadAllFromString(yaml, strict: true).Cast<IKubernetesObject<V1ObjectMeta>>().ToList();
        }
        catch (YamlDotNet.Core.YamlException e)
        {
            throw new InvalidOperationException($"{source}: {e.Message}", e);
        }
    }

    public IEnumerable<T> OfType<T>() => objects.OfType<T>();

    public T Single<T>(string name) where T : IKubernetesObject<V1ObjectMeta> =>
        Assert.Single(objects.OfType<T>(), o => o.Metadata.Name == name);

    public bool Has<T>(string name) where T : IKubernetesObject<V1ObjectMeta> => objects.OfType<T>().Any(o => o.Metadata.Name == name);

    /// <summary>Every (apiGroup, resource, verb) a role grants, one per combination its rules spell out.</summary>
    public static HashSet<(string Group, string Resource, string Verb)> Grants(V1ClusterRole role) =>
    [
        .. role.Rules.SelectMany(rule =>
            from g in rule.ApiGroups ?? []
            from r in rule.Resources ?? []
            from v in rule.Verbs
            select (g, r, v)),
    ];
}
