using System.Net;
using Mesh.ControlPlane.Health;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Mesh.ControlPlane.Tests.Health;

/// <summary>Liveness, readiness and the API's wait for the start's replay, with a replay the test finishes when it chooses.</summary>
public sealed class ReadinessTests : IAsyncDisposable
{
    private readonly TaskCompletionSource _replayed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private WebApplication? _app;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private async Task<HttpClient> StartAsync(TimeSpan waitAtMost)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0));
        builder.Services.AddProblemDetails();
        builder.Services.AddSingleton(new StartupReplay(() => _replayed.Task, waitAtMost));
        _app = builder.Build();
        _app.UseStartupReplay();
        _app.MapHealthEndpoints();
        _app.MapGet("/v1/status", () => TypedResults.Ok(new { version = 7 }));
        await _app.StartAsync(Ct);
        var address = _app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.Single();
        return new HttpClient { BaseAddress = new Uri(address) };
    }

    public async ValueTask DisposeAsync()
    {
        if (_app is not null) await _app.DisposeAsync();
    }

    [Fact]
    public async Task Readyz_is_503_with_Retry_After_until_the_replay_is_done_while_healthz_is_200()
    {
        using var http = await StartAsync(TimeSpan.FromSeconds(30));

        using (var alive = await http.GetAsync("/healthz", Ct)) Assert.Equal(HttpStatusCode.OK, alive.StatusCode);
        using (var notReady = await http.GetAsync("/readyz", Ct))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, notReady.StatusCode);
            Assert.Equal(TimeSpan.FromSeconds(HealthModule.ReplayRetryAfterSeconds), notReady.Headers.RetryAfter?.Delta);
            Assert.Contains("replaying the event log", await notReady.Content.ReadAsStringAsync(Ct));
        }

        _replayed.SetResult();

        using (var ready = await http.GetAsync("/readyz", Ct)) Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        using (var alive = await http.GetAsync("/healthz", Ct)) Assert.Equal(HttpStatusCode.OK, alive.StatusCode);
    }

    [Fact]
    public async Task An_API_request_waits_for_the_replay_and_is_answered_with_what_it_replayed()
    {
        using var http = await StartAsync(TimeSpan.FromSeconds(30));

        var waiting = http.GetAsync("/v1/status", Ct);
        await Task.Delay(200, Ct);
        Assert.False(waiting.IsCompleted, "answered before the replay was done");
        _replayed.SetResult();

        using var answer = await waiting;
        Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
    }

    [Fact]
    public async Task An_API_request_that_waits_too_long_is_503_with_Retry_After()
    {
        using var http = await StartAsync(TimeSpan.FromMilliseconds(200));

        using var answer = await http.GetAsync("/v1/status", Ct);

        Assert.Equal(HttpStatusCode.ServiceUnavailable, answer.StatusCode);
        Assert.Equal(TimeSpan.FromSeconds(HealthModule.ReplayRetryAfterSeconds), answer.Headers.RetryAfter?.Delta);
        Assert.Equal("application/problem+json", answer.Content.Headers.ContentType?.MediaType);
    }
}
