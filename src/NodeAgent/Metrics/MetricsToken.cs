using System.Security.Cryptography;
using System.Text;

namespace Mesh.NodeAgent.Metrics;

/// <summary>
/// The bearer token a scraper of the agent's <c>/metrics</c> must present, read from a file (as Prometheus's
/// <c>authorization.credentials_file</c> holds it) and read again when the file changes, so rotating it needs no
/// restart. A file that cannot be read or is empty admits nobody.
/// </summary>
public sealed class MetricsToken
{
    private readonly string _path;
    private readonly Lock _gate = new();
    private (DateTime Written, long Length)? _readVersion;
    private byte[]? _digest;

    private MetricsToken(string path) => _path = path;

    /// <summary>Reads the token now: throws ArgumentException (naming <paramref name="flag"/>) when there is none.</summary>
    public static MetricsToken Load(string path, string flag)
    {
        var token = new MetricsToken(path);
        try
        {
            if (token.Current() is null) throw new ArgumentException($"{flag}: {path} holds no token");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ArgumentException($"{flag}: cannot read {path}: {e.Message}", e);
        }
        return token;
    }

    /// <summary>Whether an <c>Authorization</c> header value is <c>Bearer</c> and this token, compared in constant time.</summary>
    public bool Admits(string? authorization)
    {
        const string scheme = "Bearer ";
        if (authorization is null || !authorization.StartsWith(scheme, StringComparison.OrdinalIgnoreCase)) return false;
        byte[]? expected;
        try { expected = Current(); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return false; }
        // Digests have one length whatever was sent: the comparison takes as long for every wrong token.
        return expected is not null && CryptographicOperations.FixedTimeEquals(expected, Digest(authorization[scheme.Length..].Trim()));
    }

    private byte[]? Current()
    {
        var file = new FileInfo(_path);
        if (!file.Exists) throw new FileNotFoundException($"{_path} does not exist", _path);
        var version = (file.LastWriteTimeUtc, file.Length);
        lock (_gate)
        {
            if (_readVersion != version)
            {
                var text = File.ReadAllText(_path).Trim();
                (_digest, _readVersion) = (text.Length == 0 ? null : Digest(text), version);
            }
            return _digest;
        }
    }

    private static byte[] Digest(string token) => SHA256.HashData(Encoding.UTF8.GetBytes(token));
}
