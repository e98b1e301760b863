using System.Net;
using System.Text.Json.Nodes;

namespace Mesh.Testing.Kubernetes;

/// <summary>A failed request, answered as kube-apiserver answers it: a v1 Status with the HTTP code, reason and message.</summary>
internal sealed class ApiStatusException(HttpStatusCode code, string reason, string message, JsonObject? details = null) : Exception(message)
{
    public HttpStatusCode Code { get; } = code;

    public JsonObject ToStatus() => ApiStatus.Failure(Code, reason, Message, details);
}

internal static class ApiStatus
{
    public static JsonObject Failure(HttpStatusCode code, string reason, string message, JsonObject? details = null)
    {
        var status = new JsonObject
        {
            ["kind"] = "Status",
            ["apiVersion"] = "v1",
            ["metadata"] = new JsonObject(),
            ["status"] = "Failure",
            ["message"] = message,
            ["reason"] = reason,
        };
        if (details is not null) status["details"] = details;
        status["code"] = (int)code;
        return status;
    }

    public static ApiStatusException NotFound(ApiResource resource, string name) =>
        new(HttpStatusCode.NotFound, "NotFound", $"{Qualified(resource)} \"{name}\" not found", Details(resource, name));

    public static ApiStatusException NoSuchResource() =>
        new(HttpStatusCode.NotFound, "NotFound", "the server could not find the requested resource");

    public static ApiStatusException AlreadyExists(ApiResource resource, string name) =>
        new(HttpStatusCode.Conflict, "AlreadyExists", $"{Qualified(resource)} \"{name}\" already exists", Details(resource, name));

    public static ApiStatusException Conflict(ApiResource resource, string name) =>
        new(HttpStatusCode.Conflict, "Conflict",
            $"Operation cannot be fulfilled on {Qualified(resource)} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
            Details(resource, name));

    public static ApiStatusException Invalid(ApiResource resource, string name, string message) =>
        new(HttpStatusCode.UnprocessableEntity, "Invalid", $"{resource.Kind} \"{name}\" is invalid: {message}", Details(resource, name));

    public static ApiStatusException BadRequest(string message) => new(HttpStatusCode.BadRequest, "BadRequest", message);

    public static ApiStatusException MethodNotAllowed(string method) =>
        new(HttpStatusCode.MethodNotAllowed, "MethodNotAllowed", $"the server does not allow this method on the requested resource ({method})");

    public static ApiStatusException Expired(string message) => new(HttpStatusCode.Gone, "Expired", message);

    public static JsonObject Unauthorized() => Failure(HttpStatusCode.Unauthorized, "Unauthorized", "Unauthorized");

    private static string Qualified(ApiResource resource) =>
        resource.Group.Length == 0 ? resource.Plural : $"{resource.Plural}.{resource.Group}";

    private static JsonObject Details(ApiResource resource, string name)
    {
        var details = new JsonObject { ["name"] = name };
        if (resource.Group.Length > 0) details["group"] = resource.Group;
        details["kind"] = resource.Plural;
        return details;
    }
}
