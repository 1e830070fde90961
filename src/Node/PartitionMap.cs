using System.Globalization;
using Messaging.Actors;

namespace Messaging.Node;

/// <summary>
/// <c>Messaging:Persistence:Partitions</c>: which database server each of the <see cref="JournalPartitions.Count"/>
/// logical partitions is on, as comma-separated inclusive ranges (or single partitions) with a server's name:
/// <c>0-127=a,128-255=b</c>. Every partition must be named exactly once.
/// </summary>
public static class PartitionMap
{
    private const string Key = "Messaging:Persistence:Partitions";

    /// <summary>The server of each partition (in partition order), or the problems, each naming the key.</summary>
    public static (string[]? ServerByPartition, IReadOnlyList<string> Problems) Parse(string? text, IReadOnlyCollection<string> servers)
    {
        var problems = new List<string>();
        var byPartition = new string?[JournalPartitions.Count];
        var known = new HashSet<string>(servers, StringComparer.OrdinalIgnoreCase);
        foreach (var entry in (text ?? "").Split(',', StringSplitOptions.TrimEntries))
        {
            var (range, server) = entry.Split('=', StringSplitOptions.TrimEntries) is [var r, var s] ? (r, s) : ("", "");
            var bounds = range.Split('-', StringSplitOptions.TrimEntries);
            if (server.Length == 0 || bounds.Length > 2 || !bounds.All(IsNumber))
            {
                problems.Add($"{Key}: '{entry}' is not a range of partitions and a server, like 0-127=a");
                continue;
            }
            var (first, last) = (Number(bounds[0]), Number(bounds[^1]));
            if (first > last || last >= JournalPartitions.Count)
            {
                problems.Add($"{Key}: '{entry}' is not within 0-{JournalPartitions.Count - 1}, low to high");
                continue;
            }
            if (!known.Contains(server))
            {
                problems.Add($"{Key}: '{entry}' names server '{server}', which is not in Messaging:Persistence:Servers " +
                    $"(the servers are: {string.Join(", ", servers.Order(StringComparer.Ordinal))})");
                continue;
            }
            for (var partition = first; partition <= last; partition++)
            {
                if (byPartition[partition] is { } already)
                    problems.Add($"{Key}: partition {partition} is on '{already}' and again on '{server}' in '{entry}'");
                byPartition[partition] = server.ToLowerInvariant();
            }
        }
        if (problems.Count == 0)
            problems.AddRange(Ranges(byPartition, partition => partition is null)
                .Select(gap => $"{Key}: partitions {gap} are on no server (every one of 0-{JournalPartitions.Count - 1} must be named once)"));
        return problems.Count == 0 ? ([.. byPartition.Select(s => s!)], []) : (null, problems.Distinct().ToList());
    }

    /// <summary>The map written as <see cref="Parse"/> reads it, one range per run of partitions on one server (for logs).</summary>
    public static string Format(IReadOnlyList<string> serverByPartition)
    {
        var ranges = new List<string>();
        for (var start = 0; start < serverByPartition.Count;)
        {
            var end = start;
            while (end + 1 < serverByPartition.Count && serverByPartition[end + 1] == serverByPartition[start])
                end++;
            ranges.Add($"{(start == end ? $"{start}" : $"{start}-{end}")}={serverByPartition[start]}");
            start = end + 1;
        }
        return string.Join(',', ranges);
    }

    private static bool IsNumber(string text) => text.Length is > 0 and <= 4 && text.All(char.IsAsciiDigit);

    private static int Number(string text) => int.Parse(text, CultureInfo.InvariantCulture);

    private static IEnumerable<string> Ranges<T>(IReadOnlyList<T> items, Func<T, bool> selected)
    {
        for (var start = 0; start < items.Count; start++)
        {
            if (!selected(items[start]))
                continue;
            var end = start;
            while (end + 1 < items.Count && selected(items[end + 1]))
                end++;
            yield return start == end ? $"{start}" : $"{start}-{end}";
            start = end;
        }
    }
}
