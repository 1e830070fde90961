using System.Buffers;
using System.Collections.Immutable;
using System.Text;
using System.Text.Unicode;
using Messaging.Messages;

namespace Messaging.Actors;

/// <summary>
/// One message of a conversation's in-memory window, compact: its numbers and text in one UTF-8 array, its sender the
/// conversation's string. A window of 50 messages otherwise holds a StoredMessage, a ChatMessage, a text string and a
/// clientMessageId string per message (~290 B against ~115 B here). Built into a <see cref="StoredMessage"/> on read
/// (<see cref="ToStored"/>), which gives back exactly what was stored.
/// </summary>
public readonly struct WindowMessage
{
    // Zigzag varints: seq, stamp, flags, tally (if any), text length in chars and in UTF-8 bytes; then the text and,
    // unless _extra holds it, the clientMessageId.
    private readonly byte[] _data;
    private readonly string _senderId;
    // Null, the clientMessageId (when UTF-8 cannot carry it unchanged), or Unusual.
    private readonly object? _extra;

    // GroupDerivedId: the message id is the group's (Ids.GroupMessageId of the conversation and stamp), not the sender's.
    private const int HasTally = 1, NoRecipients = 2, OtherParticipant = 4, GroupDerivedId = 8;

    /// <summary>What few messages have: kept beside the array as given.</summary>
    private sealed record Unusual(
        string ClientMessageId, string? MessageId, GroupChange? System, ImmutableArray<string> RecipientIds, string? Text);

    private WindowMessage(byte[] data, string senderId, object? extra) => (_data, _senderId, _extra) = (data, senderId, extra);

    public long Seq => new Reader(_data).Long();

    public string SenderId => _senderId;

    public bool IsSystem => _extra is Unusual { System: not null };

    public Tally? Tally
    {
        get
        {
            var reader = new Reader(_data);
            reader.Long();
            reader.Long();
            var flags = reader.Long();
            return (flags & HasTally) == 0 ? null : new Tally(reader.Long(), reader.Long());
        }
    }

    /// <summary>Characters (UTF-16) of the text: what <see cref="MailboxLimits.MaxRecentChars"/> counts.</summary>
    public int TextLength
    {
        get
        {
            var reader = new Reader(_data);
            reader.Long();
            reader.Long();
            if ((reader.Long() & HasTally) != 0)
            {
                reader.Long();
                reader.Long();
            }
            return (int)reader.Long();
        }
    }

    /// <param name="stored">A message of a conversation whose participants are <paramref name="participants"/>
    /// (its sender is taken from them when it is one).</param>
    /// <param name="direct">Whether the conversation is 1:1 (its participants never change).</param>
    public static WindowMessage From(StoredMessage stored, ImmutableArray<string> participants, bool direct)
    {
        var m = stored.Message;
        var sender = m.SenderId;
        foreach (var participant in participants)
        {
            if (participant == sender)
                sender = participant;
        }
        var flags = stored.Tally is null ? 0 : HasTally;
        var recipientsAsGiven = false;
        if (m.RecipientIds.IsDefaultOrEmpty)
            flags |= m.RecipientIds.IsDefault ? 0 : NoRecipients;
        else if (direct && m.RecipientIds is [var only] && only == Other(participants, m.SenderId))
            flags |= OtherParticipant;
        else
            recipientsAsGiven = true;
        if (m.RecipientIds.IsDefault)
            recipientsAsGiven = true;

        var explicitId = Ids.IsDerivedMessageId(m.MessageId, m.SenderId, m.ServerTimestamp) ? null : m.MessageId;
        if (explicitId is not null && !direct && Ids.IsGroupMessageId(explicitId, m.ConversationId, m.ServerTimestamp))
        {
            flags |= GroupDerivedId; // every message of a group: its id follows from the conversation
            explicitId = null;
        }
        var textAsUtf8 = RoundTrips(m.Text);
        var idAsUtf8 = RoundTrips(m.ClientMessageId);
        object? extra = explicitId is not null || m.System is not null || recipientsAsGiven || !textAsUtf8
            ? new Unusual(m.ClientMessageId, explicitId, m.System, recipientsAsGiven ? m.RecipientIds : default, textAsUtf8 ? null : m.Text)
            : idAsUtf8 ? null : m.ClientMessageId;
        if (extra is Unusual)
            idAsUtf8 = false;

        var textBytes = textAsUtf8 ? Encoding.UTF8.GetByteCount(m.Text) : 0;
        var idBytes = idAsUtf8 ? Encoding.UTF8.GetByteCount(m.ClientMessageId) : 0;
        Span<byte> head = stackalloc byte[7 * 10];
        var writer = new Writer(head);
        writer.Long(stored.Seq);
        writer.Long(m.ServerTimestamp);
        writer.Long(flags);
        if (stored.Tally is { } tally)
        {
            writer.Long(tally.FromOthers);
            writer.Long(tally.LastFromOthersAt);
        }
        writer.Long(m.Text.Length);
        writer.Long(textBytes);
        var data = new byte[writer.Length + textBytes + idBytes];
        head[..writer.Length].CopyTo(data);
        if (textAsUtf8)
            Encoding.UTF8.GetBytes(m.Text, data.AsSpan(writer.Length, textBytes));
        if (idAsUtf8)
            Encoding.UTF8.GetBytes(m.ClientMessageId, data.AsSpan(writer.Length + textBytes));
        return new WindowMessage(data, sender, extra);
    }

    /// <summary>
    /// The bytes a snapshot keeps of this message (<see cref="CompactWindow"/>), or null when they do not hold all of it
    /// (an unusual message, or a clientMessageId that UTF-8 cannot carry unchanged). Never changed: a snapshot writes
    /// the array as it is.
    /// </summary>
    internal byte[]? CompactBytes => _extra is null ? _data : null;

    /// <summary>
    /// A message from a snapshot's <see cref="CompactWindow"/>: bytes that <see cref="CompactBytes"/> gave, taken as they
    /// are, sent by participant <paramref name="sender"/> of a conversation of <paramref name="participants"/>. Checked
    /// for everything reading them relies on, so a damaged snapshot fails its recovery here rather than a read later.
    /// </summary>
    public static WindowMessage FromCompact(byte[] data, ImmutableArray<string> participants, int sender, bool direct)
    {
        if ((uint)sender >= (uint)participants.Length)
            throw new InvalidDataException($"a window message names participant {sender} of {participants.Length}");
        var senderId = participants[sender];
        try
        {
            var reader = new Reader(data);
            reader.Long(); // seq
            reader.Long(); // stamp
            var flags = reader.Long();
            var recipients = flags & (NoRecipients | OtherParticipant);
            if ((flags & ~(HasTally | NoRecipients | OtherParticipant | GroupDerivedId)) != 0
                || recipients is 0 or (NoRecipients | OtherParticipant)
                || (recipients == OtherParticipant && (!direct || Other(participants, senderId) is null))
                || ((flags & GroupDerivedId) != 0 && direct))
                throw new InvalidDataException($"a window message of {senderId} has flags {flags}");
            if ((flags & HasTally) != 0)
            {
                reader.Long();
                reader.Long();
            }
            var chars = reader.Long();
            var textBytes = reader.Long();
            // Each UTF-16 unit is at least one byte of UTF-8; written so that no sum can overflow.
            if (textBytes < 0 || textBytes > data.Length - reader.Position || chars < 0 || chars > textBytes)
                throw new InvalidDataException($"a window message of {senderId} is cut short or its text is out of bounds");
        }
        catch (IndexOutOfRangeException)
        {
            throw new InvalidDataException($"a window message of {senderId} is cut short");
        }
        return new WindowMessage(data, senderId, null);
    }

    /// <summary>The message as stored, in conversation <paramref name="conversationId"/> of <paramref name="participants"/>.</summary>
    public StoredMessage ToStored(string conversationId, ImmutableArray<string> participants)
    {
        var reader = new Reader(_data);
        var seq = reader.Long();
        var stamp = reader.Long();
        var flags = reader.Long();
        Tally? tally = (flags & HasTally) == 0 ? null : new Tally(reader.Long(), reader.Long());
        reader.Long(); // chars
        var textBytes = (int)reader.Long();
        var rest = _data.AsSpan(reader.Position);
        var unusual = _extra as Unusual;
        var text = unusual?.Text ?? Encoding.UTF8.GetString(rest[..textBytes]);
        var clientMessageId = unusual?.ClientMessageId ?? _extra as string ?? Encoding.UTF8.GetString(rest[textBytes..]);
        var recipients = (flags & OtherParticipant) != 0 ? [Other(participants, _senderId)!]
            : (flags & NoRecipients) != 0 ? ImmutableArray<string>.Empty
            : unusual!.RecipientIds;
        var messageId = unusual?.MessageId
            ?? ((flags & GroupDerivedId) != 0 ? Ids.GroupMessageId(conversationId, stamp) : Ids.MessageId(_senderId, stamp));
        var message = new ChatMessage(
            messageId, conversationId, _senderId, recipients, text, clientMessageId, stamp, unusual?.System);
        return new StoredMessage(seq, message, tally);
    }

    private static string? Other(ImmutableArray<string> participants, string senderId) =>
        participants.Length != 2 ? null
        : participants[0] == senderId ? participants[1]
        : participants[1] == senderId ? participants[0]
        : null;

    /// <summary>Whether the text survives UTF-8 unchanged (a lone surrogate would not).</summary>
    internal static bool RoundTrips(string text)
    {
        if (Ascii.IsValid(text))
            return true;
        var buffer = ArrayPool<byte>.Shared.Rent(Encoding.UTF8.GetMaxByteCount(text.Length));
        try
        {
            return Utf8.FromUtf16(text, buffer, out _, out _, replaceInvalidSequences: false) == OperationStatus.Done;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private ref struct Writer(Span<byte> buffer)
    {
        private readonly Span<byte> _buffer = buffer;

        public int Length { get; private set; }

        public void Long(long value)
        {
            var zigzag = (ulong)((value << 1) ^ (value >> 63));
            while (zigzag >= 0x80)
            {
                _buffer[Length++] = (byte)(zigzag | 0x80);
                zigzag >>= 7;
            }
            _buffer[Length++] = (byte)zigzag;
        }
    }

    private ref struct Reader(byte[] data)
    {
        private readonly byte[] _data = data;

        public int Position { get; private set; }

        public long Long()
        {
            ulong value = 0;
            var shift = 0;
            byte b;
            do
            {
                b = _data[Position++];
                value |= (ulong)(b & 0x7F) << shift;
                shift += 7;
            }
            while ((b & 0x80) != 0);
            return (long)(value >> 1) ^ -(long)(value & 1);
        }
    }
}
