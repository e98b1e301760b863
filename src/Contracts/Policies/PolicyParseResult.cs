namespace Mesh.Contracts.Policies;

/// <summary>A refusal that names the field: <c>spec.ingress[0].toPorts[0].ports[0].port</c>. Path "" = the whole document.</summary>
public sealed record FieldError(string Path, string Message)
{
    public override string ToString() => Path.Length == 0 ? Message : $"{Path}: {Message}";
}

/// <summary>Either a policy or every error found in the document; never both (bad input is refused whole).</summary>
public sealed record PolicyParseResult(NetworkPolicy? Policy, IReadOnlyList<FieldError> Errors)
{
    [System.Diagnostics.CodeAnalysis.MemberNotNullWhen(true, nameof(Policy))]
    public bool Ok => Policy is not null;
}
