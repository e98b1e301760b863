namespace Mesh.Testing;

/// <summary>
/// Polling for a state that other processes bring about (an API's answer, a file, a log) where there is no event to
/// wait on: asks again every little while and fails the test, saying what never happened, once the time is up.
/// </summary>
public static class Poll
{
    private static readonly TimeSpan DefaultWithin = TimeSpan.FromSeconds(30), DefaultEvery = TimeSpan.FromMilliseconds(50);

    /// <summary>The first value <paramref name="probe"/> returns; fails naming <paramref name="what"/> and, if given, <paramref name="context"/> (a log).</summary>
    public static async Task<T> ForAsync<T>(Func<Task<T?>> probe, string what, TimeSpan? within = null, Func<string>? context = null, TimeSpan? every = null)
        where T : class
    {
        var deadline = DateTime.UtcNow + (within ?? DefaultWithin);
        while (true)
        {
            if (await probe() is { } found) return found;
            if (DateTime.UtcNow > deadline) Assert.Fail($"timed out waiting until {what}{(context is null ? "" : "\n" + context())}");
            await Task.Delay(every ?? DefaultEvery, TestContext.Current.CancellationToken);
        }
    }

    /// <summary>Returns once <paramref name="condition"/> holds.</summary>
    public static Task UntilAsync(Func<Task<bool>> condition, string what, TimeSpan? within = null, Func<string>? context = null, TimeSpan? every = null) =>
        ForAsync(async () => await condition() ? Held : null, what, within, context, every);

    /// <summary>Returns once <paramref name="condition"/> holds.</summary>
    public static Task UntilAsync(Func<bool> condition, string what, TimeSpan? within = null, Func<string>? context = null, TimeSpan? every = null) =>
        UntilAsync(() => Task.FromResult(condition()), what, within, context, every);

    private static readonly object Held = new();
}
