using System.Collections.Immutable;
using System.Runtime.CompilerServices;
using System.Runtime.Serialization;
using Akka.Serialization;
using Messaging.Messages.Serialization;

namespace Messaging.Messages.Tests;

public sealed class MessagingSerializerSpecs(ActorSystemFixture fixture) : IClassFixture<ActorSystemFixture>
{
    private MessagingSerializer Serializer =>
        Assert.IsType<MessagingSerializer>(fixture.System.Serialization.FindSerializerForType(typeof(SendMessage)));

    [Theory]
    [MemberData(nameof(ProtocolSamples.Names), MemberType = typeof(ProtocolSamples))]
    public void Should_round_trip_every_field(string sample)
    {
        var original = ProtocolSamples.All[sample];

        var copy = RoundTrip(original);

        DeepEquality.AssertEqual(original, copy);
    }

    [Theory]
    [MemberData(nameof(ProtocolSamples.Names), MemberType = typeof(ProtocolSamples))]
    public void Should_round_trip_through_the_actor_systems_serialization(string sample)
    {
        var original = ProtocolSamples.All[sample];
        var serialization = fixture.System.Serialization;

        var serializer = serialization.FindSerializerFor(original);
        var bytes = serializer.ToBinary(original);
        var copy = serialization.Deserialize(bytes, serializer.Identifier, Akka.Serialization.Serialization.ManifestFor(serializer, original));

        DeepEquality.AssertEqual(original, copy);
    }

    [Fact]
    public void Should_have_a_sample_of_every_protocol_type()
    {
        var sampled = ProtocolSamples.All.Values.Select(v => v.GetType()).ToHashSet();

        var missing = ProtocolSamples.ProtocolTypes().Where(t => !sampled.Contains(t)).Select(t => t.Name).ToList();

        Assert.True(missing.Count == 0, $"no round-trip sample for: {string.Join(", ", missing)}");
    }

    [Theory]
    [MemberData(nameof(ProtocolSamples.ProtocolTypeData), MemberType = typeof(ProtocolSamples))]
    public void Should_bind_every_protocol_type_to_the_messaging_serializer(Type type)
    {
        var serializer = fixture.System.Serialization.FindSerializerForType(type);

        Assert.IsType<MessagingSerializer>(serializer);
        Assert.Equal(771, serializer.Identifier);
        // Manifest looks only at the type, so an uninitialized instance is enough to prove there is one.
        var manifest = ((SerializerWithStringManifest)serializer).Manifest(RuntimeHelpers.GetUninitializedObject(type));
        Assert.InRange(manifest.Length, 2, 4);
    }

    [Fact]
    public void Should_give_every_protocol_type_its_own_manifest()
    {
        var manifests = ProtocolSamples.ProtocolTypes()
            .Select(t => Serializer.Manifest(RuntimeHelpers.GetUninitializedObject(t)))
            .ToList();

        Assert.Equal(manifests.Count, manifests.Distinct(StringComparer.Ordinal).Count());
    }

    /// <summary>Stored events name their type by manifest: a changed manifest makes the journal unreadable.</summary>
    [Theory]
    [InlineData(typeof(SendMessage), "SM")]
    [InlineData(typeof(GetConversations), "GC")]
    [InlineData(typeof(GetThread), "GT")]
    [InlineData(typeof(GetMailboxStatus), "GMS")]
    [InlineData(typeof(DeliverMessage), "DM")]
    [InlineData(typeof(ConfirmDelivery), "CD")]
    [InlineData(typeof(StopMailbox), "Stp")]
    [InlineData(typeof(SendResult), "SR")]
    [InlineData(typeof(ConversationsPage), "CP")]
    [InlineData(typeof(ThreadPage), "TP")]
    [InlineData(typeof(ConversationNotFound), "CNF")]
    [InlineData(typeof(MailboxUnavailable), "MU")]
    [InlineData(typeof(MailboxStatus), "MS")]
    [InlineData(typeof(MessageSent), "MSt")]
    [InlineData(typeof(MessageReceived), "MRc")]
    [InlineData(typeof(DeliveriesConfirmed), "DC")]
    [InlineData(typeof(MailboxSnapshot), "MSn")]
    [InlineData(typeof(WriterClaimed), "WCl")] // also named by the journal's writer fence in PostgreSQL
    [InlineData(typeof(StaleWritesResolved), "SWR")]
    public void Should_keep_manifests_stable(Type type, string manifest)
    {
        Assert.Equal(manifest, Serializer.Manifest(RuntimeHelpers.GetUninitializedObject(type)));
    }

    [Fact]
    public void Should_read_stored_event_bytes_written_by_earlier_versions()
    {
        // MessageSent encoded by hand from the field numbers in mailbox.proto: journals hold such bytes forever.
        var stored = Convert.FromHexString(
            "0a2a0a0431612d61120c646d7e616c6963657e626f621a05616c6963652203626f622a0268693202633138011005" +
            "1a04080110022003");

        var sent = Assert.IsType<MessageSent>(Serializer.FromBinary(stored, "MSt"));

        DeepEquality.AssertEqual(
            new MessageSent(new ChatMessage("1a-a", "dm~alice~bob", "alice", ["bob"], "hi", "c1", 1), 5, new ThreadLinks(1, 2), 3),
            sent);
    }

    [Fact]
    public void Should_read_stored_fencing_event_bytes()
    {
        // Encoded by hand from mailbox.proto's field numbers.
        DeepEquality.AssertEqual(new WriterClaimed("n", 5), Serializer.FromBinary(Convert.FromHexString("0a016e1005"), "WCl"));
        DeepEquality.AssertEqual(new StaleWritesResolved(7), Serializer.FromBinary(Convert.FromHexString("0807"), "SWR"));
    }

    [Fact]
    public void Should_keep_null_and_zero_sequence_bounds_apart()
    {
        var none = Assert.IsType<GetThread>(RoundTrip(new GetThread("a", "c", 0, 10, null, null)));
        var zero = Assert.IsType<GetThread>(RoundTrip(new GetThread("a", "c", 0, 10, 0, 0)));

        Assert.Null(none.BeforeSeq);
        Assert.Null(none.AfterSeq);
        Assert.Equal(0L, zero.BeforeSeq);
        Assert.Equal(0L, zero.AfterSeq);
    }

    [Fact]
    public void Should_keep_the_full_range_of_text_hashes()
    {
        var snapshot = new MailboxSnapshot(1, [], [new SentRecord("c", "m", "dm~a~b", "b", 1, ulong.MaxValue - 1)], [], []);

        var copy = Assert.IsType<MailboxSnapshot>(RoundTrip(snapshot));

        Assert.Equal(ulong.MaxValue - 1, copy.Dedup[0].TextHash);
    }

    [Fact]
    public void Should_read_default_arrays_back_as_empty_arrays()
    {
        var copy = Assert.IsType<SendMessage>(RoundTrip(new SendMessage("a", default, "hi", "c")));

        Assert.False(copy.RecipientIds.IsDefault);
        Assert.Empty(copy.RecipientIds);
    }

    [Fact]
    public void Should_read_back_the_stop_singleton()
    {
        Assert.Same(StopMailbox.Instance, RoundTrip(StopMailbox.Instance));
    }

    [Fact]
    public void Should_throw_on_an_unknown_manifest()
    {
        var error = Assert.Throws<SerializationException>(() => Serializer.FromBinary([], "Nope"));

        Assert.Contains("'Nope'", error.Message);
    }

    [Fact]
    public void Should_refuse_a_type_that_is_not_in_the_protocol()
    {
        Assert.Throws<SerializationException>(() => Serializer.ToBinary("not a contract"));
        Assert.Throws<SerializationException>(() => Serializer.Manifest(42));
    }

    [Fact]
    public void Should_notice_a_difference_deep_inside_an_array()
    {
        // The comparer is what makes the round-trip tests meaningful, so it must fail where record equality can't look.
        var original = (MailboxSnapshot)ProtocolSamples.All["MailboxSnapshot"];
        var recent = original.Conversations[0].Recent;
        var changed = original with
        {
            Conversations = original.Conversations.SetItem(0, original.Conversations[0] with
            {
                Recent = recent.SetItem(1, recent[1] with { Message = recent[1].Message with { RecipientIds = ["eve"] } }),
            }),
        };

        Assert.Contains("Recent[1].Message.RecipientIds[0]", DeepEquality.FirstDifference(original, changed));
        Assert.NotNull(DeepEquality.FirstDifference(
            new GetThread("a", "c", 0, 1, null, 0), new GetThread("a", "c", 0, 1, 0, 0)));
        Assert.NotNull(DeepEquality.FirstDifference(new ThreadPage([]), new ThreadPage(default)));
        Assert.Null(DeepEquality.FirstDifference(original, RoundTrip(original)));

        // A window's bytes are compared byte by byte.
        var held = (MailboxSnapshot)ProtocolSamples.All["MailboxSnapshot, 1.7.0 window as held"];
        var window = held.Conversations[0].Window!;
        var flipped = held with
        {
            Conversations = held.Conversations.SetItem(0, held.Conversations[0] with
            {
                Window = window with { Messages = window.Messages.SetItem(2, [12, 2, 1]) },
            }),
        };
        Assert.Contains("Window.Messages[2][2]", DeepEquality.FirstDifference(held, flipped));
    }

    [Fact]
    public void Should_refuse_a_window_whose_messages_and_senders_do_not_pair()
    {
        var held = (MailboxSnapshot)ProtocolSamples.All["MailboxSnapshot, 1.7.0 window as held"];
        var unpaired = held with
        {
            Conversations = held.Conversations.SetItem(0, held.Conversations[0] with
            {
                Window = new CompactWindow([[1], [2]], [0]),
            }),
        };

        var error = Assert.Throws<SerializationException>(() => Serializer.ToBinary(unpaired));

        Assert.Contains("2 messages and 1 senders", error.Message);
    }

    private object RoundTrip(object message)
    {
        var serializer = Serializer;
        return serializer.FromBinary(serializer.ToBinary(message), serializer.Manifest(message));
    }
}
