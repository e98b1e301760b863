using System.Text.Json;
using System.Text.Json.Serialization;

namespace Mesh.ControlPlane.Commands;

/// <summary>
/// Reads a request's JSON body, or says which field of it is wrong: a body that is not the JSON a route takes is a
/// 400 naming the field, never an empty answer. Fields the type does not have and fields given twice are refused,
/// not ignored (a misspelt field would otherwise be silently dropped). A body over the size limit is Kestrel's
/// 413 (<see cref="RequestGate"/>).
/// </summary>
public static class RequestBody
{
    private static readonly JsonSerializerOptions Strict = new(JsonSerializerDefaults.Web)
    {
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        AllowDuplicateProperties = false,
    };

    /// <param name="what">What the body holds, for "… is required" (e.g. "an endpoint registration").</param>
    /// <param name="title">The title of the refusal, as the route words its others.</param>
    public static async Task<(T? Value, FieldErrors? Errors)> ReadJsonAsync<T>(HttpRequest request, string what, string title, CancellationToken ct)
        where T : class
    {
        try
        {
            return await JsonSerializer.DeserializeAsync<T>(request.Body, Strict, ct) is { } value
                ? (value, null)
                : (null, FieldErrors.One(title, "body", $"{what} (JSON) is required"));
        }
        catch (JsonException e)
        {
            return (null, FieldErrors.One(title, FieldOf(e.Path), Reason(e, what)));
        }
    }

    /// <summary>"$.ports[0].port" → "ports[0].port"; the whole body is "body".</summary>
    private static string FieldOf(string? path) => path is null or "$" || !path.StartsWith("$.", StringComparison.Ordinal) ? "body" : path[2..];

    private static string Reason(JsonException e, string what)
    {
        var where = e.LineNumber is { } line ? $" (line {line + 1}, byte {e.BytePositionInLine + 1})" : "";
        // System.Text.Json's own words, without the path and position it appends (said above) or the .NET type it names.
        var message = e.Message;
        var cut = message.IndexOf(" Path: ", StringComparison.Ordinal);
        if (cut >= 0) message = message[..cut];
        if (message.Contains("could not be mapped to any .NET member", StringComparison.Ordinal))
            message = $"is not a field of {what}";
        else if (message.StartsWith("The JSON value could not be converted to", StringComparison.Ordinal))
            message = "the value is of the wrong kind (a number, string, list or object where another is expected)";
        return $"not valid JSON for {what}{where}: {message}";
    }
}
