using Marten;

namespace Mesh.ControlPlane.Projections;

/// <summary>What to read from the audit trail. Null filters match everything.</summary>
/// <param name="After">Entries after this position, oldest first; null: the newest <paramref name="Limit"/> entries.</param>
public sealed record AuditQuery(string? Stream, string? Principal, long? After, int Limit);

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
        if (query.Principal is { } principal) entries = entries.Where(e => e.Principal == principal);
        if (query.After is { } after)
            return await entries.Where(e => e.Position > after).OrderBy(e => e.Position).Take(query.Limit).ToListAsync(ct);
        var newest = await entries.OrderByDescending(e => e.Position).Take(query.Limit).ToListAsync(ct);
        return newest.Reverse().ToArray();
    }
}
