using Mesh.Contracts.Input;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;

namespace Mesh.Contracts.Policies;

/// <summary>
/// The YAML reader's events, checked one by one before the node tree is built from them. The reader itself is a state
/// machine, but the tree is built recursively, one call per level, so a depth checked here is a depth never recursed
/// into. Refused, with the place in the text:
/// <list type="bullet">
/// <item>mappings and lists nested deeper than <see cref="InputLimits.MaxNestingDepth"/> (70,000 '[' overflow the stack);</item>
/// <item>aliases (<c>*name</c>, and so merge keys): a 1.5 KB document of nested aliases ("billion laughs") expands to
/// hundreds of megabytes, and no policy needs one;</item>
/// <item>control characters other than tab and line breaks in any value or key: nothing Mesh reads holds one, and
/// PostgreSQL cannot store U+0000.</item>
/// </list>
/// </summary>
internal sealed class CheckedYamlParser(IParser inner) : IParser
{
    private int _depth;

    public ParsingEvent? Current => inner.Current;

    public bool MoveNext()
    {
        if (!inner.MoveNext()) return false;
        switch (inner.Current)
        {
            case AnchorAlias alias:
                throw new RefusedYaml(alias.Start, $"the alias *{alias.Value} is not accepted (aliases and merge keys are refused: write the value out)");
            case MappingStart or SequenceStart when ++_depth > InputLimits.MaxNestingDepth:
                throw new RefusedYaml(inner.Current.Start, $"mappings and lists nest deeper than {InputLimits.MaxNestingDepth} levels");
            case MappingEnd or SequenceEnd:
                _depth--;
                break;
            case Scalar scalar when InputLimits.ControlCharacter(scalar.Value) is { } c:
                throw new RefusedYaml(scalar.Start, $"a value holds the control character U+{(int)c:X4} (only tab and line breaks are accepted)");
        }
        return true;
    }
}

/// <summary>A document the <see cref="CheckedYamlParser"/> refused, and where.</summary>
internal sealed class RefusedYaml(Mark start, string reason) : Exception(reason)
{
    public Mark Start { get; } = start;
}
