using System.Text.Json;
using Mesh.Contracts.Api;
using Mesh.Lab;
using Spectre.Console;

namespace Mesh.Meshctl.Cli;

/// <summary>How meshctl answers: tables and colour for people, JSON for machines, and errors that say what to do next.</summary>
public static class Output
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    public static void WriteJson<T>(T value) => Console.Out.WriteLine(JsonSerializer.Serialize(value, Json));

    public static Table Table(params string[] columns)
    {
        var table = new Table().Border(TableBorder.Simple);
        foreach (var c in columns) table.AddColumn(new TableColumn($"[bold]{c}[/]"));
        return table;
    }

    public static string Esc(object? value) => Markup.Escape(value?.ToString() ?? "");

    public static void Info(string markup) => AnsiConsole.MarkupLine(markup);

    public static void Warn(string message) => AnsiConsole.MarkupLine($"[yellow]warning:[/] {Esc(message)}");

    public static int Error(string message)
    {
        AnsiConsole.MarkupLine($"[red]error:[/] {Esc(message)}");
        return 1;
    }

    /// <summary>Runs a command's body and turns failures into readable errors and exit codes:
    /// 0 ok, 1 refused or failed, 3 control plane unreachable, 4 no valid credentials.</summary>
    public static async Task<int> GuardAsync(Func<Task<int>> body)
    {
        try
        {
            return await body();
        }
        catch (ControlPlaneUnreachableException e) when (e.InnerException?.InnerException is System.Security.Authentication.AuthenticationException tls)
        {
            AnsiConsole.MarkupLine($"[red]error:[/] the control plane at {Esc(e.Address)} presented a certificate meshctl does not trust: {Esc(tls.Message)}");
            AnsiConsole.MarkupLine("  Give the CA that issued it with [bold]--ca-file FILE[/] or [bold]MESH_CA_FILE[/] (./dev up names its CA in meshctl's context file).");
            return 3;
        }
        catch (ControlPlaneUnreachableException e)
        {
            AnsiConsole.MarkupLine($"[red]error:[/] cannot reach the control plane at {Esc(e.Address)} ({Esc(e.InnerException?.Message ?? "no answer")}).");
            AnsiConsole.MarkupLine("  Start it with [bold]./dev up[/], or point meshctl at it with [bold]--server URL[/] or [bold]MESH_SERVER[/].");
            if (e.Address.Scheme == Uri.UriSchemeHttp) AnsiConsole.MarkupLine("  A control plane that serves TLS (as ./dev up starts it) has an [bold]https://[/] address.");
            return 3;
        }
        catch (MeshApiException e) when (e.Status == System.Net.HttpStatusCode.Unauthorized)
        {
            AnsiConsole.MarkupLine($"[red]error:[/] the control plane refused meshctl's credentials: {Esc(e.Message)}");
            AnsiConsole.MarkupLine($"  Run [bold]./dev up[/] (it writes meshctl's context file, {Esc(MeshContext.Path)}, with an admin token),");
            AnsiConsole.MarkupLine("  or set [bold]MESH_TOKEN[/] to a token of the control plane's token file, or set [bold]MESH_CONFIG[/] to a context file.");
            return 4;
        }
        catch (Exception e) when (e is MeshApiException or LabException or IOException or FormatException)
        {
            return Error(e.Message);
        }
        catch (UnauthorizedAccessException e)
        {
            return Error($"{e.Message}\n  the lab changes network namespaces and loads BPF: run meshctl as root");
        }
        catch (TaskCanceledException)
        {
            return Error("the control plane did not answer in time; is it overloaded or stuck? (see its log)");
        }
    }

    /// <summary>"1s", "500ms", "2m" or a bare number of seconds.</summary>
    public static TimeSpan ParseDuration(string text)
    {
        var t = text.Trim();
        static double Number(string s) => double.Parse(s, System.Globalization.CultureInfo.InvariantCulture);
        try
        {
            if (t.EndsWith("ms", StringComparison.Ordinal)) return TimeSpan.FromMilliseconds(Number(t[..^2]));
            if (t.EndsWith('s')) return TimeSpan.FromSeconds(Number(t[..^1]));
            if (t.EndsWith('m')) return TimeSpan.FromMinutes(Number(t[..^1]));
            return TimeSpan.FromSeconds(Number(t));
        }
        catch (FormatException)
        {
            throw new FormatException($"invalid duration '{text}': write e.g. 1s, 500ms or 2m");
        }
    }
}
