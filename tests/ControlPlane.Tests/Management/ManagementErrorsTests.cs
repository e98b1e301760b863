using System.Net.Sockets;
using Grpc.Core;
using Mesh.ControlPlane.Cluster;
using Mesh.ControlPlane.Commands;
using Mesh.ControlPlane.Management;
using Npgsql;

namespace Mesh.ControlPlane.Tests.Management;

/// <summary>A failed command over gRPC says what REST says with 409 and 503: refused for good, or retry.</summary>
public sealed class ManagementErrorsTests
{
    [Fact]
    public async Task A_refused_command_is_failed_precondition_and_a_passing_outage_is_unavailable()
    {
        Assert.Equal(StatusCode.FailedPrecondition, (await FailAsync(new DomainRuleViolation("no"))).StatusCode);
        Assert.Equal(StatusCode.Unavailable, (await FailAsync(new ShardUnavailable("identities", TimeSpan.FromSeconds(5), null))).StatusCode);
        Assert.Equal(StatusCode.Unavailable, (await FailAsync(new EntityFailed("stopped on a fault"))).StatusCode);
        var database = await FailAsync(new NpgsqlException("Failed to connect to 127.0.0.1:5432", new SocketException((int)SocketError.ConnectionRefused)));
        Assert.Equal(StatusCode.Unavailable, database.StatusCode);
        Assert.Contains("retry", database.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_failure_nobody_can_act_on_is_left_to_grpc_as_it_is()
    {
        var bug = new InvalidOperationException("bug");

        var thrown = await Assert.ThrowsAsync<InvalidOperationException>(() => new ManagementErrors().UnaryServerHandler<string, string>(
            "request", null!, (_, _) => Task.FromException<string>(bug)));

        Assert.Same(bug, thrown);
    }

    private static Task<RpcException> FailAsync(Exception e) =>
        Assert.ThrowsAsync<RpcException>(() => new ManagementErrors().UnaryServerHandler<string, string>("request", null!, (_, _) => Task.FromException<string>(e)));
}
