using System.CommandLine;
using System.Net;
using System.Net.Sockets;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Grpc.Net.Client;
using Mesh.Contracts.Api;
using Mesh.Contracts.Hubble.Observers;
using Mesh.Contracts.Security;
using Mesh.Meshctl.Cli;

namespace Mesh.Meshctl.Commands.Observe;

/// <summary>
/// meshctl observe: the cluster's flows, as <c>hubble observe</c> shows them and with its flags, from the control
/// plane's Hubble Observer API (every node's flows, kept in the flow history) or from one agent's socket.
/// </summary>
public static class ObserveCommand
{
    /// <summary>Flows shown when no --last, --first, --all, --since or --until says otherwise (Hubble's default).</summary>
    public const int DefaultLast = 20;

    public static Command Build()
    {
        var hubbleServer = new Option<string?>("--hubble-server")
        {
            Description = "Observer API to read: the control plane (default: --server, on https) or one agent's socket (unix:///var/lib/mesh/agent/NODE/hubble.sock); default $MESH_HUBBLE_SERVER",
        };
        var since = new Option<string?>("--since") { Description = "Flows from this time on: RFC 3339 (2026-12-05T14:02:00Z) or a duration back from now (90s, 10m, 2h, 1d)" };
        var until = new Option<string?>("--until") { Description = "Flows up to this time (same forms as --since)" };
        var last = new Option<ulong?>("--last") { Description = $"The newest N flows (default {DefaultLast} unless --since, --until, --first or --all)" };
        var first = new Option<ulong?>("--first") { Description = "The oldest N flows" };
        var all = new Option<bool>("--all") { Description = "Every flow of the window (the control plane sends 10,000 at most per call)" };
        var follow = new Option<bool>("--follow", "-f") { Description = "Keep printing flows as they come (Ctrl-C stops)" };
        var output = new Option<string>("--output", "-o")
        {
            Description = "compact (default), table, dict, json or jsonpb (json: one GetFlowsResponse per line)",
            DefaultValueFactory = _ => "compact",
        };
        output.AcceptOnlyFromAmong(FlowPrinter.Formats);
        var printPolicyNames = new Option<bool>("--print-policy-names") { Description = "Name the policies that allowed or denied each flow, with their version" };

        var cmd = new Command("observe", """
            Show the cluster's flows with their verdict, the rule that decided it and the version, as hubble observe does.
            Filter flags take Hubble's meaning: --from-X/--to-X narrow one side, --X matches either side, repeated
            flags of one kind match any of their values, --not negates the next flag.
              meshctl observe --verdict DROPPED --to-pod default/backend --since 10m
              meshctl observe -f --namespace payments --print-policy-names
              meshctl observe --from-label app=frontend --not --verdict FORWARDED -o json
            """)
        {
            hubbleServer, since, until, last, first, all, follow, output, printPolicyNames,
        };
        foreach (var filter in FilterFlags.Options()) cmd.Options.Add(filter);

        cmd.SetAction((parse, ct) => Output.GuardAsync(async () =>
        {
            var request = new GetFlowsRequest { Follow = parse.GetValue(follow) };
            try
            {
                var (whitelist, blacklist) = FilterFlags.From(parse);
                request.Whitelist.AddRange(whitelist);
                request.Blacklist.AddRange(blacklist);
                var now = DateTimeOffset.UtcNow;
                if (parse.GetValue(since) is { } s) request.Since = Timestamp.FromDateTimeOffset(Time("--since", s, now));
                if (parse.GetValue(until) is { } u) request.Until = Timestamp.FromDateTimeOffset(Time("--until", u, now));
            }
            catch (FormatException e) { return Output.Error(e.Message); }

            if (parse.GetValue(first) is { } firstN)
            {
                if (parse.GetValue(last) is not null) return Output.Error("--first and --last cannot be combined: choose one end");
                if (request.Follow) return Output.Error("--first and --follow cannot be combined: following starts at the newest flows");
                (request.First, request.Number) = (true, firstN);
            }
            else if (parse.GetValue(last) is { } lastN) request.Number = lastN;
            else if (!parse.GetValue(all) && request.Since is null && request.Until is null) request.Number = DefaultLast;

            var address = parse.GetValue(hubbleServer) ?? Environment.GetEnvironmentVariable("MESH_HUBBLE_SERVER") ?? parse.GetValue(GlobalOptions.Server)!;
            var printer = new FlowPrinter(parse.GetValue(GlobalOptions.JsonFlag) ? "json" : parse.GetValue(output)!, parse.GetValue(printPolicyNames));
            using var channel = Channel(address, parse);
            var observer = new Observer.ObserverClient(channel);
            try
            {
                using var call = observer.GetFlows(request, cancellationToken: ct);
                await foreach (var response in call.ResponseStream.ReadAllAsync(ct))
                    if (response.ResponseTypesCase == GetFlowsResponse.ResponseTypesOneofCase.Flow) printer.Print(response);
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.Cancelled && ct.IsCancellationRequested) { }
            catch (OperationCanceledException) when (ct.IsCancellationRequested) { }
            catch (RpcException e) { throw Translate(e, address); }
            return 0;
        }));
        return cmd;
    }

    private static DateTimeOffset Time(string flag, string text, DateTimeOffset now) =>
        TimeArgument.TryParse(text, now, out var time, out var error) ? time : throw new FormatException($"{flag}: {error}");

    /// <summary>
    /// A channel to an Observer: over TLS to the control plane (h2 through ALPN on its API address, with meshctl's token
    /// and CA), or to an agent's unix socket (its file permissions are its access control).
    /// </summary>
    private static GrpcChannel Channel(string address, ParseResult parse)
    {
        if (address.StartsWith("unix://", StringComparison.Ordinal))
        {
            var path = address["unix://".Length..];
            var handler = new SocketsHttpHandler
            {
                ConnectCallback = async (_, ct) =>
                {
                    var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                    try
                    {
                        await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), ct);
                        return new NetworkStream(socket, ownsSocket: true);
                    }
                    catch
                    {
                        socket.Dispose();
                        throw;
                    }
                },
            };
            return GrpcChannel.ForAddress("http://localhost", new GrpcChannelOptions { HttpHandler = handler });
        }
        var server = parse.GetValue(GlobalOptions.Server)!;
        var context = MeshContext.Load();
        var token = context.TokenFor(server);
        return GrpcChannel.ForAddress(address, new GrpcChannelOptions
        {
            HttpHandler = new BearerToken(() => token, new SocketsHttpHandler().TrustingCa(GlobalOptions.CaFileOf(parse, context))),
        });
    }

    /// <summary>The call's failure as meshctl reports the control plane's: what went wrong and what to do next.</summary>
    private static Exception Translate(RpcException e, string address) => e.StatusCode switch
    {
        StatusCode.Unavailable or StatusCode.Internal when e.Status.DebugException is HttpRequestException http =>
            new ControlPlaneUnreachableException(new Uri(address), http),
        StatusCode.Unavailable => new ControlPlaneUnreachableException(new Uri(address), (Exception?)e.Status.DebugException ?? e),
        StatusCode.Unauthenticated => new MeshApiException(HttpStatusCode.Unauthorized, e.Status.Detail, null),
        StatusCode.PermissionDenied => new MeshApiException(HttpStatusCode.Forbidden,
            $"{e.Status.Detail} (reading flows needs the flows.read permission, e.g. the viewer role)", null),
        StatusCode.InvalidArgument => new MeshApiException(HttpStatusCode.BadRequest, e.Status.Detail, null),
        _ => new MeshApiException(HttpStatusCode.BadGateway, $"the Observer API at {address} answered {e.StatusCode}: {e.Status.Detail}", null),
    };
}
