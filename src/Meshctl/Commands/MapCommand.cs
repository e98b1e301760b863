using System.CommandLine;
using Mesh.Meshctl.Cli;

namespace Mesh.Meshctl.Commands;

/// <summary>meshctl map: the address of the control plane's service map page, ready to open with this context's token.</summary>
public static class MapCommand
{
    public static Command Build()
    {
        var withoutToken = new Option<bool>("--without-token")
        {
            Description = "Print the bare address; the page then asks for a token (one that grants flows.read)",
        };
        var cmd = new Command("map", """
            Print the address of the service map, a web page the control plane serves at /map: workloads as nodes, the
            traffic between them as edges coloured by verdict (green forwarded, red dropped), filters by namespace, verdict
            and time window, live updates, and the flows of an edge with the policy and version that decided them.
            The address carries your token after '#' (a browser never sends that part to a server; the page keeps the
            token in the tab and removes it from the address bar). Treat the printed address as the token itself.
            Your browser must trust the control plane's certificate: with ./dev up, import the CA of the context file.
            Example: xdg-open "$(meshctl map)"
            """) { withoutToken };
        cmd.SetAction(parse =>
        {
            var server = parse.GetValue(GlobalOptions.Server)!.TrimEnd('/');
            var context = MeshContext.Load();
            var url = $"{server}/map";
            if (!parse.GetValue(withoutToken))
            {
                if (context.TokenFor(server) is not { } token)
                    return Output.Error($"no token for {server} ($MESH_TOKEN or the context file's); use --without-token to let the page ask for one");
                url += "#token=" + Uri.EscapeDataString(token);
            }
            if (GlobalOptions.Json(parse)) Output.WriteJson(new { url, certificateAuthority = GlobalOptions.CaFileOf(parse, context) });
            else Console.Out.WriteLine(url);
            return 0;
        });
        return cmd;
    }
}
