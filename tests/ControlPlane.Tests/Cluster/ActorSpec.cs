using Akka.Configuration;
using Akka.TestKit;

namespace Mesh.ControlPlane.Tests.Cluster;

/// <summary>Akka's TestKit on xunit v3: a fresh actor system per test class instance, shut down after the test.</summary>
public abstract class ActorSpec(Config config) : TestKitBase(new XunitAssertions(), config), IAsyncLifetime
{
    public virtual ValueTask InitializeAsync() => ValueTask.CompletedTask;

    public virtual async ValueTask DisposeAsync()
    {
        await Sys.Terminate();
        GC.SuppressFinalize(this);
    }

    private sealed class XunitAssertions : ITestKitAssertions
    {
        public void Fail(string format = "", params object[] args) => Assert.Fail(string.Format(System.Globalization.CultureInfo.InvariantCulture, format, args));

        public void AssertTrue(bool condition, string format = "", params object[] args) =>
            Assert.True(condition, string.Format(System.Globalization.CultureInfo.InvariantCulture, format, args));

        public void AssertFalse(bool condition, string format = "", params object[] args) =>
            Assert.False(condition, string.Format(System.Globalization.CultureInfo.InvariantCulture, format, args));

        public void AssertEqual<T>(T expected, T actual, string format = "", params object[] args) => Assert.Equal(expected, actual);

        public Exception AssertThrows(Action action) => Assert.ThrowsAny<Exception>(action);

        public TException AssertThrows<TException>(Action action) where TException : Exception => Assert.Throws<TException>(action);

        public Task<Exception> AssertThrowsAsync(Func<Task> action) => Assert.ThrowsAnyAsync<Exception>(action);

        public Task<TException> AssertThrowsAsync<TException>(Func<Task> action) where TException : Exception => Assert.ThrowsAsync<TException>(action);

        public void AssertEqual<T>(T expected, T actual, Func<T, T, bool> comparer, string format = "", params object[] args) =>
            Assert.True(comparer(expected, actual), string.Format(System.Globalization.CultureInfo.InvariantCulture, format, args));
    }
}
