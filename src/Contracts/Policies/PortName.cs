namespace Mesh.Contracts.Policies;

/// <summary>
/// A port's name, as a container declares it and a policy refers to it: Kubernetes' IANA_SVC_NAME, 1-15
/// lowercase letters, digits and '-', with at least one letter (so it cannot be read as a number), '-' neither
/// first, last, nor twice in a row. The policy parser and the endpoint API check names with the same rules, so a
/// name a policy accepts can be one an endpoint declares.
/// </summary>
public static class PortName
{
    public const int MaxLength = 15;

    /// <summary>What is wrong with <paramref name="name"/> as a port name, or null when it is one.</summary>
    public static string? Problem(string name)
    {
        if (name.Length == 0) return "is empty";
        if (name.Length > MaxLength) return $"is longer than {MaxLength} characters";
        if (name.Any(c => c is not (>= 'a' and <= 'z' or >= '0' and <= '9' or '-')))
            return "has characters other than lowercase letters, digits and '-'";
        if (!name.Any(char.IsAsciiLetterLower)) return "has no letter";
        if (name[0] == '-' || name[^1] == '-') return "starts or ends with '-'";
        if (name.Contains("--", StringComparison.Ordinal)) return "has two '-' in a row";
        return null;
    }

    public static bool IsValid(string name) => Problem(name) is null;

    /// <summary>What a valid name looks like, for error messages.</summary>
    public const string Expected = "1-15 lowercase letters, digits and '-', with a letter, no '-' at either end or twice in a row";
}

/// <summary>
/// A port an endpoint serves under a name (a Kubernetes containerPort with a name): what a named port of a policy
/// resolves to.
/// </summary>
public sealed record ContainerPort(string Name, ushort Port, Protocol Protocol)
{
    public override string ToString() => $"{Name}={Port}/{Protocol.ToString().ToUpperInvariant()}";
}
