using System.Diagnostics;
using Mesh.NodeAgent.Netns;
using Mesh.Testing;

namespace Mesh.NodeAgent.Tests.Netns;

/// <summary>rtnetlink's link announcements of one namespace, with real veths in namespaces of the test's own.</summary>
[Trait("Category", "Privileged")]
public sealed class LinkWatcherPrivilegedTests
{
    [Fact]
    public async Task Interfaces_appearing_in_and_leaving_the_watched_namespace_are_announced_by_name_and_other_namespaces_are_not()
    {
        Privileged.Require();
        var prefix = $"mlw-{Guid.NewGuid().ToString("N")[..8]}";
        string watched = $"{prefix}-node", other = $"{prefix}-other";
        try
        {
            Ip($"netns add {watched}");
            Ip($"netns add {other}");
            using var watcher = LinkWatcher.Start(watched);

            Ip($"-n {other} link add elsewhere0 type veth peer name elsewhere1");
            Ip($"-n {watched} link add lxctest0 type veth peer name lxctest1");
            Ip($"-n {watched} link del lxctest0");

            var seen = await ReadUntilAsync(watcher, new LinkChange(LinkChangeKind.Gone, "lxctest0"));
            Assert.Contains(new LinkChange(LinkChangeKind.Present, "lxctest0"), seen);
            Assert.Contains(new LinkChange(LinkChangeKind.Present, "lxctest1"), seen);
            Assert.True(seen.IndexOf(new LinkChange(LinkChangeKind.Present, "lxctest0")) < seen.IndexOf(new LinkChange(LinkChangeKind.Gone, "lxctest0")));
            Assert.DoesNotContain(seen, c => c.Name.StartsWith("elsewhere", StringComparison.Ordinal));
        }
        finally
        {
            Run($"netns del {watched}");
            Run($"netns del {other}");
        }
    }

    [Fact]
    public void Disposing_the_watcher_ends_its_announcements_without_an_error()
    {
        Privileged.Require();
        var watcher = LinkWatcher.Start(netns: null);

        watcher.Dispose();

        Assert.True(watcher.Changes.Completion.IsCompletedSuccessfully);
    }

    private static async Task<List<LinkChange>> ReadUntilAsync(LinkWatcher watcher, LinkChange last)
    {
        var seen = new List<LinkChange>();
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        deadline.CancelAfter(TimeSpan.FromSeconds(10));
        try
        {
            await foreach (var change in watcher.Changes.ReadAllAsync(deadline.Token))
            {
                seen.Add(change);
                if (change == last) return seen;
            }
        }
        catch (OperationCanceledException) when (!TestContext.Current.CancellationToken.IsCancellationRequested) { }
        Assert.Fail($"no {last} within 10 s; saw: {string.Join(", ", seen)}");
        return seen;
    }

    private static void Ip(string args)
    {
        var (code, error) = Run(args);
        Assert.True(code == 0, $"ip {args}: exit {code}: {error}");
    }

    private static (int Code, string Error) Run(string args)
    {
        using var p = Process.Start(new ProcessStartInfo("ip", args) { RedirectStandardError = true, RedirectStandardOutput = true })!;
        var error = p.StandardError.ReadToEnd();
        p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, error.Trim());
    }
}
