using Mesh.ControlPlane.EventStore;
using Npgsql;

namespace Mesh.ControlPlane.Projections;

/// <summary>What to read from the audit trail. Null filters match everything.</summary>
/// <param name="After">Entries after this position, oldest first; null: the newest <paramref name="Limit"/> entries.</param>
public sealed record AuditQuery(string? Stream, string? Principal, long? After, int Limit);

/// <summary>Reads the audit projection. It trails the log by the time the runner takes to apply the latest batch.</summary>
public sealed class AuditTrail(NpgsqlDataSource dataSource)
{
    public const int DefaultLimit = 100;
    public const int MaxLimit = 1000;

    /// <summary>Matching entries in log order (newest last).</summary>
    public async Task<IReadOnlyList<AuditEntry>> ReadAsync(AuditQuery query, CancellationToken ct)
    {
        var filters = new List<string>();
        await using var cmd = dataSource.CreateCommand();
        // Each filter is its own condition (not "$1 IS NULL OR …"), so the planner can use the (stream_id, position)
        // and (principal, position) indexes.
        if (query.Stream is not null) filters.Add($"stream_id = {Parameter(cmd, query.Stream)}");
        if (query.Principal is not null) filters.Add($"principal = {Parameter(cmd, query.Principal)}");
        if (query.After is { } after) filters.Add($"position > {Parameter(cmd, after)}");
        var where = filters.Count == 0 ? "" : "WHERE " + string.Join(" AND ", filters);
        var limit = Parameter(cmd, query.Limit);
        const string columns = "position, time, principal, correlation_id, causation_id, stream_id, type, summary";
        cmd.CommandText = query.After is null
            ? $"SELECT * FROM (SELECT {columns} FROM {EventStoreSchema.AuditTable} {where} ORDER BY position DESC LIMIT {limit}) newest ORDER BY position"
            : $"SELECT {columns} FROM {EventStoreSchema.AuditTable} {where} ORDER BY position LIMIT {limit}";

        var entries = new List<AuditEntry>();
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            entries.Add(new AuditEntry(
                reader.GetInt64(0), reader.GetFieldValue<DateTimeOffset>(1), reader.GetString(2), reader.GetString(3),
                reader.IsDBNull(4) ? null : reader.GetString(4), reader.GetString(5), reader.GetString(6), reader.GetString(7)));
        }
        return entries;
    }

    private static string Parameter(NpgsqlCommand cmd, object value)
    {
        cmd.Parameters.Add(new() { Value = value });
        return "$" + cmd.Parameters.Count.ToString(System.Globalization.CultureInfo.InvariantCulture);
    }
}
