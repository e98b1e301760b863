using System.Text.Json;
using Mesh.Contracts.Api;
using Mesh.NodeAgent.Lab;
using Spectre.Console;

namespace Mesh.Meshctl.Lab;

/// <summary>How the lab commands answer: tables and colour for people, JSON for machines, errors with a next step.</summary>
internal static class LabConsole
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

    /// <summary>Runs a command body; turns lab and control-plane failures into a readable error and exit code 1.</summary>
    public static async Task<int> GuardAsync(Func<Task<int>> body)
    {
        try { return await body(); }
        catch (LabException e) { return Error(e.Message); }
        catch (ControlPlaneUnreachableException e)
        {
            return Error($"{e.Message}\n  start it (./dev up) or point meshctl at it with --server URL or MESH_SERVER");
        }
        catch (MeshApiException e) { return Error(e.Message); }
        catch (UnauthorizedAccessException e) { return Error($"{e.Message}\n  the lab changes network namespaces: run meshctl as root"); }
        catch (IOException e) { return Error(e.Message); }
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
            throw new LabException($"invalid duration '{text}': write e.g. 1s, 500ms or 2m");
        }
    }
}
