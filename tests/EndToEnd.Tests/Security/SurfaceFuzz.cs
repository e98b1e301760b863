using System.Diagnostics;
using System.Globalization;
using System.Text;
using FsCheck;
using FsCheck.Fluent;
using Npgsql;

namespace Mesh.EndToEnd.Tests.Security;

/// <summary>
/// What one fuzz run may spend and where it starts. MESH_FUZZ_SECONDS is the budget of the REST and gRPC runs
/// together (45 s by default), MESH_FUZZ_SEED the seed (a fixed one by default, so CI runs the same cases every
/// time). Case i of a seed is the same request in every run, so a failure names the seed and the case to replay.
/// </summary>
internal sealed class FuzzRun
{
    public const ulong DefaultSeed = 17_08_2026;
    private const double DefaultSeconds = 45;

    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly SortedDictionary<string, int> _outcomes = new(StringComparer.Ordinal);
    /// <summary>Broken properties by kind (e.g. "404 with an empty body at GET /v1/x/{id}"): how many, and the first case of each.</summary>
    private readonly Dictionary<string, (int Count, string First)> _failures = new(StringComparer.Ordinal);

    private FuzzRun(ulong seed, TimeSpan budget, int maxCases) => (Seed, Budget, MaxCases) = (seed, budget, maxCases);

    public ulong Seed { get; }
    public TimeSpan Budget { get; }
    public int MaxCases { get; }
    public int Tried { get; private set; }
    public TimeSpan Elapsed => _clock.Elapsed;

    /// <param name="share">This run's part of MESH_FUZZ_SECONDS.</param>
    public static FuzzRun Start(double share, int maxCases)
    {
        var seconds = double.TryParse(Environment.GetEnvironmentVariable("MESH_FUZZ_SECONDS"), NumberStyles.Float, CultureInfo.InvariantCulture, out var s) ? s : DefaultSeconds;
        var seed = ulong.TryParse(Environment.GetEnvironmentVariable("MESH_FUZZ_SEED"), NumberStyles.None, CultureInfo.InvariantCulture, out var given) ? given : DefaultSeed;
        return new FuzzRun(seed, TimeSpan.FromSeconds(seconds * share), maxCases);
    }

    /// <summary>Whether another case fits the budget (time and count).</summary>
    public bool More => Tried < MaxCases && _clock.Elapsed < Budget;

    /// <summary>Case <paramref name="index"/> of this seed: the same value in every run, whatever came before it.</summary>
    public T Case<T>(Gen<T> gen, int index)
    {
        Tried = index + 1;
        var rnd = new Rnd(Seed * 0x9E37_79B9_7F4A_7C15UL + (ulong)index);
        return gen.Sample(1 + index % 100, rnd, 1)[0];
    }

    public void Count(string outcome) => _outcomes[outcome] = _outcomes.GetValueOrDefault(outcome) + 1;

    /// <summary>Remembers a broken property; the run goes on, so one bug does not hide the next.</summary>
    /// <param name="kind">What broke where, without the case's details: failures of one kind are counted together.</param>
    public void Fail(int index, string kind, string detail) =>
        _failures[kind] = _failures.TryGetValue(kind, out var seen) ? (seen.Count + 1, seen.First) : (1, $"seed {Seed}, case {index}: {detail}");

    public string Summary(string surface) =>
        $"{surface} fuzz: seed {Seed} (replay with MESH_FUZZ_SEED={Seed}), {Tried} cases in {_clock.Elapsed.TotalSeconds:0.0} s: "
        + string.Join(", ", _outcomes.Select(o => $"{o.Key} × {o.Value}"));

    /// <summary>Fails the test with every broken property (the first ten in full), after printing the summary.</summary>
    public void Verdict(string surface, string serverLog)
    {
        var summary = Summary(surface);
        TestContext.Current.TestOutputHelper?.WriteLine(summary);
        if (_failures.Count == 0) return;
        var tail = string.Join('\n', serverLog.Split('\n').TakeLast(60));
        var kinds = _failures.OrderByDescending(f => f.Value.Count).Select(f => $"{f.Value.Count} × {f.Key}\n  first: {f.Value.First}");
        throw new Xunit.Sdk.XunitException($"{_failures.Values.Sum(f => f.Count)} broken properties; {summary}\n\n{string.Join("\n\n", kinds)}\n\ncontrol plane log (tail):\n{tail}");
    }
}

/// <summary>The text a hostile client sends: names of every shape, control characters, lone surrogates, huge runs, YAML and JSON syntax.</summary>
internal static class HostileText
{
    private static readonly string[] Plausible = ["default", "shop", "web", "db", "node-1", "fuzz", "audit", "a", "kube-system", "x.y-z", "0", "-1"];

    private static readonly string[] Odd =
    [
        "\0", "\u0001", "\u001f", "\u007f", "\u0085", "\u2028", "\u202e", "\ufeff", "\uffff", "\ufffe", "\ud800", "\udfff", "\ud83d\ude00",
        "é", "ß", "İ", "ǅ", "Ω", "ｆｕｌｌ", "\u0301", " ", "\t", "\r\n", "\n", "/", "\\", "..", ".", "%", "%00", "?", "#", "&", "=", "+", ";",
        ":", "@", "\"", "'", "`", "<", ">", "{", "}", "[", "]", "*", "&a", "!!str", "---", "~", "null", "true", "NaN", "1e400",
        "-9223372036854775809", "18446744073709551616", "0x10", "010", "${x}", "{{x}}", "%s%n", "' OR 1=1 --", "DROP TABLE mt_events;",
    ];

    public static readonly Gen<string> Piece = Gen.Frequency(
        (4, Gen.Elements(Plausible)),
        (4, Gen.Elements(Odd)),
        (2, Gen.Choose(0, 0xD7FF).Select(c => ((char)c).ToString())),
        (1, Gen.Choose(0xD800, 0xFFFF).Select(c => ((char)c).ToString())));

    /// <summary>Strings of any shape: short and plausible, strange, or long (a few up to hundreds of KB).</summary>
    public static readonly Gen<string> Any = Gen.Frequency(
        (6, Gen.Choose(0, 8).SelectMany(n => Gen.ListOf(Piece, n)).Select(string.Concat)),
        (2, Gen.Elements(Plausible)),
        (1, Gen.Choose(64, 300).Select(n => new string('a', n))),
        (1, Gen.Choose(1_000, 300_000).SelectMany(n => Gen.Elements("x", "\0", "é", "\ud800", "[").Select(c => string.Concat(Enumerable.Repeat(c, n / c.Length))))));

    /// <summary>Short strings (at most a few hundred characters), for what travels in a URL or a header.</summary>
    public static readonly Gen<string> Short = Gen.Frequency(
        (6, Gen.Choose(0, 6).SelectMany(n => Gen.ListOf(Piece, n)).Select(string.Concat)),
        (3, Gen.Elements(Plausible)),
        (1, Gen.Choose(64, 1_500).Select(n => new string('n', n))));

    public static readonly Gen<long> Number = Gen.Frequency(
        (3, Gen.Choose(-3, 300).Select(i => (long)i)),
        (2, Gen.Elements(long.MinValue, long.MaxValue, int.MinValue, int.MaxValue, (long)uint.MaxValue, 65535L, 65536L, -1L, 0L)),
        (1, Gen.Choose(int.MinValue, int.MaxValue).Select(i => (long)i * 4099)));

    /// <summary>A JSON string literal; lone surrogates and NUL travel as escapes, as a hostile client may write them.</summary>
    public static string JsonString(string s)
    {
        var b = new StringBuilder("\"");
        foreach (var c in s)
            b.Append(c switch
            {
                '"' => "\\\"",
                '\\' => "\\\\",
                < ' ' or (>= '\ud800' and <= '\udfff') => $"\\u{(int)c:x4}",
                _ => c.ToString(),
            });
        return b.Append('"').ToString();
    }
}

/// <summary>
/// The log as the database holds it: "nothing was stored" means no event was appended while a refused request ran,
/// except in the streams the caller says belong to work that goes on in the background (a node's coalesced reports).
/// </summary>
internal sealed class LogWatch(string connectionString)
{
    public async Task<long> HeadAsync()
    {
        await using var conn = new NpgsqlConnection(connectionString);
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand("SELECT coalesce(max(seq_id), 0) FROM mt_events", conn);
        return Convert.ToInt64(await cmd.ExecuteScalarAsync(), CultureInfo.InvariantCulture);
    }

    /// <summary>"stream: type" of each event appended after <paramref name="head"/>, outside <paramref name="background"/>.</summary>
    public async Task<IReadOnlyList<string>> AppendedSinceAsync(long head, IEnumerable<string>? background = null)
    {
        var skipped = new HashSet<string>(background ?? [], StringComparer.Ordinal);
        await using var conn = new NpgsqlConnection(connectionString);
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand("SELECT stream_id, type FROM mt_events WHERE seq_id > $1 ORDER BY seq_id", conn) { Parameters = { new() { Value = head } } };
        await using var reader = await cmd.ExecuteReaderAsync();
        var appended = new List<string>();
        while (await reader.ReadAsync())
        {
            var stream = reader.GetString(0);
            if (!skipped.Contains(stream)) appended.Add($"{stream}: {reader.GetString(1)}");
        }
        return appended;
    }
}
