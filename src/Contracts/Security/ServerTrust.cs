using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Mesh.Contracts.Security;

/// <summary>
/// Which control planes a client believes: with a CA file (the one <c>./dev up</c> makes, or a company's), only servers
/// whose certificate that CA issued for the name dialled; without one, the system's roots. The name is checked either
/// way: a certificate the CA issued for another host is refused.
/// </summary>
public static class ServerTrust
{
    /// <summary><paramref name="handler"/>, made to trust only the CAs of <paramref name="caFile"/> when it is given.</summary>
    /// <exception cref="ArgumentException">the file is missing or holds no PEM certificate</exception>
    public static SocketsHttpHandler TrustingCa(this SocketsHttpHandler handler, string? caFile)
    {
        if (caFile is null) return handler;
        var roots = ReadCertificates(caFile);
        var policy = new X509ChainPolicy { TrustMode = X509ChainTrustMode.CustomRootTrust, RevocationMode = X509RevocationMode.NoCheck };
        policy.CustomTrustStore.AddRange(roots);
        handler.SslOptions.CertificateChainPolicy = policy;
        return handler;
    }

    /// <summary>Every certificate of a PEM file.</summary>
    public static X509Certificate2Collection ReadCertificates(string path)
    {
        if (!File.Exists(path)) throw new ArgumentException($"the CA file {path} does not exist");
        var certificates = new X509Certificate2Collection();
        try { certificates.ImportFromPemFile(path); }
        catch (CryptographicException e) { throw new ArgumentException($"the CA file {path} is not PEM certificates: {e.Message}", e); }
        return certificates.Count > 0 ? certificates : throw new ArgumentException($"the CA file {path} holds no PEM certificate");
    }
}
