using System.Reflection;
using Messaging.Actors;

namespace Messaging.Node;

/// <summary>One configuration key: its full name, its type and its value (null: unset, or worked out at start).</summary>
public sealed record SettingKey(string Key, Type Type, object? Value);

/// <summary>
/// Every key, read off the bound types themselves: a settable property of a plain type (text, number, enum, time span)
/// is a key named by its path; a dictionary is a section per name (its keys once, with <see cref="AnyName"/> for the
/// name); any other settable property is a section. So a property added to a bound record is a key, with its default,
/// without a second edit; the README's table is checked against this list.
/// </summary>
public sealed partial class NodeSettings
{
    /// <summary>Every key with its default.</summary>
    public static IReadOnlyList<SettingKey> Keys { get; } = new NodeSettings().Describe();

    /// <summary>Stands for any name in a key of a section per name (<c>Messaging:Persistence:Servers:&lt;name&gt;:ConnectionString</c>).</summary>
    public const string AnyName = "<name>";

    /// <summary>Whether a configured key (any case) is one of <see cref="Keys"/>.</summary>
    public static bool IsKey(string configured)
    {
        var segments = configured.Split(':');
        return Keys.Any(key => key.Key.Split(':') is var pattern && pattern.Length == segments.Length
            && pattern.Zip(segments, (part, given) => (part == AnyName && given.Length > 0)
                || string.Equals(part, given, StringComparison.OrdinalIgnoreCase)).All(matches => matches));
    }

    /// <summary>Every key with this instance's value.</summary>
    public IReadOnlyList<SettingKey> Describe() => [.. Describe(Section, this)];

    private static IEnumerable<SettingKey> Describe(string path, object section)
    {
        foreach (var property in section.GetType().GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            // Derived values (SeedNodeList, ConnectionString) have no setter; a clock is for tests, not configuration.
            if (property.SetMethod is not { IsPublic: true } || property.PropertyType == typeof(TimeProvider))
                continue;
            var value = property.GetValue(section);
            if (IsPlain(property.PropertyType))
                yield return new SettingKey($"{path}:{property.Name}", property.PropertyType, value);
            else if (property.PropertyType.IsGenericType && property.PropertyType.GetGenericTypeDefinition() == typeof(Dictionary<,>))
            {
                // Each name's keys have no default of their own: described once, for a fresh entry.
                var entry = Activator.CreateInstance(property.PropertyType.GetGenericArguments()[1])!;
                foreach (var key in Describe($"{path}:{property.Name}:{AnyName}", entry))
                    yield return key;
            }
            else
            {
                // MailboxLimits' keys sit beside the other Messaging:Mailbox keys (see Load).
                var inner = property.PropertyType == typeof(MailboxLimits) ? path : $"{path}:{property.Name}";
                foreach (var key in Describe(inner, value ?? throw new InvalidOperationException($"{inner} is null")))
                    yield return key;
            }
        }
    }

    private static bool IsPlain(Type type)
    {
        type = Nullable.GetUnderlyingType(type) ?? type;
        return type.IsPrimitive || type.IsEnum || type == typeof(string) || type == typeof(TimeSpan) || type == typeof(decimal);
    }
}
