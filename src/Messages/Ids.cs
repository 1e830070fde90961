using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;

namespace Messaging.Messages;

public static partial class Ids
{
    public const int MaxUserIdLength = 64;
    public const int MaxClientMessageIdLength = 128;
    public const int MaxConversationIdLength = 200;

    /// <summary>1:1 conversations are named by their sorted participants, so both copies agree without talking.</summary>
    public static string ConversationFor(string a, string b) =>
        string.CompareOrdinal(a, b) <= 0 ? $"dm~{a}~{b}" : $"dm~{b}~{a}";

    public const string GroupPrefix = "grp~";

    /// <summary>Group conversations start with <see cref="GroupPrefix"/>, which no user id or 1:1 id does.</summary>
    public static bool IsGroup(string conversationId) => conversationId.StartsWith(GroupPrefix, StringComparison.Ordinal);

    /// <summary>
    /// A group's id follows from its creator and the create request's clientRequestId, so a retried create reaches the
    /// same group entity, which answers with the group it already made: idempotent without any other lookup.
    /// </summary>
    public static string GroupFor(string creatorId, string clientRequestId)
    {
        Span<byte> digest = stackalloc byte[32];
        SHA256.HashData(Encoding.UTF8.GetBytes($"{creatorId}\n{clientRequestId}"), digest);
        // 130 bits in 26 base32 characters ([a-z2-7]: URL-safe, within the conversation id characters).
        const string alphabet = "abcdefghijklmnopqrstuvwxyz234567";
        Span<char> id = stackalloc char[26];
        var bits = 0;
        var value = 0;
        var at = 0;
        for (var i = 0; at < id.Length; i++)
        {
            value = (value << 8) | digest[i];
            bits += 8;
            while (bits >= 5 && at < id.Length)
            {
                bits -= 5;
                id[at++] = alphabet[(value >> bits) & 31];
            }
        }
        return GroupPrefix + new string(id);
    }

    /// <summary>A group's messages are numbered by the group's own stamps, which strictly increase per group.</summary>
    public static string GroupMessageId(string groupId, long serverTimestamp) =>
        $"{serverTimestamp:x}-{groupId[GroupPrefix.Length..]}";

    /// <summary>The user-id rule (<see cref="UserIdRule"/>): every check of a user id is this one.</summary>
    public static bool IsValidUserId(string? value) =>
        value is { Length: > 0 and <= MaxUserIdLength } && UserIdPattern().IsMatch(value);

    /// <summary><see cref="IsValidUserId"/> in words, for every answer that refuses a user id.</summary>
    public static readonly string UserIdRule = $"1-{MaxUserIdLength} characters of {UserIdCharacters}";

    public static bool IsValidClientMessageId(string? value) =>
        value is { Length: > 0 and <= MaxClientMessageIdLength } && ClientMessageIdPattern().IsMatch(value);

    public static bool IsValidConversationId(string? value) =>
        value is { Length: > 0 and <= MaxConversationIdLength } && ConversationIdPattern().IsMatch(value);

    /// <summary>Message ids are unique because a mailbox's stamps strictly increase: sender + stamp.</summary>
    public static string MessageId(string senderId, long serverTimestamp) => $"{serverTimestamp:x}-{senderId}";

    /// <summary>Whether <paramref name="messageId"/> is exactly <see cref="MessageId"/> of the sender and stamp (no allocation).</summary>
    public static bool IsDerivedMessageId(string? messageId, string? senderId, long serverTimestamp) =>
        messageId is not null && senderId is not null && IsStampAndSuffix(messageId, senderId, serverTimestamp);

    /// <summary>Whether <paramref name="messageId"/> is exactly <see cref="GroupMessageId"/> of the group and stamp (no allocation).</summary>
    public static bool IsGroupMessageId(string? messageId, string groupId, long serverTimestamp) =>
        messageId is not null && IsGroup(groupId) && IsStampAndSuffix(messageId, groupId.AsSpan(GroupPrefix.Length), serverTimestamp);

    /// <summary>The shape both message ids share: the stamp in hex, a dash, then <paramref name="suffix"/>.</summary>
    private static bool IsStampAndSuffix(string messageId, ReadOnlySpan<char> suffix, long serverTimestamp)
    {
        Span<char> hex = stackalloc char[16];
        if (!serverTimestamp.TryFormat(hex, out var written, "x"))
            return false;
        var id = messageId.AsSpan();
        return id.Length == written + 1 + suffix.Length
            && id[..written].SequenceEqual(hex[..written])
            && id[written] == '-'
            && id[(written + 1)..].SequenceEqual(suffix);
    }

    /// <summary>Stable 64-bit digest of a text, so the dedup window can tell a retry from a reuse without the text.</summary>
    public static ulong TextHash(string text)
    {
        Span<byte> digest = stackalloc byte[32];
        SHA256.HashData(Encoding.UTF8.GetBytes(text), digest);
        return BinaryPrimitives.ReadUInt64LittleEndian(digest);
    }

    // The character classes are public so the OpenAPI document states the very rules these checks apply.
    public const string UserIdCharacters = "[A-Za-z0-9._-]";
    public const string ClientMessageIdCharacters = "[A-Za-z0-9._:-]";
    public const string ConversationIdCharacters = "[A-Za-z0-9._~-]";

    // \z, not $: in .NET `$` also matches before a final newline, so "bob\n" would pass as a different user than "bob".
    [GeneratedRegex("^" + UserIdCharacters + @"+\z")]
    private static partial Regex UserIdPattern();

    [GeneratedRegex("^" + ClientMessageIdCharacters + @"+\z")]
    private static partial Regex ClientMessageIdPattern();

    [GeneratedRegex("^" + ConversationIdCharacters + @"+\z")]
    private static partial Regex ConversationIdPattern();
}
