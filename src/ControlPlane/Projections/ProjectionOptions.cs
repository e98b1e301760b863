namespace Mesh.ControlPlane.Projections;

/// <summary>Tuning of <see cref="ProjectionRunner"/>. The defaults suit production; tests shorten the delays.</summary>
public sealed record ProjectionOptions
{
    /// <summary>Most events applied in one transaction. Catching up fills batches; a live log gives small ones. Default 500.</summary>
    public int BatchSize { get; init; } = 500;

    /// <summary>First wait before a projection starts again from its checkpoint after a failure; doubles up to <see cref="MaxRetryDelay"/>. Default 100 ms.</summary>
    public TimeSpan RetryDelay { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>Longest wait between attempts (the database may be down for a while). Default 5 s.</summary>
    public TimeSpan MaxRetryDelay { get; init; } = TimeSpan.FromSeconds(5);
}
