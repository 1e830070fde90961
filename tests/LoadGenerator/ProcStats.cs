using System.Globalization;

namespace Messaging.LoadGenerator;

/// <summary>CPU and memory of processes from /proc (Linux): utime+stime in clock ticks, VmHWM and VmRSS.</summary>
public static class ProcStats
{
    private const double TicksPerSecond = 100.0; // USER_HZ on Linux

    public static double CpuSeconds(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            // after "pid (comm) ": state=0, ..., utime=11, stime=12
            return (long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture)) / TicksPerSecond;
        }
        catch (IOException) { return 0; }
    }

    public static int ParentPid(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            return int.Parse(stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[1], CultureInfo.InvariantCulture);
        }
        catch (IOException) { return -1; }
    }

    /// <summary>Time of a process's children that have exited and been waited for (cutime + cstime).</summary>
    public static double ReapedChildrenCpuSeconds(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            return (long.Parse(fields[13], CultureInfo.InvariantCulture) + long.Parse(fields[14], CultureInfo.InvariantCulture)) / TicksPerSecond;
        }
        catch (IOException) { return 0; }
    }

    /// <summary>
    /// A process, its live children and its exited ones (PostgreSQL's backends are the postmaster's children; a
    /// backend whose connection closed during the window is counted through the postmaster's cutime).
    /// </summary>
    public static double TreeCpuSeconds(int root)
    {
        var total = CpuSeconds(root) + ReapedChildrenCpuSeconds(root);
        foreach (var dir in System.IO.Directory.EnumerateDirectories("/proc"))
        {
            if (int.TryParse(Path.GetFileName(dir), out var pid) && pid != root && ParentPid(pid) == root)
                total += CpuSeconds(pid);
        }
        return total;
    }

    /// <summary>kB fields of /proc/pid/status, as bytes.</summary>
    public static long StatusBytes(int pid, string field)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{pid}/status"))
            {
                if (line.StartsWith(field + ":", StringComparison.Ordinal))
                    return long.Parse(line[(field.Length + 1)..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) * 1024;
            }
        }
        catch (IOException) { }
        return 0;
    }

    /// <summary>Machine-wide (busy, total) jiffies from /proc/stat, to see CPU used by anything else on the machine.</summary>
    public static (double Busy, double Total) MachineCpuSeconds()
    {
        var cpu = File.ReadLines("/proc/stat").First().Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1)
            .Select(v => long.Parse(v, CultureInfo.InvariantCulture)).ToArray();
        var idle = cpu[3] + (cpu.Length > 4 ? cpu[4] : 0);
        var total = cpu.Take(8).Sum();
        return ((total - idle) / TicksPerSecond, total / TicksPerSecond);
    }

    public static double LoadAverage1() =>
        double.Parse(File.ReadAllText("/proc/loadavg").Split(' ')[0], CultureInfo.InvariantCulture);
}

/// <summary>CPU seconds of each party over one measured window.</summary>
public sealed class CpuWindow
{
    private readonly Dictionary<string, Func<double>> _sources;
    private readonly Dictionary<string, double> _start = [];
    private (double Busy, double Total) _machineStart;
    private DateTime _startTime;

    public CpuWindow(Dictionary<string, Func<double>> sources) => _sources = sources;

    public void Start()
    {
        foreach (var (name, read) in _sources)
            _start[name] = read();
        _machineStart = ProcStats.MachineCpuSeconds();
        _startTime = DateTime.UtcNow;
    }

    /// <summary>Cores used by each party (CPU seconds / wall seconds), plus the machine's total and what is left for others.</summary>
    public Dictionary<string, double> Stop()
    {
        var wall = (DateTime.UtcNow - _startTime).TotalSeconds;
        var result = new Dictionary<string, double>();
        foreach (var (name, read) in _sources)
            result[name] = (read() - _start[name]) / wall;
        var machine = ProcStats.MachineCpuSeconds();
        result["machine"] = (machine.Busy - _machineStart.Busy) / wall;
        result["other"] = result["machine"] - _sources.Keys.Sum(k => result[k]);
        return result;
    }
}
