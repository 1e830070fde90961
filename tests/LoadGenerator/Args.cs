using System.Globalization;

namespace Messaging.LoadGenerator;

/// <summary>--name value / --name=value / --flag; every option read is recorded so a misspelt one is refused.</summary>
public sealed class Args
{
    private readonly Dictionary<string, string?> _values = new(StringComparer.Ordinal);
    private readonly HashSet<string> _read = [];

    public Args(IEnumerable<string> args)
    {
        var list = args.ToList();
        for (var i = 0; i < list.Count; i++)
        {
            var a = list[i];
            if (!a.StartsWith("--", StringComparison.Ordinal))
                throw new ArgumentException($"unexpected argument '{a}'");
            var eq = a.IndexOf('=');
            if (eq > 0)
                _values[a[2..eq]] = a[(eq + 1)..];
            else if (i + 1 < list.Count && !list[i + 1].StartsWith("--", StringComparison.Ordinal))
                _values[a[2..]] = list[++i];
            else
                _values[a[2..]] = null;
        }
    }

    public string? Str(string name, string? fallback = null)
    {
        _read.Add(name);
        return _values.TryGetValue(name, out var v) ? v ?? fallback : fallback;
    }

    public bool Flag(string name)
    {
        _read.Add(name);
        return _values.TryGetValue(name, out var v) && v is null or "true" or "on" or "1";
    }

    public int Int(string name, int fallback) => Str(name) is { } v ? int.Parse(v, CultureInfo.InvariantCulture) : fallback;

    public double Double(string name, double fallback) => Str(name) is { } v ? double.Parse(v, CultureInfo.InvariantCulture) : fallback;

    public double? OptionalDouble(string name) => Str(name) is { } v ? double.Parse(v, CultureInfo.InvariantCulture) : null;

    public TimeSpan Seconds(string name, double fallback) => TimeSpan.FromSeconds(Double(name, fallback));

    public void RejectUnknown()
    {
        var unknown = _values.Keys.Where(k => !_read.Contains(k)).ToList();
        if (unknown.Count > 0)
            throw new ArgumentException($"unknown option(s): {string.Join(", ", unknown.Select(u => "--" + u))}");
    }
}
