using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using Mesh.ControlPlane.Commands;
using Mesh.ControlPlane.EventStore;

namespace Mesh.ControlPlane.Cluster;

/// <summary>No member could take the command within <see cref="ClusterOptions.RouteTimeout"/>; the API answers 503.</summary>
public sealed class ShardUnavailable(int shard, TimeSpan waited)
    : Exception($"shard {shard} has had no reachable owner for {waited.TotalSeconds:0.#} s; check `meshctl cluster status` and that PostgreSQL is up, then retry");

/// <summary>
/// Sends a command to its aggregate wherever it lives: to this member's entity host when it owns the aggregate's
/// shard, otherwise to the owner over HTTP (the owner answers exactly as if it had been asked directly). While a
/// shard is changing hands (a member died, joined or left) it retries until the new owner serves it. Retrying is safe
/// because commands are idempotent: a command that already took effect decides nothing the second time.
/// </summary>
public sealed partial class CommandRouter(EntityHost host, ClusterMember member, ClusterOptions options, HttpClient http, ILogger<CommandRouter> log)
{
    public const string ForwardPath = "/internal/v1/commands";

    /// <summary>Marks a forwarded request, so an owner that just lost the shard answers "not me" instead of forwarding again.</summary>
    public const string ForwardedHeader = "X-Mesh-Forwarded-By";

    public async Task<CommandResult<TEvent>> SendAsync<TCommand, TEvent, TState>(
        AggregateType<TCommand, TEvent, TState> type, string streamId, TCommand command, CommandContext context, CancellationToken ct)
        where TCommand : class where TEvent : class
    {
        var shard = ShardMap.ShardOf(streamId, options.Shards);
        var clock = Stopwatch.StartNew();
        var delay = TimeSpan.FromMilliseconds(20);
        while (true)
        {
            var owner = member.OwnerOf(shard);
            try
            {
                if (owner == member.Me) return await host.AskAsync(type, streamId, command, context, ct);
                if (owner is not null) return await ForwardAsync(type, owner, streamId, command, context, ct);
            }
            catch (NotShardOwner) { }
            catch (HttpRequestException e) when (!ct.IsCancellationRequested)
            {
                LogForwardFailed(shard, owner!.Id, e.Message);
            }
            catch (Exception e) when (DatabaseErrors.IsConnectionLoss(e) && !ct.IsCancellationRequested)
            {
                // The database is restarting or unreachable: wait it out like a moving shard, answer 503 if it lasts.
                LogDatabaseAway(shard, e.Message);
            }
            if (clock.Elapsed > options.RouteTimeout) throw new ShardUnavailable(shard, clock.Elapsed);
            await Task.Delay(delay, ct);
            delay = TimeSpan.FromMilliseconds(Math.Min(delay.TotalMilliseconds * 2, 250));
        }
    }

    private async Task<CommandResult<TEvent>> ForwardAsync<TCommand, TEvent, TState>(
        AggregateType<TCommand, TEvent, TState> type, MemberInfo owner, string streamId, TCommand command, CommandContext context, CancellationToken ct)
        where TCommand : class where TEvent : class
    {
        var request = new ForwardedCommand(type.Name, streamId, type.EncodeCommand(command), context.Principal, context.CorrelationId, context.Time);
        using var message = new HttpRequestMessage(HttpMethod.Post, new Uri(new Uri(owner.ApiUrl), ForwardPath))
        {
            Content = JsonContent.Create(request, options: EventCodec.Json),
            Headers = { { ForwardedHeader, member.Me.Id } },
        };
        using var response = await http.SendAsync(message, ct);
        switch (response.StatusCode)
        {
            case HttpStatusCode.OK:
                var result = await response.Content.ReadFromJsonAsync<ForwardedResult>(EventCodec.Json, ct);
                return type.FromForwarded(result!);
            case HttpStatusCode.MisdirectedRequest:
                throw new NotShardOwner(ShardMap.ShardOf(streamId, options.Shards));
            case HttpStatusCode.Conflict:
                throw new DomainRuleViolation(await ProblemDetailAsync(response, ct));
            case HttpStatusCode.ServiceUnavailable:
                throw new HttpRequestException($"{owner.Id} answered 503: {await ProblemDetailAsync(response, ct)}");
            default:
                throw new InvalidOperationException($"{owner.Id} answered {(int)response.StatusCode}: {await ProblemDetailAsync(response, ct)}");
        }
    }

    private static async Task<string> ProblemDetailAsync(HttpResponseMessage response, CancellationToken ct)
    {
        try
        {
            var problem = await response.Content.ReadFromJsonAsync<Microsoft.AspNetCore.Mvc.ProblemDetails>(ct);
            return problem?.Detail ?? problem?.Title ?? response.ReasonPhrase ?? "";
        }
        catch (System.Text.Json.JsonException) { return response.ReasonPhrase ?? ""; }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "shard {Shard}: the database is away ({Reason}); retrying")]
    private partial void LogDatabaseAway(int shard, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "forwarding to the owner of shard {Shard} ({Owner}) failed: {Reason}; retrying")]
    private partial void LogForwardFailed(int shard, string owner, string reason);
}
