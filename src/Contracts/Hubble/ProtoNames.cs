using System.Collections.Frozen;
using System.Reflection;
using Google.Protobuf.Reflection;

namespace Mesh.Contracts.Hubble;

/// <summary>An enum value as the .proto names it (FORWARDED, POLICY_DENIED, INGRESS), as Hubble's JSON, metrics and CLI write it.</summary>
public static class ProtoNames
{
    public static string Of<TEnum>(TEnum value) where TEnum : struct, Enum => Table<TEnum>.Of(value);

    private static class Table<TEnum> where TEnum : struct, Enum
    {
        private static readonly FrozenDictionary<TEnum, string> Names = Enum.GetValues<TEnum>().Distinct().ToFrozenDictionary(
            v => v,
            v => typeof(TEnum).GetField(v.ToString())?.GetCustomAttribute<OriginalNameAttribute>()?.Name ?? v.ToString());

        public static string Of(TEnum value) => Names.TryGetValue(value, out var name) ? name : value.ToString();
    }
}
