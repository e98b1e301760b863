using System.Net.Sockets;
using System.Text.Json;
using Mesh.ControlPlane.Cluster;
using Mesh.ControlPlane.Commands;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace Mesh.ControlPlane.Tests.Commands;

/// <summary>What a caller is told when a command fails: what to do next, and never a 500 for a passing outage.</summary>
public sealed class CommandErrorsTests
{
    [Fact]
    public async Task A_database_that_cannot_be_reached_is_503_and_says_to_retry()
    {
        var (status, body) = await HandleAsync(new NpgsqlException("Failed to connect to 127.0.0.1:5432", new SocketException((int)SocketError.ConnectionRefused)));

        Assert.Equal(StatusCodes.Status503ServiceUnavailable, status);
        Assert.Contains("database", body.GetProperty("title").GetString(), StringComparison.Ordinal);
        Assert.Contains("retry", body.GetProperty("title").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_refused_command_is_409_and_an_unknown_failure_is_left_to_the_500_handler()
    {
        Assert.Equal(StatusCodes.Status409Conflict, (await HandleAsync(new DomainRuleViolation("no"))).Status);
        Assert.Equal(StatusCodes.Status503ServiceUnavailable, (await HandleAsync(new ShardUnavailable("identities", TimeSpan.FromSeconds(5), null))).Status);
        // A database error that retrying does not mend (a bug, a constraint) is not dressed up as an outage.
        Assert.Null(await TryHandleAsync(new NpgsqlException("syntax error")));
        Assert.Null(await TryHandleAsync(new InvalidOperationException("bug")));
    }

    private static async Task<(int Status, JsonElement Body)> HandleAsync(Exception e) =>
        await TryHandleAsync(e) ?? throw new Xunit.Sdk.XunitException($"{e.GetType().Name} was not handled");

    private static async Task<(int Status, JsonElement Body)?> TryHandleAsync(Exception e)
    {
        var services = new ServiceCollection().AddLogging().AddProblemDetails().BuildServiceProvider();
        var http = new DefaultHttpContext { RequestServices = services };
        http.Response.Body = new MemoryStream();
        var handled = await new CommandErrors(services.GetRequiredService<IProblemDetailsService>()).TryHandleAsync(http, e, TestContext.Current.CancellationToken);
        if (!handled) return null;
        http.Response.Body.Position = 0;
        return (http.Response.StatusCode, JsonDocument.Parse(http.Response.Body).RootElement.Clone());
    }
}
