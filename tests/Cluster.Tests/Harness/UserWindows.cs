namespace Messaging.Cluster.Tests.Harness;

/// <summary>
/// How long users went without an acknowledgement around a fault: for each user, the longest time between two of its
/// acknowledgements (or the fault and its first) that overlaps [fault, end]. Affected: a user whose longest is over 2 s
/// (a user sends every 100 ms or so when served). The kill and partition scenarios use it.
/// </summary>
public sealed record UserWindows(int Users, int Affected, TimeSpan Longest, TimeSpan MedianAffected)
{
    public static UserWindows Of(LoadClient load, TimeSpan fault, TimeSpan end)
    {
        var acks = load.Acks.GroupBy(a => a.SenderId).ToDictionary(g => g.Key, g => g.Select(a => a.At).Order().ToList());
        var longest = load.UserIds.Select(user =>
        {
            var times = acks.GetValueOrDefault(user) ?? [];
            var worst = TimeSpan.Zero;
            for (var i = 1; i < times.Count; i++)
                if (times[i] > fault && times[i - 1] < end)
                    worst = TimeSpan.FromTicks(Math.Max(worst.Ticks, (times[i] - (times[i - 1] > fault ? times[i - 1] : fault)).Ticks));
            return worst;
        }).ToList();
        var affected = longest.Where(t => t > TimeSpan.FromSeconds(2)).Order().ToList();
        return new(longest.Count, affected.Count, longest.Max(), affected.Count > 0 ? affected[affected.Count / 2] : TimeSpan.Zero);
    }

    public override string ToString() =>
        $"{Affected} of {Users} users waited over 2 s for an acknowledgement (longest {Longest.TotalSeconds:0.0} s, median of those {MedianAffected.TotalSeconds:0.0} s)";
}
