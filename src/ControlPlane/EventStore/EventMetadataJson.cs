using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Mesh.ControlPlane.EventStore;

/// <summary>The stored shape of <see cref="EventMetadata"/>: a jsonb object with fixed field names, so SQL can query the audit trail.</summary>
internal static class EventMetadataJson
{
    private const string Principal = "principal", Time = "time", CorrelationId = "correlationId", CausationId = "causationId";

    public static string Serialize(EventMetadata m)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString(Principal, m.Principal);
            // Round-trip format keeps the ticks and the offset, so the metadata reads back equal.
            w.WriteString(Time, m.Time.ToString("O", CultureInfo.InvariantCulture));
            w.WriteString(CorrelationId, m.CorrelationId);
            if (m.CausationId is null) w.WriteNull(CausationId);
            else w.WriteString(CausationId, m.CausationId);
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length);
    }

    public static EventMetadata Deserialize(string json)
    {
        using var doc = JsonDocument.Parse(json);
        var root = doc.RootElement;
        return new EventMetadata(
            root.GetProperty(Principal).GetString() ?? "",
            DateTimeOffset.Parse(root.GetProperty(Time).GetString() ?? "", CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind),
            root.GetProperty(CorrelationId).GetString() ?? "",
            root.TryGetProperty(CausationId, out var causation) ? causation.GetString() : null);
    }
}
