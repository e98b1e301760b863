using Mesh.Contracts.Agent;

namespace Mesh.Testing;

/// <summary>Snapshots of an exact encoded size, to meet the agent protocol's message limit on the byte.</summary>
public static class SnapshotPadding
{
    /// <summary>
    /// Adds one rule of filler text to <paramref name="update"/>'s snapshot so the update encodes to exactly
    /// <paramref name="size"/> bytes (the size gRPC compares with its limits). No entry points at the filler rule.
    /// </summary>
    public static SnapshotUpdate PadTo(SnapshotUpdate update, int size)
    {
        var snapshot = update.Snapshot ?? throw new ArgumentException("only a whole snapshot is padded", nameof(update));
        snapshot.Rules.Add("");
        var filler = snapshot.Rules.Count - 1;
        // The lengths of the rule and of the snapshot are varints: a longer filler may lengthen them, so settle in steps.
        for (var attempt = 0; attempt < 8 && update.CalculateSize() != size; attempt++)
        {
            var length = snapshot.Rules[filler].Length + size - update.CalculateSize();
            ArgumentOutOfRangeException.ThrowIfNegative(length, nameof(size));
            snapshot.Rules[filler] = new string('r', length);
        }
        if (update.CalculateSize() != size) throw new InvalidOperationException($"no filler makes the update exactly {size} bytes");
        return update;
    }
}
