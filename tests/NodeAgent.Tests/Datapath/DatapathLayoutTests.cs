using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;
using Mesh.NodeAgent.Datapath.Interop;
using Mesh.Testing;

namespace Mesh.NodeAgent.Tests.Datapath;

/// <summary>
/// Every C# mirror of a C struct against the BTF of the endpoint.o the build produced: same size, and each C
/// member at the offset of the C# field of the same name (PascalCase; an array member maps to Name0).
/// </summary>
public sealed partial class DatapathLayoutTests
{
    public static TheoryData<string, Type> Mirrors => new()
    {
        { "gen_state", typeof(GenStateNative) },
        { "endpoint_key", typeof(EndpointKeyNative) },
        { "endpoint_info", typeof(EndpointInfoNative) },
        { "ipcache_key", typeof(IpCacheKeyNative) },
        { "ipcache_info", typeof(IpCacheInfoNative) },
        { "policy_map_key", typeof(PolicyMapKeyNative) },
        { "policy_key", typeof(PolicyKeyNative) },
        { "policy_entry", typeof(PolicyEntryNative) },
        { "ct_key", typeof(CtKeyNative) },
        { "ct_entry", typeof(CtEntryNative) },
        { "flow_event", typeof(FlowEventNative) },
        { "verdict_counter", typeof(VerdictCounterNative) },
    };

    [Theory]
    [MemberData(nameof(Mirrors))]
    public void The_csharp_mirror_has_the_size_and_offsets_of_the_c_struct(string cStruct, Type mirror)
    {
        var btf = BtfStructs.Value;
        Assert.True(btf.TryGetValue(cStruct, out var layout), $"struct {cStruct} is not in the BTF of endpoint.o");
        Assert.Equal(layout.Size, Marshal.SizeOf(mirror));
        Assert.NotEmpty(layout.Members);
        foreach (var (member, offset) in layout.Members)
        {
            var field = Pascal(member);
            if (mirror.GetField(field) is null) field += "0";
            Assert.True(mirror.GetField(field) is not null, $"{mirror.Name} has no field for {cStruct}.{member}");
            Assert.Equal((cStruct, member, offset), (cStruct, member, (int)Marshal.OffsetOf(mirror, field)));
        }
    }

    [Fact]
    public void Libbpf_option_structs_have_the_measured_libbpf_1_1_layout()
    {
        Assert.Equal((80, 24), (Marshal.SizeOf<BpfObjectOpenOptsNative>(), (int)Marshal.OffsetOf<BpfObjectOpenOptsNative>("PinRootPath")));
        Assert.Equal((24, 8, 12, 16), (Marshal.SizeOf<BpfTcHookNative>(), (int)Marshal.OffsetOf<BpfTcHookNative>("Ifindex"),
            (int)Marshal.OffsetOf<BpfTcHookNative>("AttachPoint"), (int)Marshal.OffsetOf<BpfTcHookNative>("Parent")));
        Assert.Equal((32, 8, 12, 16, 20, 24), (Marshal.SizeOf<BpfTcOptsNative>(), (int)Marshal.OffsetOf<BpfTcOptsNative>("ProgFd"),
            (int)Marshal.OffsetOf<BpfTcOptsNative>("Flags"), (int)Marshal.OffsetOf<BpfTcOptsNative>("ProgId"),
            (int)Marshal.OffsetOf<BpfTcOptsNative>("Handle"), (int)Marshal.OffsetOf<BpfTcOptsNative>("Priority")));
        Assert.Equal((48, 24, 28), (Marshal.SizeOf<BpfMapCreateOptsNative>(), (int)Marshal.OffsetOf<BpfMapCreateOptsNative>("InnerMapFd"),
            (int)Marshal.OffsetOf<BpfMapCreateOptsNative>("MapFlags")));
    }

    [Fact]
    public void The_map_layout_version_is_the_same_in_c_and_csharp()
    {
        var header = File.ReadAllText(Path.Combine(RepoPaths.Root, "bpf", "lib", "maps.h"));
        var define = LayoutDefine().Match(header);
        Assert.True(define.Success, "bpf/lib/maps.h defines no MESH_MAP_LAYOUT");
        Assert.Equal(MapLayout.Version, int.Parse(define.Groups[1].Value));
    }

    [Fact]
    public void The_endpoint_flags_are_the_bits_of_endpoints_h()
    {
        var header = File.ReadAllText(Path.Combine(RepoPaths.Root, "bpf", "lib", "endpoints.h"));
        var bits = FlagDefine().Matches(header).ToDictionary(m => m.Groups[1].Value, m => 1u << int.Parse(m.Groups[2].Value));

        Assert.Equal(new Dictionary<string, uint>
        {
            ["ENDPOINT_INGRESS_ENFORCED"] = EndpointInfoNative.IngressEnforced,
            ["ENDPOINT_EGRESS_ENFORCED"] = EndpointInfoNative.EgressEnforced,
            ["ENDPOINT_AUDITED"] = EndpointInfoNative.Audited,
            ["ENDPOINT_AUDIT_INGRESS_ENFORCED"] = EndpointInfoNative.AuditIngressEnforced,
            ["ENDPOINT_AUDIT_EGRESS_ENFORCED"] = EndpointInfoNative.AuditEgressEnforced,
        }, bits);
    }

    [Fact]
    public void The_audit_layer_bit_of_policy_h_is_the_agent_protocols()
    {
        var header = File.ReadAllText(Path.Combine(RepoPaths.Root, "bpf", "lib", "policy.h"));
        var define = AuditLayerDefine().Match(header);
        Assert.True(define.Success, "bpf/lib/policy.h defines no POLICY_AUDIT_LAYER");
        Assert.Equal(PolicyMapKeyNative.AuditLayer, Convert.ToUInt32(define.Groups[1].Value, 16));
        Assert.Equal(Mesh.Contracts.Agent.AgentProtocol.AuditLayer, PolicyMapKeyNative.AuditLayer);
    }

    [Fact]
    public void The_flow_verdicts_are_the_values_of_enum_flow_verdict()
    {
        var header = File.ReadAllText(Path.Combine(RepoPaths.Root, "bpf", "lib", "drop_reasons.h"));
        var values = VerdictValue().Matches(header).ToDictionary(m => m.Groups[1].Value, m => int.Parse(m.Groups[2].Value));

        Assert.Equal(new Dictionary<string, int> { ["FORWARDED"] = 0, ["DROPPED"] = 1, ["AUDIT"] = 2 }, values);
        Assert.Equal(values, Enum.GetValues<Mesh.NodeAgent.Datapath.FlowVerdict>()
            .ToDictionary(v => v.ToString().ToUpperInvariant(), v => (int)v));
    }

    [Fact]
    public void The_policy_entry_verdicts_are_the_values_of_policy_h()
    {
        var header = File.ReadAllText(Path.Combine(RepoPaths.Root, "bpf", "lib", "policy.h"));
        var values = PolicyVerdictValue().Matches(header).ToDictionary(m => m.Groups[1].Value, m => int.Parse(m.Groups[2].Value));

        Assert.Equal(new Dictionary<string, int>
        {
            ["POLICY_ALLOW"] = (int)Mesh.NodeAgent.Datapath.PolicyVerdict.Allow,
            ["POLICY_DENY"] = (int)Mesh.NodeAgent.Datapath.PolicyVerdict.Deny,
            ["POLICY_NONE"] = PolicyEntryNative.VerdictNone,
            ["ADMIN_NONE"] = PolicyEntryNative.AdminNone,
            ["ADMIN_ACCEPT"] = PolicyEntryNative.AdminAccept,
            ["ADMIN_DENY"] = PolicyEntryNative.AdminDeny,
            ["ADMIN_PASS"] = PolicyEntryNative.AdminPass,
        }, values);
    }

    private sealed record StructLayout(int Size, List<(string Member, int Offset)> Members);

    private static readonly Lazy<Dictionary<string, StructLayout>> BtfStructs = new(ReadBtf);

    /// <summary>Parses <c>bpftool btf dump file endpoint.o format raw</c>: "[19] STRUCT 'gen_state' size=24 vlen=3"
    /// followed by one "'active' type_id=8 bits_offset=0" line per member.</summary>
    private static Dictionary<string, StructLayout> ReadBtf()
    {
        var objectPath = Path.Combine(AppContext.BaseDirectory, "endpoint.o");
        Assert.True(File.Exists(objectPath), $"{objectPath} is missing: the NodeAgent build compiles it");
        string output;
        try
        {
            var psi = new ProcessStartInfo("bpftool", $"btf dump file {objectPath} format raw") { RedirectStandardOutput = true, RedirectStandardError = true };
            using var p = Process.Start(psi)!;
            output = p.StandardOutput.ReadToEnd();
            var error = p.StandardError.ReadToEnd();
            p.WaitForExit();
            Assert.True(p.ExitCode == 0, $"bpftool btf dump: {error}");
        }
        catch (System.ComponentModel.Win32Exception)
        {
            // No bpftool: like any other missing privileged tool, a skip on a laptop and a failure in CI.
            Privileged.Require();
            Assert.Skip("bpftool is not installed");
            throw;
        }

        var structs = new Dictionary<string, StructLayout>();
        StructLayout? current = null;
        foreach (var line in output.Split('\n'))
        {
            if (StructLine().Match(line) is { Success: true } s)
            {
                current = new StructLayout(int.Parse(s.Groups[2].Value), []);
                structs[s.Groups[1].Value] = current;
            }
            else if (current is not null && MemberLine().Match(line) is { Success: true } m)
            {
                current.Members.Add((m.Groups[1].Value, int.Parse(m.Groups[2].Value) / 8));
            }
            else if (line.StartsWith('[')) current = null;
        }
        return structs;
    }

    private static string Pascal(string snake) =>
        string.Concat(snake.Split('_').Select(part => part.Length == 0 ? part : char.ToUpperInvariant(part[0]) + part[1..]));

    [GeneratedRegex(@"^#define MESH_MAP_LAYOUT (\d+)\s*$", RegexOptions.Multiline)]
    private static partial Regex LayoutDefine();

    [GeneratedRegex(@"^#define (ENDPOINT_\w+)\s+\(1U << (\d+)\)", RegexOptions.Multiline)]
    private static partial Regex FlagDefine();

    [GeneratedRegex(@"^#define POLICY_AUDIT_LAYER 0x([0-9a-fA-F]+)U\s*$", RegexOptions.Multiline)]
    private static partial Regex AuditLayerDefine();

    [GeneratedRegex(@"^\tVERDICT_(\w+)\s*=\s*(\d+),", RegexOptions.Multiline)]
    private static partial Regex VerdictValue();

    [GeneratedRegex(@"^\t((?:POLICY|ADMIN)_\w+)\s*=\s*(\d+),", RegexOptions.Multiline)]
    private static partial Regex PolicyVerdictValue();

    [GeneratedRegex(@"^\[\d+\] STRUCT '(\w+)' size=(\d+)")]
    private static partial Regex StructLine();

    [GeneratedRegex(@"^\s+'(\w+)' type_id=\d+ bits_offset=(\d+)")]
    private static partial Regex MemberLine();
}
