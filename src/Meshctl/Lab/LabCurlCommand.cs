using System.CommandLine;
using Mesh.Lab;
using Mesh.Meshctl.Cli;

namespace Mesh.Meshctl.Lab;

/// <summary>meshctl lab curl: one HTTP request from a lab place, through its datapath, to see what L7 policy lets through.</summary>
internal static class LabCurlCommand
{
    public static Command Build()
    {
        var from = new Argument<string>("FROM") { Description = "Where the request starts: a pod NS/NAME, node/NAME or outside/NAME" };
        var url = new Argument<string>("URL") { Description = "http://HOST[:PORT]/PATH; HOST is an IPv4 address, an outside host or a node of the lab" };
        var method = new Option<string>("--request", "-X") { Description = "HTTP method", DefaultValueFactory = _ => "GET" };
        var headers = new Option<string[]>("--header", "-H") { Description = "A request header, 'Name: value' (repeat for more)", AllowMultipleArgumentsPerToken = false };
        var data = new Option<string?>("--data", "-d") { Description = "A request body" };
        var http2 = new Option<bool>("--http2") { Description = "HTTP/2 with prior knowledge (as gRPC clients speak it), not HTTP/1.1" };
        var timeout = new Option<string>("--timeout") { Description = "How long to wait for the whole answer (5s, 500ms)", DefaultValueFactory = _ => "5s" };
        var command = new Command("curl",
            "Send one HTTP request from a lab place and show the status, body and time; exit 0 when an HTTP answer came (any status), 1 when none did")
        {
            from, url, method, headers, data, http2, timeout,
        };
        command.SetAction((parse, ct) => Output.GuardAsync(async () =>
        {
            var state = LabContext.Open(parse).Read() ?? throw new LabException("the lab is not up; start it with `meshctl lab up`");
            var source = LabPlaces.Source(state, parse.GetValue(from)!);
            var request = new LabHttpRequest(
                LabHttp.ParseUrl(parse.GetValue(url)!), parse.GetValue(method)!.ToUpperInvariant(),
                (parse.GetValue(headers) ?? []).Select(LabHttp.ParseHeader).ToList(), parse.GetValue(http2), parse.GetValue(data));
            var result = await LabHttp.SendAsync(source.Netns, request, LabHttp.StateResolver(state, source), Output.ParseDuration(parse.GetValue(timeout)!), ct);

            if (GlobalOptions.Json(parse))
                Output.WriteJson(new
                {
                    from = source.ToString(), url = request.Url.ToString(), request.Method, result.Address, result.Answered, result.Status,
                    result.HttpVersion, result.Body, timeMs = Math.Round(result.Elapsed.TotalMilliseconds, 1), result.Error,
                });
            else if (result.Answered)
            {
                var colour = result.Status < 400 ? "green" : result.Status < 500 ? "yellow" : "red";
                Output.Info($"[{colour}]{result.HttpVersion} {result.Status}[/] {Output.Esc(source)} → {Output.Esc(request.Method)} {Output.Esc(request.Url)}" +
                            $" ({Output.Esc(result.Address)}) in {result.Elapsed.TotalMilliseconds:0} ms");
                Console.Out.Write(result.Body);
                if (result.Body is { Length: > 0 } body && !body.EndsWith('\n')) Console.Out.WriteLine();
            }
            else
                Output.Info($"[red]✗[/] {Output.Esc(source)} → {Output.Esc(request.Method)} {Output.Esc(request.Url)}: {Output.Esc(result.Error)}");
            return result.Answered ? 0 : 1;
        }));
        return command;
    }
}
