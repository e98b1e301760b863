using Mesh.Contracts.Security;

namespace Mesh.Lab;

/// <summary>
/// Each lab agent authenticates as its node: the lab adds a token with the group <c>mesh:node:NAME</c> to the control
/// plane's token file (which the control plane reads again when it changes) and hands it to the agent in a file of its
/// own, readable by root only. The token's user names the lab too, so labs with a node of the same name against one
/// control plane hold tokens of their own. A node that already has a token in the file keeps it, so restarting an agent
/// adds nothing; <c>lab down</c> revokes the lab's tokens.
/// </summary>
public static class LabNodeTokens
{
    public static string UserOf(string lab, string node) => $"lab:{lab}:node:{node}";

    /// <returns>the path of the agent's token file</returns>
    public static string Issue(string controlPlaneTokenFile, string lab, string node, string agentTokenPath)
    {
        using var exclusive = Lock(controlPlaneTokenFile);
        var user = UserOf(lab, node);
        var existing = File.Exists(controlPlaneTokenFile)
            ? StaticTokenFile.Parse(File.ReadAllText(controlPlaneTokenFile), controlPlaneTokenFile)
                .FirstOrDefault(t => t.User == user && t.Groups.Contains($"mesh:node:{node}"))
            : null;
        var token = existing?.Token ?? StaticTokenFile.NewToken();
        if (existing is null) File.AppendAllText(controlPlaneTokenFile, StaticTokenFile.Line(token, user, user, [$"mesh:node:{node}"]));
        Directory.CreateDirectory(Path.GetDirectoryName(agentTokenPath)!);
        File.WriteAllText(agentTokenPath, token + "\n");
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(agentTokenPath, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        return agentTokenPath;
    }

    /// <summary>
    /// Removes the lab's node tokens from the control plane's token file; every other line stays as written. The file is
    /// replaced whole (a rename), so the control plane never reads half of it.
    /// </summary>
    /// <returns>how many tokens were revoked</returns>
    public static int Revoke(string controlPlaneTokenFile, string lab)
    {
        if (!File.Exists(controlPlaneTokenFile)) return 0;
        using var exclusive = Lock(controlPlaneTokenFile);
        var prefix = $"lab:{lab}:node:";
        var lines = File.ReadAllLines(controlPlaneTokenFile);
        var kept = lines.Where(line => !IsLabToken(line, prefix)).ToArray();
        if (kept.Length == lines.Length) return 0;
        var next = controlPlaneTokenFile + ".next";
        File.WriteAllLines(next, kept);
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(next, File.GetUnixFileMode(controlPlaneTokenFile));
        File.Move(next, controlPlaneTokenFile, overwrite: true);
        return lines.Length - kept.Length;
    }

    /// <summary>
    /// Labs that issue and revoke at once (several meshctl processes) take turns: a revoke rewrites the file, and a line
    /// appended between its read and its rename would be lost. The lock is an exclusive open of a file beside it.
    /// </summary>
    private static FileStream Lock(string controlPlaneTokenFile)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            try { return new FileStream(controlPlaneTokenFile + ".lock", FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None); }
            catch (IOException) when (DateTime.UtcNow < deadline) { Thread.Sleep(20); }
        }
    }

    private static bool IsLabToken(string line, string userPrefix)
    {
        try { return StaticTokenFile.Parse(line) is [var token] && token.User.StartsWith(userPrefix, StringComparison.Ordinal); }
        catch (FormatException) { return false; }   // not a token line of ours: kept as it is
    }
}
