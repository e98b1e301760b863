using System.Text.Json;
using System.Text.Json.Serialization;

namespace Mesh.Lab;

/// <summary>
/// The lab's state file ($MESH_HOME/lab/{lab}/state.json) behind an exclusive lock file, so two meshctl
/// invocations never interleave their read-modify-write. The lock file sits beside the lab's folder and is never
/// deleted: a waiter always locks the same inode as the holder.
/// </summary>
public sealed class LabStateStore(string directory, string lab)
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    public string LabDirectory => Path.Combine(directory, lab);
    public string StatePath => Path.Combine(LabDirectory, "state.json");
    public string LogDirectory => Path.Combine(LabDirectory, "logs");
    private string LockPath => Path.Combine(directory, $"{lab}.lock");

    /// <summary>Holds the lab's lock until disposed; waits up to <paramref name="timeout"/> for another holder.</summary>
    public IDisposable Lock(TimeSpan? timeout = null)
    {
        Directory.CreateDirectory(directory);
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(60));
        while (true)
        {
            try
            {
                // On Unix, FileShare.None takes an exclusive flock, released when the handle closes (even on a crash).
                return new FileStream(LockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException) when (DateTime.UtcNow < deadline)
            {
                Thread.Sleep(100);
            }
            catch (IOException e)
            {
                throw new LabException($"another meshctl is working on lab '{lab}' (lock {LockPath} is held); wait for it to finish and retry", e);
            }
        }
    }

    /// <summary>The recorded state, or null when there is none. A damaged file reads as null (down still scans).</summary>
    public LabState? Load()
    {
        if (!File.Exists(StatePath)) return null;
        try { return JsonSerializer.Deserialize<LabState>(File.ReadAllText(StatePath), Json); }
        catch (JsonException) { return null; }
    }

    /// <summary>Writes atomically (temp file + rename), so a crash never leaves half a JSON document.</summary>
    public void Save(LabState state)
    {
        Directory.CreateDirectory(LabDirectory);
        var temp = StatePath + ".tmp";
        File.WriteAllText(temp, JsonSerializer.Serialize(state, Json));
        File.Move(temp, StatePath, overwrite: true);
    }

    public void Delete()
    {
        if (Directory.Exists(LabDirectory)) Directory.Delete(LabDirectory, recursive: true);
    }
}
