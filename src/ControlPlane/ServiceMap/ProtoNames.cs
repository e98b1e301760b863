using System.Collections.Concurrent;
using System.Reflection;
using Google.Protobuf.Reflection;

namespace Mesh.ControlPlane.ServiceMap;

/// <summary>An enum value as the .proto names it (FORWARDED, POLICY_DENIED), as Hubble's JSON and meshctl write it.</summary>
internal static class ProtoNames
{
    private static readonly ConcurrentDictionary<Enum, string> Names = new();

    public static string Of<T>(T value) where T : struct, Enum =>
        Names.GetOrAdd(value, v => v.GetType().GetField(v.ToString())?.GetCustomAttribute<OriginalNameAttribute>()?.Name ?? v.ToString());
}
