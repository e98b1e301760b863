namespace Mesh.ControlPlane.Commands;

/// <summary>
/// A request refused whole, naming each bad field and what is wrong with it; nothing was changed. REST answers 400
/// with a validation problem, gRPC INVALID_ARGUMENT with a google.rpc.BadRequest. A valid request the current state
/// refuses (an address another endpoint holds) names its fields the same way: REST 409, gRPC FAILED_PRECONDITION.
/// </summary>
public sealed record FieldErrors(string Title, Dictionary<string, string[]> Errors)
{
    public static FieldErrors One(string title, string field, string message) => new(title, new() { [field] = [message] });

    public Microsoft.AspNetCore.Http.HttpResults.ValidationProblem ToProblem() => TypedResults.ValidationProblem(Errors, title: Title);

    /// <summary>409, with the same <c>errors</c> member as a validation problem.</summary>
    public Microsoft.AspNetCore.Http.HttpResults.ProblemHttpResult ToConflict() =>
        TypedResults.Problem(title: Title, statusCode: StatusCodes.Status409Conflict, extensions: new Dictionary<string, object?> { ["errors"] = Errors });
}
