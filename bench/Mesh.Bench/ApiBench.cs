using System.Diagnostics;
using Mesh.Contracts.Api;

namespace Mesh.Bench;

/// <summary>
/// What securing the API costs: the same policy PUTs against two control-plane processes of this build, one as ./dev up
/// runs it (TLS with the local CA's certificate, bearer tokens from the token file), one with --plaintext and
/// --insecure-allow-anonymous. The two are measured in alternating rounds, so the machine's drift weighs on both alike.
/// The clients keep their connections, as a controller or a CI job does: the TLS handshake is paid once per connection.
/// </summary>
internal static class ApiBench
{
    private const int Rounds = 10;
    private const int PutsPerRound = 50;

    public static async Task<IReadOnlyList<Metric>> RunAsync(string serverConnection)
    {
        var tlsDirectory = Environment.GetEnvironmentVariable("MESH_BENCH_TLS_DIR") is { Length: > 0 } dir ? dir
            : throw new InvalidOperationException("MESH_BENCH_TLS_DIR names no directory: run the bench through ./dev bench, which makes the local CA and certificate");
        var tls = (Path.Combine(tlsDirectory, "controlplane.crt"), Path.Combine(tlsDirectory, "controlplane.key"), Path.Combine(tlsDirectory, "ca.crt"));
        return await BenchDatabase.InFreshDatabaseAsync(serverConnection, secureDb =>
            BenchDatabase.InFreshDatabaseAsync(serverConnection, async plainDb =>
            {
                using var secure = await BenchControlPlane.StartAsync(secureDb.ConnectionString!, [$"--token-file={BenchTokens.File}"], tls, BenchTokens.Admin);
                using var plain = await BenchControlPlane.StartAsync(plainDb.ConnectionString!, ["--insecure-allow-anonymous"]);
                var (withSecurity, without) = (new List<double>(), new List<double>());
                await PutAsync(secure.Client, PutsPerRound, null);   // warm-up: JIT, connection pools, the first compile
                await PutAsync(plain.Client, PutsPerRound, null);
                for (var round = 0; round < Rounds; round++)
                {
                    if (round % 2 == 0) { await PutAsync(secure.Client, PutsPerRound, withSecurity); await PutAsync(plain.Client, PutsPerRound, without); }
                    else { await PutAsync(plain.Client, PutsPerRound, without); await PutAsync(secure.Client, PutsPerRound, withSecurity); }
                }
                withSecurity.Sort();
                without.Sort();
                var (p50, p50Plain) = (Measure.Percentile(withSecurity, 0.50), Measure.Percentile(without, 0.50));
                return (IReadOnlyList<Metric>)
                [
                    new("api.put_p50_ms", p50, "ms", $"{withSecurity.Count} policy PUTs over TLS with a bearer token, one at a time; p99 {Measure.Percentile(withSecurity, 0.99):0.0} ms"),
                    new("api.put_p50_plain_ms", p50Plain, "ms", $"the same PUTs over plain HTTP, anonymous (--plaintext --insecure-allow-anonymous); p99 {Measure.Percentile(without, 0.99):0.0} ms"),
                    new("api.auth_overhead_ratio", p50 / p50Plain, "x", "PUT p50 with authentication and TLS ÷ without, same run; target ≤ 1.2"),
                ];
            }));
    }

    private static int _change;

    /// <summary><paramref name="count"/> PUTs of one policy, each a real change (another port), timed into <paramref name="into"/>.</summary>
    private static async Task PutAsync(MeshApiClient client, int count, List<double>? into)
    {
        for (var i = 0; i < count; i++)
        {
            var port = 1000 + Interlocked.Increment(ref _change) % 60000;
            var clock = Stopwatch.StartNew();
            await client.ApplyPolicyAsync("bench", "web", $$$"""
                apiVersion: cilium.io/v2
                kind: CiliumNetworkPolicy
                metadata: { name: web, namespace: bench }
                spec:
                  endpointSelector: { matchLabels: { app: web } }
                  ingress: [ { fromEndpoints: [ { matchLabels: { app: client } } ], toPorts: [ { ports: [ { port: "{{{port}}}", protocol: TCP } ] } ] } ]
                """);
            into?.Add(clock.Elapsed.TotalMilliseconds);
        }
    }
}
