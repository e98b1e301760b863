using System.Collections.Concurrent;
using Mesh.Contracts.Identity;
using Mesh.ControlPlane.EventStore;
using Mesh.ControlPlane.Projections;
using Mesh.ControlPlane.Tests.EventStore;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Mesh.ControlPlane.Tests.Projections;

/// <summary>A <see cref="ProjectionRunner"/> with the audit projection, started for one test, recording what it logs.</summary>
internal sealed class RunnerProbe : IAsyncDisposable
{
    public static readonly ProjectionOptions FastOptions = new()
    {
        BatchSize = 50,
        RetryDelay = TimeSpan.FromMilliseconds(50),
        MaxRetryDelay = TimeSpan.FromMilliseconds(500),
    };

    private readonly RecordingLogger _log = new();
    private bool _stopped;

    private RunnerProbe(NpgsqlDataSource dataSource, IEventStore store)
    {
        DataSource = dataSource;
        Runner = new ProjectionRunner(dataSource, store, [new AuditProjection()], FastOptions, _log);
    }

    public NpgsqlDataSource DataSource { get; }
    public ProjectionRunner Runner { get; }

    /// <summary>Warnings and errors the runner logged (a failed batch is logged, then retried from the checkpoint).</summary>
    public IReadOnlyCollection<string> Failures => _log.Failures;

    public void AssertNoFailures() => Assert.True(Failures.Count == 0, string.Join("\n---\n", Failures));

    /// <summary>A runner on its own data source (its own connections), as another replica would have.</summary>
    public static async Task<RunnerProbe> StartAsync(EventStoreDatabase db, NpgsqlDataSource? dataSource = null)
    {
        var probe = new RunnerProbe(dataSource ?? db.DataSource, db.Store);
        await probe.Runner.StartAsync(TestContext.Current.CancellationToken);
        return probe;
    }

    public async Task StopAsync()
    {
        if (_stopped) return;
        _stopped = true;
        await Runner.StopAsync(TestContext.Current.CancellationToken);
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        Runner.Dispose();
    }

    /// <summary>Waits until the audit checkpoint stored in the database reaches <paramref name="position"/>.</summary>
    public static async Task WaitForCheckpointAsync(NpgsqlDataSource dataSource, LogPosition position, TimeSpan? timeout = null)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        cts.CancelAfter(timeout ?? TimeSpan.FromSeconds(30));
        long stored = -1;
        try
        {
            while (true)
            {
                await using var cmd = dataSource.CreateCommand(
                    $"SELECT position FROM {EventStoreSchema.CheckpointsTable} WHERE projection = '{AuditProjection.ProjectionName}'");
                stored = await cmd.ExecuteScalarAsync(cts.Token) is long p ? p : -1;
                if (stored >= position.Value) return;
                await Task.Delay(20, cts.Token);
            }
        }
        catch (OperationCanceledException) when (cts.IsCancellationRequested && !TestContext.Current.CancellationToken.IsCancellationRequested)
        {
            Assert.Fail($"The audit checkpoint reached {stored}, not {position}, within {timeout ?? TimeSpan.FromSeconds(30)}.");
        }
    }

    public static async Task<IReadOnlyList<AuditEntry>> AuditRowsAsync(NpgsqlDataSource dataSource) =>
        await new AuditTrail(dataSource).ReadAsync(new AuditQuery(null, null, 0, int.MaxValue), TestContext.Current.CancellationToken);

    private sealed class RecordingLogger : ILogger<ProjectionRunner>
    {
        private readonly ConcurrentQueue<string> _failures = new();
        public IReadOnlyCollection<string> Failures => _failures;
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(LogLevel logLevel) => true;
        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (logLevel >= LogLevel.Warning) _failures.Enqueue($"{formatter(state, exception)}: {exception}");
        }
    }
}
