namespace Messaging.LoadGenerator;

/// <summary>Latencies of one operation kind in the measured window (kept whole: a run holds at most a few million).</summary>
public sealed class OpRecorder(string name)
{
    private readonly List<double> _ms = new(1 << 16);
    private readonly Lock _lock = new();
    public string Name { get; } = name;

    public void Add(double ms)
    {
        lock (_lock)
            _ms.Add(ms);
    }

    public int Count
    {
        get { lock (_lock) return _ms.Count; }
    }

    /// <summary>Percentiles of the latencies added since <paramref name="from"/> (for the live line) or of all of them.</summary>
    public OpSummary Summary(double seconds, int from = 0)
    {
        double[] sorted;
        lock (_lock)
            sorted = _ms.Skip(from).ToArray();
        Array.Sort(sorted);
        return new OpSummary(Name, sorted.Length, seconds > 0 ? sorted.Length / seconds : 0,
            Percentile(sorted, 0.50), Percentile(sorted, 0.90), Percentile(sorted, 0.99),
            sorted.Length > 0 ? sorted[^1] : 0);
    }

    private static double Percentile(double[] sorted, double p) =>
        sorted.Length == 0 ? 0 : sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(p * sorted.Length) - 1)];
}

public sealed record OpSummary(string Op, int Count, double PerSecond, double P50Ms, double P90Ms, double P99Ms, double MaxMs);

public static class Table
{
    public static string Format(IReadOnlyList<string> header, IEnumerable<IReadOnlyList<string>> rows)
    {
        var all = new List<IReadOnlyList<string>> { header };
        all.AddRange(rows);
        var widths = Enumerable.Range(0, header.Count).Select(i => all.Max(r => i < r.Count ? r[i].Length : 0)).ToArray();
        var sb = new System.Text.StringBuilder();
        for (var r = 0; r < all.Count; r++)
        {
            sb.Append("| ").AppendJoin(" | ", all[r].Select((c, i) => i == 0 ? c.PadRight(widths[i]) : c.PadLeft(widths[i]))).AppendLine(" |");
            if (r == 0)
                sb.Append("| ").AppendJoin(" | ", widths.Select((w, i) => i == 0 ? new string('-', w) : new string('-', w - 1) + ":")).AppendLine(" |");
        }
        return sb.ToString();
    }

    public static string Ms(double v) => v < 10 ? v.ToString("0.00") : v < 100 ? v.ToString("0.0") : v.ToString("0");
}
