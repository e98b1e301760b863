namespace Mesh.ControlPlane.EventStore;

/// <summary>Tuning of appends and the catch-up subscription. The defaults suit production; tests shorten them.</summary>
public sealed record EventStoreOptions
{
    /// <summary>
    /// Events read per round trip while catching up. Default 2,000: fewer round trips than 500, while a batch's
    /// bodies still die young (at 5,000 they outlive a gen0 collection and the catch-up slows down again).
    /// </summary>
    public int SubscriptionBatchSize { get; init; } = 2000;

    /// <summary>
    /// How long a live subscriber waits for a notification before it reads anyway. Notifications are only a hint
    /// (they are lost while the listening connection is down), so this bounds the delay of a missed one. Default 1 s.
    /// </summary>
    public TimeSpan PollInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>First wait before reconnecting after the database went away; doubles up to <see cref="MaxReconnectDelay"/>. Default 100 ms.</summary>
    public TimeSpan ReconnectDelay { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>Longest wait between reconnection attempts. Default 5 s.</summary>
    public TimeSpan MaxReconnectDelay { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// An append whose writer sends nothing for this long while it holds the append lock is ended by the database
    /// (and fails for its writer), so a paused writer cannot stall the others. Default 3 s: well within the lease TTL.
    /// </summary>
    public TimeSpan AppendIdleTimeout { get; init; } = TimeSpan.FromSeconds(3);
}
