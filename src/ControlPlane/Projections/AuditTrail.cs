using System.Linq.Expressions;
using Marten;
using Mesh.ControlPlane.EventStore;
using Mesh.Contracts.Identity;

namespace Mesh.ControlPlane.Projections;

/// <summary>What to read from the audit trail. Null filters match everything.</summary>
/// <param name="After">Entries after this position, oldest first; null: the newest <paramref name="Limit"/> entries.</param>
/// <param name="Streams">Entries of these streams only (exact ids).</param>
/// <param name="StreamPrefixes">Entries of streams whose id starts with one of these only.</param>
/// <param name="Since">Entries recorded at or after this time only.</param>
/// <param name="Until">Entries recorded before this time only.</param>
public sealed record AuditQuery(string? Stream, string? Principal, long? After, int Limit)
{
    public IReadOnlyList<string>? Streams { get; init; }
    public IReadOnlyList<string>? StreamPrefixes { get; init; }
    public DateTimeOffset? Since { get; init; }
    public DateTimeOffset? Until { get; init; }
}

/// <summary>Reads the audit projection. It trails the log by the time the daemon takes to apply the latest batch.</summary>
public sealed class AuditTrail(IDocumentStore store)
{
    public const int DefaultLimit = 100;
    public const int MaxLimit = 1000;

    /// <summary>Matching entries in log order (newest last).</summary>
    public async Task<IReadOnlyList<AuditEntry>> ReadAsync(AuditQuery query, CancellationToken ct)
    {
        await using var session = store.QuerySession();
        IQueryable<AuditEntry> entries = session.Query<AuditEntry>();
        // Each filter is its own condition, so the planner can use the duplicated, indexed stream and principal columns.
        if (query.Stream is { } stream) entries = entries.Where(e => e.StreamId == stream);
        if (query.Streams is { } streams) entries = entries.Where(e => e.StreamId.IsOneOf(streams.ToArray()));
        if (query.StreamPrefixes is { Count: > 0 } prefixes) entries = entries.Where(StartsWithAny(prefixes));
        if (query.Principal is { } principal) entries = entries.Where(e => e.Principal == principal);
        if (query.Since is { } since) entries = entries.Where(e => e.Time >= since);
        if (query.Until is { } until) entries = entries.Where(e => e.Time < until);
        if (query.After is { } after)
            return await entries.Where(e => e.Position > after).OrderBy(e => e.Position).Take(query.Limit).ToListAsync(ct);
        var newest = await entries.OrderByDescending(e => e.Position).Take(query.Limit).ToListAsync(ct);
        return newest.Reverse().ToArray();
    }

    /// <summary>
    /// Waits until the projection holds the log up to <paramref name="position"/> (a reader that just wrote sees its
    /// write), or <paramref name="patience"/> has passed: then the trail answers with what it has.
    /// </summary>
    public async Task CatchUpAsync(IEventStore events, LogPosition position, TimeSpan patience, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + patience;
        while ((await HistoryApi.StatusAsync(store, events, ct)).Single(s => s.Name == AuditProjection.ProjectionName).Position < position.Value
               && DateTime.UtcNow < deadline)
            await Task.Delay(50, ct);
    }

    // e.StreamId.StartsWith(p1) || e.StreamId.StartsWith(p2) …: one LIKE per prefix on the indexed column.
    private static Expression<Func<AuditEntry, bool>> StartsWithAny(IReadOnlyList<string> prefixes)
    {
        var entry = Expression.Parameter(typeof(AuditEntry), "e");
        var streamId = Expression.Property(entry, nameof(AuditEntry.StreamId));
        var startsWith = typeof(string).GetMethod(nameof(string.StartsWith), [typeof(string)])!;
        var any = prefixes.Select(p => (Expression)Expression.Call(streamId, startsWith, Expression.Constant(p))).Aggregate(Expression.OrElse);
        return Expression.Lambda<Func<AuditEntry, bool>>(any, entry);
    }
}
