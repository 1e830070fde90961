using Messaging.Messages;

namespace Messaging.Http.OpenApi;

/// <summary>The kinds of id API.md defines, each with the rule <see cref="Ids"/> checks.</summary>
public enum IdKind
{
    User,
    ClientMessage,
    Conversation,
}

/// <summary>
/// The value (or, on an array, each item) is an id of <paramref name="kind"/>: the document states its pattern and
/// length. Description only; the edge checks ids itself and answers 400.
/// </summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Parameter)]
public sealed class IdAttribute(IdKind kind) : Attribute
{
    public IdKind Kind { get; } = kind;

    /// <summary>ECMA-262 pattern (the document's dialect): in JSON Schema, <c>$</c> is the end of the input.</summary>
    public string Pattern => Kind switch
    {
        IdKind.User => "^" + Ids.UserIdCharacters + "+$",
        IdKind.ClientMessage => "^" + Ids.ClientMessageIdCharacters + "+$",
        IdKind.Conversation => "^" + Ids.ConversationIdCharacters + "+$",
        _ => throw new ArgumentOutOfRangeException(nameof(Kind), Kind, null),
    };

    public int MaxLength => Kind switch
    {
        IdKind.User => Ids.MaxUserIdLength,
        IdKind.ClientMessage => Ids.MaxClientMessageIdLength,
        IdKind.Conversation => Ids.MaxConversationIdLength,
        _ => throw new ArgumentOutOfRangeException(nameof(Kind), Kind, null),
    };
}

/// <summary>
/// A request body whose properties are nullable in C# only so that a missing field reaches the edge's validation (a
/// 400 with a clear detail) instead of failing deserialization. The document describes the contract instead: a
/// property marked <see cref="System.ComponentModel.DataAnnotations.RequiredAttribute"/> is required, the others are
/// optional, and none is nullable.
/// </summary>
[AttributeUsage(AttributeTargets.Class)]
public sealed class EdgeValidatedAttribute : Attribute
{
    /// <summary>At least this many of the properties must be given (the edge answers 400 otherwise); 0: no minimum.</summary>
    public int MinProperties { get; set; }
}
