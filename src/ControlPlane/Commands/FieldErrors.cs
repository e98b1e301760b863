namespace Mesh.ControlPlane.Commands;

/// <summary>
/// A request refused whole, naming each bad field and what is wrong with it; nothing was changed. REST answers 400
/// with a validation problem, gRPC INVALID_ARGUMENT with a google.rpc.BadRequest.
/// </summary>
public sealed record FieldErrors(string Title, Dictionary<string, string[]> Errors)
{
    public static FieldErrors One(string title, string field, string message) => new(title, new() { [field] = [message] });

    public Microsoft.AspNetCore.Http.HttpResults.ValidationProblem ToProblem() => TypedResults.ValidationProblem(Errors, title: Title);
}
