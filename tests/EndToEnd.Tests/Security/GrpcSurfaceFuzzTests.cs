using System.Collections;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using FsCheck;
using FsCheck.Fluent;
using Google.Protobuf;
using Google.Protobuf.Reflection;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Grpc.Net.Client;
using Mesh.Contracts.Agent;
using Mesh.Contracts.Management;
using Mesh.EndToEnd.Tests.ControlPlane;
using Mesh.Testing;

namespace Mesh.EndToEnd.Tests.Security;

/// <summary>
/// Every method of the management services and the agent protocol (as their descriptors list them, so a new method is
/// covered without a change here) against generated messages: fields of any value, strange strings, huge repeated
/// fields and maps, timestamps out of range, unknown enum values, mutated policies; and raw HTTP/2 requests on the
/// gRPC paths whose frames are garbage. Whatever arrives, no call ends in INTERNAL or UNKNOWN (the gRPC form of a
/// 500) except the library's own word on a frame it cannot read, a refused call stores nothing, and the process lives
/// on. Bounded by time (<see cref="FuzzRun"/>); a failure names its seed and case.
/// </summary>
public sealed class GrpcSurfaceFuzzTests(SharedControlPlane shared) : IClassFixture<SharedControlPlane>
{
    private const double ShareOfBudget = 0.45;
    private const int MaxCases = 20_000;
    private const int HealthEvery = 100;
    /// <summary>How long a Sync call that the control plane accepted is left streaming before the client hangs up.</summary>
    private static readonly TimeSpan SyncListen = TimeSpan.FromMilliseconds(300);

    private ControlPlaneProcess Cp => shared.Process;
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly MethodDescriptor[] Methods =
        new[] { ManagementReflection.Descriptor, AgentReflection.Descriptor }.SelectMany(f => f.Services).SelectMany(s => s.Methods).ToArray();

    /// <summary>A typed call (one message, or a few on a client stream), or raw bytes sent on a method's path.</summary>
    private abstract record GrpcCase(string Path);

    private sealed record TypedCase(MethodDescriptor Method, IMessage[] Messages) : GrpcCase($"/{Method.Service.FullName}/{Method.Name}")
    {
        public override string ToString() => $"{Path} with {string.Join(", ", Messages.Select(Show))}";
    }

    private sealed record RawCase(string Path, string ContentType, string? Encoding, byte[] Body) : GrpcCase(Path)
    {
        public override string ToString() =>
            $"raw POST {Path}, content-type {ContentType}, grpc-encoding {Encoding ?? "none"}, {Body.Length} bytes: {Convert.ToHexString(Body, 0, Math.Min(Body.Length, 64))}";
    }

    [Fact]
    public async Task No_call_to_any_method_ends_in_INTERNAL_or_UNKNOWN_or_stores_what_was_refused()
    {
        Assert.Contains(Methods, m => m.FullName == "mesh.management.v1.Policies.ApplyPolicy");
        Assert.Contains(Methods, m => m.FullName == "mesh.agent.v1.AgentSync.Sync");
        TestContext.Current.TestOutputHelper?.WriteLine($"{Methods.Length} methods: {string.Join(", ", Methods.Select(m => m.FullName))}");

        var run = FuzzRun.Start(ShareOfBudget, MaxCases);
        var cases = Gen.Frequency(
            (5, Gen.Elements(Methods).SelectMany(TypedCaseFor)),
            (2, RawCases));
        var log = new LogWatch(Cp.ConnectionString);
        // A node named by a Sync call goes on being reported in the background (coalesced); its stream may grow meanwhile.
        var reportingNodes = new HashSet<string>(StringComparer.Ordinal);
        using var channel = GrpcChannel.ForAddress(Cp.Grpc, new GrpcChannelOptions
        {
            MaxSendMessageSize = null, MaxReceiveMessageSize = null,
            HttpHandler = new Mesh.Contracts.Security.BearerToken(() => TestTokens.Admin, new SocketsHttpHandler()),
        });
        using var raw = new HttpClient(new SocketsHttpHandler()) { BaseAddress = Cp.Grpc, Timeout = TimeSpan.FromSeconds(30) };
        using var anonymous = new HttpClient { BaseAddress = Cp.Api, Timeout = TimeSpan.FromSeconds(10) };

        for (var i = 0; run.More; i++)
        {
            var call = run.Case(cases, i);
            var head = await log.HeadAsync();
            (StatusCode Code, string Detail) outcome;
            try
            {
                outcome = call switch
                {
                    TypedCase typed => await CallAsync(channel.CreateCallInvoker(), typed),
                    RawCase bytes => await SendRawAsync(raw, bytes),
                    _ => throw new InvalidOperationException(call.ToString()),
                };
            }
            catch (TaskCanceledException) when (!Ct.IsCancellationRequested)
            {
                run.Count("timeout");
                run.Fail(i, $"no answer within 30 s at {call.Path}", call.ToString()!);
                continue;
            }
            catch (HttpRequestException e)
            {
                run.Count("no answer");
                if (!await AliveAsync(anonymous)) { run.Fail(i, "the process stopped answering", $"after {call}: {e}"); break; }
                run.Fail(i, $"no answer at {call.Path}: {e.InnerException?.Message ?? e.Message}", $"{call}: {e}");
                continue;
            }
            run.Count((call is RawCase ? "raw " : "") + outcome.Code);

            if (outcome.Code is StatusCode.Unknown or StatusCode.Internal or StatusCode.Unavailable && !(call is RawCase bad && !Readable(bad)))
                run.Fail(i, $"{outcome.Code} at {call.Path}{(call is RawCase ? " (raw)" : "")}", $"{call}\n  status: {outcome.Code} {outcome.Detail}");
            if (outcome.Code is not (StatusCode.OK or StatusCode.Cancelled)
                && await log.AppendedSinceAsync(head, [.. reportingNodes, .. AcceptedWatch(call, outcome.Detail)]) is { Count: > 0 } stored)
                run.Fail(i, $"{outcome.Code} that stored events at {call.Path}", $"stored {string.Join(", ", stored)}: {call}\n  status: {outcome.Detail}");
            if (call is TypedCase { Method.Name: "Sync" } sync) reportingNodes.UnionWith(NodesNamed(sync).Select(n => $"node-{n}"));
            if (i % HealthEvery == HealthEvery - 1 && !await AliveAsync(anonymous)) { run.Fail(i, "/healthz stopped answering 200", "after this case"); break; }
        }

        if (!await AliveAsync(anonymous)) run.Fail(run.Tried, "/healthz is not 200 after the run", "after the last case");
        run.Verdict("gRPC", Cp.Log);
    }

    /// <summary>
    /// Whether the gRPC library can read a raw request into the method's messages: a gRPC content type, no compression,
    /// frames whose lengths are true and whose payloads parse, exactly one for a unary method. What it cannot read it
    /// answers itself before any of the control plane's code runs (INTERNAL for the content type or a missing frame,
    /// UNKNOWN for a payload that is no protobuf), so only a readable request holds the control plane to the property.
    /// </summary>
    private static bool Readable(RawCase call)
    {
        var method = Methods.FirstOrDefault(m => $"/{m.Service.FullName}/{m.Name}" == call.Path);
        if (method is null || call.ContentType is not ("application/grpc" or "application/grpc+proto") || call.Encoding is not (null or "identity")) return false;
        var body = call.Body;
        var frames = 0;
        for (; body.Length > 0; frames++)
        {
            if (body.Length < 5 || body[0] != 0) return false;
            var length = (long)body[1] << 24 | (long)body[2] << 16 | (long)body[3] << 8 | body[4];
            if (body.Length - 5 < length) return false;
            try { method.InputType.Parser.ParseFrom(body, 5, (int)length); }
            catch (InvalidProtocolBufferException) { return false; }
            body = body[(5 + (int)length)..];
        }
        return method.IsClientStreaming || frames == 1;
    }

    /// <summary>
    /// The stream of the node a Sync call watched when the call was refused after its watch (on an ack): the watch was
    /// accepted, and what it recorded of the node is no refusal's doing. A refused watch has no such stream.
    /// </summary>
    private static IEnumerable<string> AcceptedWatch(GrpcCase call, string refusal) =>
        call is TypedCase { Method.Name: "Sync", Messages: [SyncRequest { Watch: { } watch }, ..] } && !refusal.StartsWith("watch", StringComparison.Ordinal)
            ? [$"node-{watch.Node}"]
            : [];

    private static IEnumerable<string> NodesNamed(TypedCase sync) =>
        sync.Messages.OfType<SyncRequest>().SelectMany(r => new[] { r.Watch?.Node, r.Ack?.Node }).OfType<string>();

    private static async Task<(StatusCode, string)> CallAsync(CallInvoker invoker, TypedCase call)
    {
        var method = new Method<IMessage, IMessage>(
            call.Method.IsClientStreaming || call.Method.IsServerStreaming ? MethodType.DuplexStreaming : MethodType.Unary,
            call.Method.Service.FullName, call.Method.Name,
            Marshaller(call.Method.InputType), Marshaller(call.Method.OutputType));
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        deadline.CancelAfter(TimeSpan.FromSeconds(30));
        try
        {
            if (method.Type == MethodType.Unary)
            {
                await invoker.AsyncUnaryCall(method, null, new CallOptions(cancellationToken: deadline.Token), call.Messages[0]).ResponseAsync;
                return (StatusCode.OK, "");
            }
            using var stream = invoker.AsyncDuplexStreamingCall(method, null, new CallOptions(cancellationToken: deadline.Token));
            foreach (var message in call.Messages) await stream.RequestStream.WriteAsync(message, deadline.Token);
            await stream.RequestStream.CompleteAsync();
            // An accepted watch streams until the client hangs up; a refused one ends with its status before that.
            using var listen = CancellationTokenSource.CreateLinkedTokenSource(deadline.Token);
            listen.CancelAfter(SyncListen);
            try { await foreach (var _ in stream.ResponseStream.ReadAllAsync(listen.Token)) { } }
            catch (RpcException e) when (e.StatusCode == StatusCode.Cancelled && listen.IsCancellationRequested && !deadline.IsCancellationRequested)
            {
                return (StatusCode.Cancelled, "still streaming when the client hung up");
            }
            return (StatusCode.OK, "");
        }
        catch (RpcException e) when (!(e.StatusCode == StatusCode.Cancelled && deadline.IsCancellationRequested))
        {
            return (e.StatusCode, e.Status.Detail);
        }
    }

    private static Marshaller<IMessage> Marshaller(MessageDescriptor type) =>
        Marshallers.Create(m => m.ToByteArray(), bytes => type.Parser.ParseFrom(bytes));

    private static async Task<(StatusCode, string)> SendRawAsync(HttpClient raw, RawCase call)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, call.Path)
        {
            Version = HttpVersion.Version20, VersionPolicy = HttpVersionPolicy.RequestVersionExact, Content = new ByteArrayContent(call.Body),
        };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", TestTokens.Admin);
        request.Headers.TryAddWithoutValidation("te", "trailers");
        request.Content.Headers.TryAddWithoutValidation("Content-Type", call.ContentType);
        if (call.Encoding is not null) request.Headers.TryAddWithoutValidation("grpc-encoding", call.Encoding);
        // A readable watch on the Sync path is accepted and streams until the client hangs up, as in a typed call.
        var streaming = Methods.Any(m => m.IsServerStreaming && $"/{m.Service.FullName}/{m.Name}" == call.Path);
        using var listen = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        if (streaming) listen.CancelAfter(SyncListen * 3);
        using var response = await raw.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, listen.Token);
        try { await response.Content.ReadAsByteArrayAsync(listen.Token); }
        catch (OperationCanceledException) when (streaming && listen.IsCancellationRequested && !Ct.IsCancellationRequested)
        {
            return (StatusCode.Cancelled, "still streaming when the client hung up");
        }
        // A call refused before it starts answers "trailers-only": the status is among the headers.
        var status = response.TrailingHeaders.TryGetValues("grpc-status", out var s) ? s.First()
            : response.Headers.TryGetValues("grpc-status", out var h) ? h.First() : null;
        var message = response.TrailingHeaders.TryGetValues("grpc-message", out var m) ? m.First()
            : response.Headers.TryGetValues("grpc-message", out var hm) ? hm.First() : "";
        if (status is null)
            // Not a gRPC answer at all (a content type that is not gRPC): an HTTP status is all there is.
            return ((int)response.StatusCode >= 500 ? StatusCode.Internal : StatusCode.InvalidArgument, $"HTTP {(int)response.StatusCode} without grpc-status");
        return ((StatusCode)int.Parse(status, System.Globalization.CultureInfo.InvariantCulture), Uri.UnescapeDataString(message));
    }

    private static async Task<bool> AliveAsync(HttpClient anonymous)
    {
        try
        {
            using var health = await anonymous.GetAsync("healthz", Ct);
            return health.StatusCode == HttpStatusCode.OK;
        }
        catch (HttpRequestException) { return false; }
        catch (TaskCanceledException) when (!Ct.IsCancellationRequested) { return false; }
    }

    private static string Show(IMessage message)
    {
        // As the server reads it (the wire holds UTF-8, so a lone surrogate arrives as U+FFFD), in the diagnostic form,
        // which also shows a timestamp out of range.
        var text = message.Descriptor.Parser.ParseFrom(message.ToByteArray()).ToString()!;
        return text.Length > 400 ? text[..400] + $"… ({text.Length} characters)" : text;
    }

    // ---- generators ----

    private static Gen<GrpcCase> TypedCaseFor(MethodDescriptor method)
    {
        var message = MessageOf(method.InputType, depth: 3);
        return method.IsClientStreaming
            ? Gen.Choose(1, 4).SelectMany(n => Gen.ListOf(message, n)).Select(m => (GrpcCase)new TypedCase(method, m.ToArray()))
            : message.Select(m => (GrpcCase)new TypedCase(method, [m]));
    }

    /// <summary>Valid messages the control plane accepts, as seeds: some fields of them are then replaced.</summary>
    private static IMessage? Seed(MessageDescriptor type) => type.FullName switch
    {
        "mesh.management.v1.ApplyPolicyRequest" => new ApplyPolicyRequest { Namespace = "fuzz", Name = "web", Document = FuzzSeeds.Policies[0] },
        "mesh.management.v1.PreviewApplyPolicyRequest" => new PreviewApplyPolicyRequest
        {
            Policy = new ApplyPolicyRequest { Namespace = "fuzz", Name = "web", Document = FuzzSeeds.Policies[0] }, Window = "1h",
        },
        "mesh.management.v1.PreviewDeletePolicyRequest" => new PreviewDeletePolicyRequest { Policy = new PolicyRef { Namespace = "fuzz", Name = "web" }, Window = "1h" },
        "mesh.management.v1.RollbackPoliciesRequest" => new RollbackPoliciesRequest { To = "1", Namespace = "fuzz", Name = "web", DryRun = true, Window = "1h" },
        "mesh.management.v1.EndpointRegistration" => new EndpointRegistration
        {
            Namespace = "fuzz", Name = "web", Node = "node-1", Ip = "10.211.0.1", Interface = "lxcweb", Labels = { ["app"] = "web" },
            Ports = { new EndpointPort { Name = "http", Port = 80, Protocol = "TCP" } },
        },
        "mesh.management.v1.PolicyRef" or "mesh.management.v1.EndpointRef" => type.Parser.ParseFrom(new EndpointRef { Namespace = "fuzz", Name = "web" }.ToByteArray()),
        "mesh.management.v1.NodeRef" => new NodeRef { Node = "node-1" },
        "mesh.agent.v1.SyncRequest" => new SyncRequest { Watch = new WatchRequest { Node = "node-fuzz", Addresses = { "10.211.1.1" } } },
        _ => null,
    };

    private static Gen<IMessage> MessageOf(MessageDescriptor type, int depth)
    {
        if (type.FullName == Timestamp.Descriptor.FullName) return Timestamps;
        var fields = type.Fields.InDeclarationOrder().ToArray();
        if (fields.Length == 0) return Gen.Constant(type.Parser.ParseFrom(ByteString.Empty));
        var assignment = Gen.Elements(fields).SelectMany(f => AssignmentOf(f, depth));
        var seed = Seed(type);
        var fresh = Gen.Choose(0, fields.Length + 2).SelectMany(n => Gen.ListOf(assignment, n))
            .Select(changes => Apply(type.Parser.ParseFrom(ByteString.Empty), changes));
        return seed is null ? fresh : Gen.Frequency(
            (3, Gen.Choose(1, 2).SelectMany(n => Gen.ListOf(assignment, n)).Select(changes => Apply(type.Parser.ParseFrom(seed.ToByteArray()), changes))),
            (1, Gen.Constant(seed)),
            (2, fresh));
    }

    private static IMessage Apply(IMessage message, IEnumerable<Action<IMessage>> changes)
    {
        foreach (var change in changes) change(message);
        return message;
    }

    /// <summary>Sets one field: a value for a singular field, a list for a repeated one (sometimes huge), entries for a map.</summary>
    private static Gen<Action<IMessage>> AssignmentOf(FieldDescriptor field, int depth)
    {
        if (field.IsMap)
        {
            var key = ValueOf(field.MessageType.FindFieldByNumber(1), depth);
            var value = ValueOf(field.MessageType.FindFieldByNumber(2), depth);
            var entry = from k in key from v in value select (k, v);
            var smallEntry = from k in HostileText.Short from v in HostileText.Short select ((object)k, (object)v);
            return Many(entry, smallEntry).Select(entries => (Action<IMessage>)(m =>
            {
                var map = (IDictionary)field.Accessor.GetValue(m);
                foreach (var (k, v) in entries) map[k] = v;
            }));
        }
        if (field.IsRepeated)
            return Many(ValueOf(field, depth), field.FieldType == FieldType.String ? HostileText.Short.Select(v => (object)v) : ValueOf(field, 0))
                .Select(values => (Action<IMessage>)(m =>
            {
                var list = (IList)field.Accessor.GetValue(m);
                foreach (var v in values) list.Add(v);
            }));
        return ValueOf(field, depth).Select(v => (Action<IMessage>)(m => field.Accessor.SetValue(m, v)));
    }

    /// <summary>The items of a repeated field or map: mostly a few of any size, sometimes thousands of small ones.</summary>
    private static Gen<List<T>> Many<T>(Gen<T> item, Gen<T> small) => Gen.Frequency(
        (8, Gen.Choose(0, 4).SelectMany(n => Gen.ListOf(item, n))),
        (2, Gen.Choose(5, 300).SelectMany(n => Gen.ListOf(small, n))),
        (1, Gen.Choose(1_000, 20_000).SelectMany(n => Gen.ListOf(small, n))));

    private static Gen<object> ValueOf(FieldDescriptor field, int depth) => field.FieldType switch
    {
        FieldType.String when field.Name == "document" => PolicyDocuments.Select(d => (object)d),
        FieldType.String => HostileText.Any.Select(s => (object)s),
        FieldType.Bool => Gen.Elements<object>(true, false),
        FieldType.Int32 or FieldType.SInt32 or FieldType.SFixed32 => HostileText.Number.Select(n => (object)unchecked((int)n)),
        FieldType.Int64 or FieldType.SInt64 or FieldType.SFixed64 => HostileText.Number.Select(n => (object)n),
        FieldType.UInt32 or FieldType.Fixed32 => HostileText.Number.Select(n => (object)unchecked((uint)n)),
        FieldType.UInt64 or FieldType.Fixed64 => HostileText.Number.Select(n => (object)unchecked((ulong)n)),
        FieldType.Double => Gen.Elements<object>(0.0, -1.0, double.NaN, double.PositiveInfinity, double.MaxValue, 1e-300),
        FieldType.Float => Gen.Elements<object>(0f, -1f, float.NaN, float.NegativeInfinity, float.MaxValue),
        FieldType.Bytes => FuzzSeeds.RawBytes.Select(b => (object)ByteString.CopyFrom(b)),
        // Numbers the enum does not name travel too: proto3 keeps them.
        FieldType.Enum => Gen.Frequency(
            (3, Gen.Elements(field.EnumType.Values.Select(v => v.Number).ToArray())),
            (1, Gen.Elements(-1, 2, 99, int.MaxValue, int.MinValue)))
            .Select(n => System.Enum.ToObject(field.EnumType.ClrType, n)),
        FieldType.Message when depth > 0 => MessageOf(field.MessageType, depth - 1).Select(m => (object)m),
        FieldType.Message => Gen.Constant((object)field.MessageType.Parser.ParseFrom(ByteString.Empty)),
        var other => throw new NotSupportedException($"no generator for {other} ({field.FullName})"),
    };

    /// <summary>Times at and beyond the ends of what a timestamp may hold, and nanoseconds out of range.</summary>
    private static readonly Gen<IMessage> Timestamps =
        from seconds in Gen.Frequency(
            (3, Gen.Choose(0, 2_000_000_000).Select(s => (long)s)),
            (2, Gen.Elements(long.MinValue, long.MaxValue, -62_135_596_800L, -62_135_596_801L, 253_402_300_799L, 253_402_300_800L, -1L)))
        from nanos in Gen.Frequency((4, Gen.Constant(0)), (1, Gen.Elements(-1, 999_999_999, 1_000_000_000, int.MaxValue, int.MinValue)))
        select (IMessage)new Timestamp { Seconds = seconds, Nanos = nanos };

    private static readonly Gen<string> PolicyDocuments = Gen.Frequency(
        (4, Gen.Elements(FuzzSeeds.Policies).SelectMany(p => p.StartsWith('{') ? FuzzSeeds.MutatedJson(p) : FuzzSeeds.MutatedText(p))),
        (1, Gen.Elements([.. FuzzSeeds.Policies, .. FuzzSeeds.ClusterwidePolicies])),
        (2, FuzzSeeds.Yaml),
        (1, FuzzSeeds.Json(4)),
        (1, FuzzSeeds.DeepNesting),
        (1, HostileText.Any));

    // ---- raw frames ----

    private static readonly string[] RawPaths =
    [
        .. Methods.Select(m => $"/{m.Service.FullName}/{m.Name}"),
        "/mesh.management.v1.Policies/Nope", "/mesh.management.v1.Nope/ApplyPolicy", "/grpc.health.v1.Health/Check", "/", "/mesh.agent.v1.AgentSync/Sync/extra",
    ];

    private static readonly Gen<GrpcCase> RawCases =
        from path in Gen.Elements(RawPaths)
        from type in Gen.Frequency((8, Gen.Constant("application/grpc")),
            (2, Gen.Elements("application/grpc+proto", "application/grpc+json", "application/grpc; charset=utf-8", "application/grpc-web", "text/plain", "application/json")))
        from encoding in Gen.Frequency((6, Gen.Constant<string?>(null)), (1, Gen.Elements<string?>("gzip", "deflate", "identity", "bogus", "")))
        from body in Frames
        select (GrpcCase)new RawCase(path, type, encoding, body);

    /// <summary>Length-prefixed frames that lie: random bytes, a length past the end, a compressed flag, two messages, nothing at all.</summary>
    private static readonly Gen<byte[]> Frames = Gen.Frequency(
        (3, FuzzSeeds.RawBytes.Select(payload => Frame(0, (uint)payload.Length, payload))),
        (2, FuzzSeeds.RawBytes),
        (1, from payload in FuzzSeeds.RawBytes from claimed in Gen.Elements(1u, 5u, 1_000u, 16_777_217u, uint.MaxValue, 0x7FFF_FFFFu)
            select Frame(0, (uint)payload.Length + claimed, payload)),
        (1, FuzzSeeds.RawBytes.Select(payload => Frame(1, (uint)payload.Length, payload))),
        (1, from flag in Gen.Choose(2, 255) from payload in FuzzSeeds.RawBytes select Frame((byte)flag, (uint)payload.Length, payload)),
        (1, FuzzSeeds.RawBytes.Select(payload => (byte[])[.. Frame(0, (uint)payload.Length, payload), .. Frame(0, (uint)payload.Length, payload)])),
        (1, Gen.Elements<byte[]>([], [0], [0, 0, 0, 0, 0], [0, 0, 0], Encoding.UTF8.GetBytes("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"))));

    private static byte[] Frame(byte flag, uint length, byte[] payload) =>
        [flag, (byte)(length >> 24), (byte)(length >> 16), (byte)(length >> 8), (byte)length, .. payload];
}
