using System.Collections;
using System.Collections.Immutable;
using System.Reflection;

namespace Messaging.Messages.Tests;

/// <summary>
/// Structural comparison of contracts: records holding an ImmutableArray compare the array by reference, so record
/// equality cannot tell a correct round trip from a broken one. Walks public properties and array elements instead.
/// </summary>
public static class DeepEquality
{
    public static void AssertEqual(object? expected, object? actual) => Compare(expected, actual, "root");

    /// <summary>Null when equal, else the path of the first difference.</summary>
    public static string? FirstDifference(object? expected, object? actual)
    {
        try
        {
            Compare(expected, actual, "root");
            return null;
        }
        catch (DeepEqualityException e)
        {
            return e.Message;
        }
    }

    private static void Compare(object? expected, object? actual, string path)
    {
        if (expected is null || actual is null)
        {
            if (expected is not null || actual is not null)
                throw new DeepEqualityException($"{path}: expected {Show(expected)}, got {Show(actual)}");
            return;
        }

        var type = expected.GetType();
        if (type != actual.GetType())
            throw new DeepEqualityException($"{path}: expected a {type.Name}, got a {actual.GetType().Name}");

        if (type.IsPrimitive || type.IsEnum || expected is string or decimal)
        {
            if (!expected.Equals(actual))
                throw new DeepEqualityException($"{path}: expected {Show(expected)}, got {Show(actual)}");
            return;
        }

        if (type.IsGenericType && type.GetGenericTypeDefinition() == typeof(ImmutableArray<>))
        {
            var expectedDefault = (bool)type.GetProperty(nameof(ImmutableArray<int>.IsDefault))!.GetValue(expected)!;
            var actualDefault = (bool)type.GetProperty(nameof(ImmutableArray<int>.IsDefault))!.GetValue(actual)!;
            if (expectedDefault || actualDefault)
            {
                if (expectedDefault != actualDefault)
                    throw new DeepEqualityException($"{path}: expected default={expectedDefault}, got default={actualDefault}");
                return;
            }
            var e = ((IEnumerable)expected).Cast<object?>().ToList();
            var a = ((IEnumerable)actual).Cast<object?>().ToList();
            if (e.Count != a.Count)
                throw new DeepEqualityException($"{path}: expected {e.Count} elements, got {a.Count}");
            for (var i = 0; i < e.Count; i++)
                Compare(e[i], a[i], $"{path}[{i}]");
            return;
        }

        if (expected is Array expectedArray)
        {
            var actualArray = (Array)actual;
            if (expectedArray.Length != actualArray.Length)
                throw new DeepEqualityException($"{path}: expected {expectedArray.Length} elements, got {actualArray.Length}");
            for (var i = 0; i < expectedArray.Length; i++)
                Compare(expectedArray.GetValue(i), actualArray.GetValue(i), $"{path}[{i}]");
            return;
        }

        var properties = type.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.GetIndexParameters().Length == 0)
            .ToList();
        if (properties.Count == 0 && !type.IsValueType && !IsRecord(type))
            throw new InvalidOperationException($"{path}: don't know how to compare a {type.Name}");
        foreach (var property in properties)
            Compare(property.GetValue(expected), property.GetValue(actual), $"{path}.{property.Name}");
    }

    private static bool IsRecord(Type type) => type.GetMethod("<Clone>$") is not null;

    private static string Show(object? value) => value switch
    {
        null => "null",
        string s => $"\"{s}\"",
        _ => value.ToString() ?? "?",
    };

    private sealed class DeepEqualityException(string message) : Xunit.Sdk.XunitException(message);
}
