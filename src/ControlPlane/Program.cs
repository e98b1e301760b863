using Mesh.ControlPlane;

// mesh-controlplane: the REST API, the agent protocol, and the event-sourced desired state behind them.
var builder = WebApplication.CreateBuilder(args);
ControlPlaneOptions options;
try { options = ControlPlaneOptions.From(builder.Configuration); }
catch (ArgumentException e)
{
    Console.Error.WriteLine($"error: {e.Message}");
    return 2;
}
builder.AddControlPlane(options);
var app = builder.Build();
await app.MapControlPlaneAsync(options);
app.Logger.LogInformation("Mesh control plane: API http://{Listen}:{Api}  gRPC http://{Listen}:{Grpc}", options.Listen, options.ApiPort, options.Listen, options.GrpcPort);
await app.RunAsync();
return 0;

public partial class Program;
