using System.Security.Authentication;
using Grpc.Core;
using Mesh.Contracts.Agent;
using Mesh.Contracts.Api;
using Mesh.Contracts.Management;
using Mesh.Contracts.Security;
using Mesh.NodeAgent.Sync;
using Mesh.Testing;

namespace Mesh.EndToEnd.Tests.Security;

/// <summary>
/// Both ports serve TLS with the configured certificate: the REST API, the management gRPC API and the agent protocol
/// answer clients that believe its CA, and nobody else; plain HTTP needs --plaintext. The certificate names only
/// 127.0.0.1, so "localhost" is a name it does not carry.
/// </summary>
public sealed class TlsTests : IAsyncLifetime
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;
    private readonly TestCertificates _tls = new("127.0.0.1");
    private readonly TestCertificates _otherCa = new("127.0.0.1");
    private ControlPlaneProcess _cp = null!;

    public async ValueTask InitializeAsync() => _cp = await ControlPlaneProcess.StartOnNewDatabaseAsync(_tls);

    public async ValueTask DisposeAsync()
    {
        await _cp.DisposeAsync();
        _tls.Dispose();
        _otherCa.Dispose();
    }

    [Fact]
    public async Task REST_management_gRPC_and_the_agent_protocol_answer_over_TLS_to_clients_that_believe_the_CA()
    {
        Assert.Equal("https", _cp.Api.Scheme);
        var applied = await _cp.Client.ApplyPolicyAsync("default", "web", """
            apiVersion: cilium.io/v2
            kind: CiliumNetworkPolicy
            metadata: { name: web, namespace: default }
            spec:
              endpointSelector: { matchLabels: { app: web } }
              ingress: [ { fromEndpoints: [ { matchLabels: { app: client } } ] } ]
            """, Ct);

        using var management = ControlPlaneReplica.Channel(_cp.Grpc, TestTokens.AdminTokenFile, _tls.CaFile);
        var policies = await new Policies.PoliciesClient(management).ListPoliciesAsync(new(), cancellationToken: Ct);
        Assert.Contains(policies.Policies, p => p.Name == "web");

        using var call = ControlPlaneReplica.Connect(_cp.Grpc, TestTokens.AdminTokenFile, _tls.CaFile).Client.Sync(cancellationToken: Ct);
        await call.RequestStream.WriteAsync(new SyncRequest { Watch = new WatchRequest { Node = "tls-node" } }, Ct);
        Assert.True(await call.ResponseStream.MoveNext(Ct), "the agent stream delivers a snapshot over TLS");
        Assert.True((long)call.ResponseStream.Current.Snapshot.Version >= applied.Version);
        Assert.StartsWith("https://", (await _cp.Client.StatusAsync(Ct)).GrpcAddress);
    }

    [Fact]
    public async Task A_client_that_believes_only_the_system_roots_or_another_CA_or_dials_a_name_the_certificate_lacks_is_refused()
    {
        var localhost = new UriBuilder(_cp.Api) { Host = "localhost" }.Uri;
        foreach (var (address, ca) in new[] { (_cp.Api, (string?)null), (_cp.Api, _otherCa.CaFile), (localhost, _tls.CaFile) })
        {
            var refused = await Assert.ThrowsAsync<ControlPlaneUnreachableException>(() => MeshApiClient.Create(address, TestTokens.Admin, caFile: ca).StatusAsync(Ct));
            Assert.IsType<AuthenticationException>(refused.InnerException?.InnerException);
        }

        using var agent = ControlPlaneReplica.Channel(_cp.Grpc, TestTokens.AdminTokenFile, _otherCa.CaFile);
        var sync = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            using var call = new AgentSync.AgentSyncClient(agent).Sync(cancellationToken: Ct);
            await call.RequestStream.WriteAsync(new SyncRequest { Watch = new WatchRequest { Node = "tls-node" } }, Ct);
            await call.ResponseStream.MoveNext(Ct);
        });
        Assert.IsType<AuthenticationException>(sync.Status.DebugException?.InnerException);
    }

    [Fact]
    public async Task Plain_HTTP_to_either_port_gets_no_answer()
    {
        foreach (var port in new[] { _cp.ApiPort, _cp.GrpcPort })
        {
            using var plain = new HttpClient(new SocketsHttpHandler()) { Timeout = TimeSpan.FromSeconds(10) };
            await Assert.ThrowsAsync<HttpRequestException>(() => plain.GetAsync($"http://127.0.0.1:{port}/healthz", Ct));
        }
    }

    [Fact]
    public void A_CA_file_that_is_missing_or_not_PEM_is_refused_naming_the_file()
    {
        Assert.Contains("does not exist", Assert.Throws<ArgumentException>(() => new SocketsHttpHandler().TrustingCa(_tls.CaFile + ".gone")).Message);
        Assert.Contains("no PEM certificate", Assert.Throws<ArgumentException>(() => new SocketsHttpHandler().TrustingCa(_tls.ServerKeyFile)).Message);
    }
}
