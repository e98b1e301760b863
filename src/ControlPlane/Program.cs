using Mesh.ControlPlane;

// mesh-controlplane: the REST API, the agent protocol, and the event-sourced desired state behind them.
if (args.Any(a => a is "--help" or "-h"))
{
    Console.WriteLine(ControlPlaneOptions.Usage);
    return 0;
}
// The content root is the binary's directory, not the one it was started in: the host watches its content root,
// recursively, for configuration changes, and a working directory may hold a busy database (./dev keeps its
// PostgreSQL under .mesh/), whose every write would wake that watcher.
var builder = WebApplication.CreateBuilder(new WebApplicationOptions
{
    Args = ControlPlaneOptions.WithSwitchValues(args),
    ContentRootPath = AppContext.BaseDirectory,
});
ControlPlaneOptions options;
try { options = ControlPlaneOptions.From(builder.Configuration); }
catch (ArgumentException e)
{
    Console.Error.WriteLine($"error: {e.Message} (mesh-controlplane --help lists the options)");
    return 2;
}
builder.AddControlPlane(options);
var app = builder.Build();
try { await app.MapControlPlaneAsync(options); }
catch (Npgsql.NpgsqlException e)
{
    Console.Error.WriteLine($"error: cannot reach the event store's PostgreSQL ({e.Message}; --pg is \"{new Npgsql.NpgsqlConnectionStringBuilder(options.Pg) { Password = null }}\"). " +
        "Start it (./dev pg starts the private one), or give --pg the connection string of yours.");
    return 3;
}
if (options.Security.AllowAnonymous)
    app.Logger.LogWarning("--insecure-allow-anonymous: every call without credentials acts as an administrator; do not let anyone else reach this control plane");
app.Logger.LogInformation("Mesh control plane: API {Scheme}://{Listen}:{Api}  gRPC {Scheme}://{Listen}:{Grpc}", options.Scheme, options.Listen, options.ApiPort, options.Scheme, options.Listen, options.GrpcPort);
await app.RunAsync();
return 0;

public partial class Program;
