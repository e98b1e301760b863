using System.Text.Json;
using Mesh.Contracts.Api;
using Spectre.Console;

namespace Mesh.Meshctl.Cli;

/// <summary>How meshctl answers: tables for people, JSON for machines, and errors that say what to do next.</summary>
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

    public static int Error(string message)
    {
        AnsiConsole.MarkupLine($"[red]error:[/] {Markup.Escape(message)}");
        return 1;
    }

    /// <summary>Runs a command's body and turns the control plane's refusals into readable errors and exit codes:
    /// 0 ok, 1 refused or failed, 3 control plane unreachable.</summary>
    public static async Task<int> GuardAsync(Func<Task<int>> body)
    {
        try
        {
            return await body();
        }
        catch (ControlPlaneUnreachableException e)
        {
            AnsiConsole.MarkupLine($"[red]error:[/] cannot reach the control plane at {Markup.Escape(e.Address.ToString())}.");
            AnsiConsole.MarkupLine("  Start it with [bold]./dev up[/], or point meshctl at it with [bold]--server URL[/] or [bold]MESH_SERVER[/].");
            return 3;
        }
        catch (MeshApiException e)
        {
            return Error(e.Message);
        }
        catch (IOException e)
        {
            return Error(e.Message);
        }
        catch (TaskCanceledException)
        {
            return Error("the control plane did not answer in time; is it overloaded or stuck? (see its log)");
        }
    }
}
