using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Mesh.Testing;

/// <summary>
/// A CA and a server certificate it issued, as PEM files in a directory of their own (what <c>./dev up</c> makes with
/// openssl): the server certificate names <paramref name="serverNames"/> (IP addresses or DNS names).
/// </summary>
public sealed class TestCertificates : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("mesh-tls-").FullName;

    public string CaFile => Path.Combine(_directory, "ca.crt");
    public string ServerCertFile => Path.Combine(_directory, "server.crt");
    public string ServerKeyFile => Path.Combine(_directory, "server.key");

    public TestCertificates(params string[] serverNames)
    {
        using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var caRequest = new CertificateRequest("CN=Mesh test CA", caKey, HashAlgorithmName.SHA256);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        // One validity window for both: a server certificate may not outlive its issuer, even by the moment between two clock reads.
        var now = DateTimeOffset.UtcNow;
        var (notBefore, notAfter) = (now.AddMinutes(-5), now.AddDays(1));
        using var ca = caRequest.CreateSelfSigned(notBefore, notAfter);

        using var serverKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var serverRequest = new CertificateRequest("CN=mesh-controlplane", serverKey, HashAlgorithmName.SHA256);
        var names = new SubjectAlternativeNameBuilder();
        foreach (var name in serverNames.Length > 0 ? serverNames : ["127.0.0.1", "localhost"])
            if (System.Net.IPAddress.TryParse(name, out var ip)) names.AddIpAddress(ip); else names.AddDnsName(name);
        serverRequest.CertificateExtensions.Add(names.Build());
        serverRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        serverRequest.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));   // serverAuth
        using var server = serverRequest.Create(ca, notBefore, notAfter, RandomNumberGenerator.GetBytes(16));

        File.WriteAllText(CaFile, ca.ExportCertificatePem());
        File.WriteAllText(ServerCertFile, server.ExportCertificatePem());
        File.WriteAllText(ServerKeyFile, serverKey.ExportPkcs8PrivateKeyPem());
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);
}
