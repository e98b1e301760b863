using System.Net.Sockets;
using Npgsql;

namespace Mesh.ControlPlane.EventStore;

/// <summary>Which database failures are worth waiting out, for every part of the control plane that retries.</summary>
public static class DatabaseErrors
{
    // Worth waiting out: the server restarting or refusing connections for now, the network, the pool. Anything
    // else (a missing table, bad SQL) is a bug and must surface. Marten wraps Npgsql's errors: the cause decides.
    public static bool IsConnectionLoss(Exception e) => e.InnerException is { } inner && IsConnectionLoss(inner) || e switch
    {
        PostgresException pg => pg.IsTransient
            || pg.SqlState.StartsWith("57P", StringComparison.Ordinal)   // admin/crash shutdown, cannot connect now
            || pg.SqlState.StartsWith("08", StringComparison.Ordinal),   // connection exception
        NpgsqlException => true,                                          // no server error: the connection itself failed
        IOException or SocketException or TimeoutException => true,
        _ => false,
    };
}
