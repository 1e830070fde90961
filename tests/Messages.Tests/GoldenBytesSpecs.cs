namespace Messaging.Messages.Tests;

/// <summary>
/// Every type the journal or the snapshot store keeps, pinned to the bytes the serializer wrote when it was added.
/// Journals hold these bytes for ever: a renumbered or retyped field, or a changed manifest, fails here before it
/// fails a recovery. Both ways: today's code must read the old bytes, and still write the same ones. (MessageSent's
/// bytes were encoded by hand from mailbox.proto; the others are what the serializer wrote on 2026-11-30.) A new
/// persisted type gets its line here the day it is added, and the line never changes.
/// </summary>
public sealed class GoldenBytesSpecs(ActorSystemFixture fixture) : IClassFixture<ActorSystemFixture>
{
    private Serialization.MessagingSerializer Serializer =>
        Assert.IsType<Serialization.MessagingSerializer>(fixture.System.Serialization.FindSerializerForType(typeof(MessageSent)));

    private static readonly ChatMessage Message = new("1a-a", "dm~alice~bob", "alice", ["bob"], "hi", "c1", 1);

    public static TheoryData<string, string, string> Golden() => new()
    {
        { "MessageSent", "MSt", "0a2a0a0431612d61120c646d7e616c6963657e626f621a05616c6963652203626f622a02686932026331380110051a04080110022003" },
        { "MessageReceived", "MRc", "0a2a0a0431612d61120c646d7e616c6963657e626f621a03626f622205616c6963652a02686932026331380110061807220208042808" },
        { "DeliveriesConfirmed", "DC", "0a03626f621009" },
        { "WriterClaimed", "WCl", "0a016e1005" },
        { "StaleWritesResolved", "SWR", "0807" },
        {
            "MailboxSnapshot", "MSn",
            "080b12560a0c646d7e616c6963657e626f621205616c6963651203626f621a026869200b2802320202023a2e0802122a0a0431612d61" +
            "120c646d7e616c6963657e626f621a05616c6963652203626f622a0268693202633138011a280a026331120431612d611a0c646d7e61" +
            "6c6963657e626f622203626f622801313930000000000000223c0a03626f6210031a330a03626f6210031a2a0a0431612d61120c646d" +
            "7e616c6963657e626f621a05616c6963652203626f622a0268693202633138012a090a056361726f6c1004"
        },
        // v1.1 (live events, receipts): added 2026-11-30.
        {
            "MessageSent, v1.1", "MSt",
            "0a2a0a0431612d61120c646d7e616c6963657e626f621a05616c6963652203626f622a02686932026331380110051a04080110022003" +
            "2a0408011009"
        },
        {
            "ReceiptsMarked", "RMk",
            "0a0c646d7e616c6963657e626f62100318022204080210072a0408011006300c3a03626f624004"
        },
        {
            "ReceiptReceived", "RRc",
            "0a0c646d7e616c6963657e626f621203626f6218052004280d3002"
        },
        {
            "MailboxSnapshot, v1.1", "MSn",
            "080d127d0a0c646d7e616c6963657e626f621205616c6963651203626f621a026869200d2802320202023a340802122a0a0431612d61" +
            "120c646d7e616c6963657e626f621a05616c6963652203626f622a0268693202633138011a0408011009500258016204080110096a04" +
            "080110097204080110097a090a03626f6210051804225e0a03626f6210041a330a03626f6210031a2a0a0431612d61120c646d7e616c" +
            "6963657e626f621a05616c6963652203626f622a02686932026331380122200a03626f6210041a05616c696365220c646d7e616c6963" +
            "657e626f62280930092a070a03626f621002"
        },
        // v1.2 (groups): added 2026-11-30.
        { "GroupCreated", "GCr",
            "0a290a03312d6712056772707e671a05616c696365320272313801420e0a07637265617465641203626f62120346616d1a027231"
        },
        { "GroupPosted", "GPo",
            "0802121b0a03322d6712056772707e671a03626f622a026869320263323802"
        },
        { "GroupSnapshot", "GSn",
            "0a0346616d1205616c6963651a027231200228023205616c6963653203626f623a05616c69636542160a03626f621202633218022002" +
            "294d000000000000004a2d080112290a03312d6712056772707e671a05616c696365320272313801420e0a0763726561746564120362" +
            "6f624a1f0802121b0a03322d6712056772707e671a03626f622a02686932026332380252090a05616c6963651002"
        },
        { "MessageReceived, group", "MRc",
            "0a290a03312d6712056772707e671a05616c696365320272313801420e0a07637265617465641203626f62100118052200280132003a" +
            "0346616d4205616c6963654203626f62"
        },
        { "ReceiptsMarked, group", "RMk",
            "0a056772707e67100218022204080110022a040801100230064a070a03626f621003"
        },
        { "PendingChanged", "PCh", "0a05616c6963651001" },
        { "PendingChanged, cleared", "PCh", "0a056772707e67" },
        { "DeliveryIndexSnapshot", "DIS", "0a05616c6963650a056772707e67" },
        // v1.4 (the new-conversation rate limit): added 2026-12-01.
        { "MailboxSnapshot, v1.4", "MSn", "080e32020a0c" },
        // v1.5 (where stale events may lie, for thread pages found by position): added 2026-12-01.
        { "MailboxSnapshot, v1.5", "MSn", "080f3807" },
        { "MailboxSnapshot, v1.5, none stale", "MSn", "08103800" },
        // v1.7 (a window as the live mailbox holds it: its messages' own bytes and senders): added 2026-12-02.
        {
            "MailboxSnapshot, v1.7", "MSn",
            "0811123b0a0c646d7e616c6963657e626f621205616c6963651203626f621a0268692011280232020202620408011009820103040203" +
            "820101068a01020001"
        },
        // 1.8.0 (cold conversations): added 2026-12-02.
        {
            "ConversationsArchived", "CAr",
            "0a3f08021103000000000000001a320a2c0a0c646d7e616c6963657e626f621205616c6963651203626f621a02686920112802320202" +
            "02620408011009100118010a0b0802110100000000000000120c646d7e616c6963657e626f62"
        },
        {
            "ConversationRestored", "CRs",
            "0a300a2c0a0c646d7e616c6963657e626f621205616c6963651203626f621a02686920112802320202026204080110091001"
        },
        { "MailboxSnapshot, v1.8 cold", "MSc", "081238004204000500074802" },
        // 1.9.0 (cold groups: the same messages under manifests 1.8.0 refuses): added 2026-12-02.
        {
            "ConversationsArchived, group", "CAg",
            "0a4d08011101000000000000001a400a3c0a056772707e671205616c6963651203626f621a0268692013280232020202420567726f75" +
            "704a0346616d6204080110097a090a03626f6210021801100212056772707e67"
        },
        {
            "ConversationRestored, group", "CRg",
            "0a350a310a056772707e671205616c6963651203626f621a0268692013280232020202420567726f75704a0346616d6204080110091002"
        },
        { "MailboxSnapshot, v1.9 cold groups", "MSg", "081438004202000848015001" },
        {
            "ConversationRestored, group, v1.9.1 unread senders", "CRg",
            "0a460a420a056772707e671205616c6963651203626f621a0268692015280232020202420567726f75704a0346616d620408011009920103" +
            "626f629201056361726f6c9801011002"
        },
        {
            "ConversationRestored, group, v1.9.1 none unread", "CRg",
            "0a3a0a360a056772707e671205616c6963651203626f621a0268692015280232020202420567726f75704a0346616d5802620408011009" +
            "9801011002"
        },
        // 1.10.0 (cold channels alone: the same messages under manifests 1.9 refuses): added 2026-12-02.
        {
            "ConversationsArchived, channel alone", "CAo",
            "0a5808011a2c0a260a0c646d7e616c6963657e626f621205616c6963651203626f621a0268692011280232020202100118011a260a1e" +
            "0a0e646d7e616c6963657e6361726f6c1205616c69636512056361726f6c100318022001120e646d7e616c6963657e6361726f6c"
        },
        {
            "ConversationRestored, channel alone", "CRo",
            "0a260a1e0a0e646d7e616c6963657e6361726f6c1205616c69636512056361726f6c100318022001"
        },
        { "MailboxSnapshot, v1.10 cold channels", "MSo", "08163800420200095801" },
    };

    private static readonly ChatMessage Created = new("1-g", "grp~g", "alice", [], "", "r1", 1, new GroupChange(GroupChange.Created, ["bob"]));

    private static readonly ChatMessage Said = new("2-g", "grp~g", "bob", [], "hi", "c2", 2);

    private static readonly Dictionary<string, object> Values = new()
    {
        ["MessageSent"] = new MessageSent(Message, 5, new ThreadLinks(1, 2), 3),
        ["MessageReceived"] = new MessageReceived(Message with { SenderId = "bob", RecipientIds = ["alice"] }, 6, 7, new ThreadLinks(4, 0), 8),
        ["DeliveriesConfirmed"] = new DeliveriesConfirmed("bob", 9),
        ["WriterClaimed"] = new WriterClaimed("n", 5),
        ["StaleWritesResolved"] = new StaleWritesResolved(7),
        ["MailboxSnapshot"] = new MailboxSnapshot(
            11,
            [new ConversationSnapshot("dm~alice~bob", ["alice", "bob"], "hi", 11, 2, [2, 2], [new StoredMessage(2, Message)])],
            [new SentRecord("c1", "1a-a", "dm~alice~bob", "bob", 1, 12345)],
            [new OutboundSnapshot("bob", 3, [new DeliverMessage("bob", 3, Message)])],
            [new InboundSnapshot("carol", 4)]),
        ["MessageSent, v1.1"] = new MessageSent(Message, 5, new ThreadLinks(1, 2), 3, new Tally(1, 9)),
        ["ReceiptsMarked"] = new ReceiptsMarked("dm~alice~bob", 3, 2, new Tally(2, 7), new Tally(1, 6), 12, "bob", 4),
        ["ReceiptReceived"] = new ReceiptReceived("dm~alice~bob", "bob", new Receipt(5, 4), 13, 2),
        ["MailboxSnapshot, v1.1"] = new MailboxSnapshot(
            13,
            [new ConversationSnapshot("dm~alice~bob", ["alice", "bob"], "hi", 13, 2, [2, 2], [new StoredMessage(2, Message, new Tally(1, 9))],
                DeliveredUpToSeq: 2, ReadUpToSeq: 1, Tally: new Tally(1, 9), Delivered: new Tally(1, 9), Read: new Tally(1, 9),
                Receipts: [new ParticipantReceipt("bob", new Receipt(5, 4))])],
            [],
            [new OutboundSnapshot("bob", 4, [new DeliverMessage("bob", 3, Message), new DeliverReceipt("bob", 4, "alice", "dm~alice~bob", new Receipt(9, 9))])],
            [new InboundSnapshot("bob", 2)]),
        ["GroupCreated"] = new GroupCreated(Created, "Fam", "r1"),
        ["GroupPosted"] = new GroupPosted(2, Said),
        ["GroupSnapshot"] = new GroupSnapshot("Fam", "alice", "r1", 2, 2, ["alice", "bob"], ["alice"],
            [new GroupSentRecord("bob", "c2", 2, 2, 77)], [new GroupPosted(1, Created), new GroupPosted(2, Said)],
            [new DeliveriesConfirmed("alice", 2)]),
        ["MessageReceived, group"] = new MessageReceived(Created, 1, 5, ThreadLinks.None, 1, new Tally(0, 0), "Fam", ["alice", "bob"]),
        ["ReceiptsMarked, group"] = new ReceiptsMarked("grp~g", 2, 2, new Tally(1, 2), new Tally(1, 2), 6, "", 0, [new ChannelTarget("bob", 3)]),
        ["PendingChanged"] = new PendingChanged("alice", true),
        ["PendingChanged, cleared"] = new PendingChanged("grp~g", false),
        ["DeliveryIndexSnapshot"] = new DeliveryIndexSnapshot(["alice", "grp~g"]),
        ["MailboxSnapshot, v1.4"] = new MailboxSnapshot(14, [], [], [], [], [10, 12]),
        ["MailboxSnapshot, v1.5"] = new MailboxSnapshot(15, [], [], [], [], [], StaleUpTo: 7),
        ["MailboxSnapshot, v1.5, none stale"] = new MailboxSnapshot(16, [], [], [], [], [], StaleUpTo: 0),
        ["MailboxSnapshot, v1.7"] = new MailboxSnapshot(
            17,
            [new ConversationSnapshot("dm~alice~bob", ["alice", "bob"], "hi", 17, 2, [2, 2], [], Tally: new Tally(1, 9),
                Window: new CompactWindow([[4, 2, 3], [6]], [0, 1]))],
            [], [], []),
        ["ConversationsArchived"] = new ConversationsArchived(
            [
                new ColdPage(2, 3, [new ColdEntry(new ConversationSnapshot("dm~alice~bob", ["alice", "bob"], "hi", 17, 2, [2, 2], [], Tally: new Tally(1, 9)), 1, 1)]),
                new ColdPage(2, 1, []),
            ],
            ["dm~alice~bob"]),
        ["ConversationRestored"] = new ConversationRestored(
            new ColdEntry(new ConversationSnapshot("dm~alice~bob", ["alice", "bob"], "hi", 17, 2, [2, 2], [], Tally: new Tally(1, 9)), 1, 0)),
        ["MailboxSnapshot, v1.8 cold"] = new MailboxSnapshot(18, [], [], [], [], [], 0, [0, 5, 0, 7], 2),
        ["ConversationsArchived, group"] = new ConversationsArchived(
            [
                new ColdPage(1, 1, [new ColdEntry(new ConversationSnapshot("grp~g", ["alice", "bob"], "hi", 19, 2, [2, 2], [], ConversationSummary.GroupKind, "Fam",
                    Tally: new Tally(1, 9), Receipts: [new ParticipantReceipt("bob", new Receipt(2, 1))]), 2, 0)]),
            ],
            ["grp~g"]),
        ["ConversationRestored, group"] = new ConversationRestored(
            new ColdEntry(new ConversationSnapshot("grp~g", ["alice", "bob"], "hi", 19, 2, [2, 2], [], ConversationSummary.GroupKind, "Fam", Tally: new Tally(1, 9)), 2, 0)),
        ["MailboxSnapshot, v1.9 cold groups"] = new MailboxSnapshot(20, [], [], [], [], [], 0, [0, 8], 1, ColdGroups: true),
        ["ConversationRestored, group, v1.9.1 unread senders"] = new ConversationRestored(
            new ColdEntry(new ConversationSnapshot("grp~g", ["alice", "bob"], "hi", 21, 2, [2, 2], [], ConversationSummary.GroupKind, "Fam",
                Tally: new Tally(1, 9), UnreadSenders: ["bob", "carol"]), 2, 0)),
        ["ConversationRestored, group, v1.9.1 none unread"] = new ConversationRestored(
            new ColdEntry(new ConversationSnapshot("grp~g", ["alice", "bob"], "hi", 21, 2, [2, 2], [], ConversationSummary.GroupKind, "Fam",
                ReadUpToSeq: 2, Tally: new Tally(1, 9), UnreadSenders: []), 2, 0)),
        ["ConversationsArchived, channel alone"] = new ConversationsArchived(
            [
                new ColdPage(1, 0, [
                    new ColdEntry(new ConversationSnapshot("dm~alice~bob", ["alice", "bob"], "hi", 17, 2, [2, 2], []), 1, 1),
                    new ColdEntry(new ConversationSnapshot("dm~alice~carol", ["alice", "carol"], "", 0, 0, [], []), 3, 2, ChannelOnly: true),
                ]),
            ],
            ["dm~alice~carol"]),
        ["ConversationRestored, channel alone"] = new ConversationRestored(
            new ColdEntry(new ConversationSnapshot("dm~alice~carol", ["alice", "carol"], "", 0, 0, [], []), 3, 2, ChannelOnly: true)),
        ["MailboxSnapshot, v1.10 cold channels"] = new MailboxSnapshot(22, [], [], [], [], [], 0, [0, 9], 0, ColdGroups: false, ColdChannels: true),
    };

    [Theory]
    [MemberData(nameof(Golden))]
    public void Should_read_the_bytes_written_when_the_type_was_added(string name, string manifest, string hex)
    {
        var read = Serializer.FromBinary(Convert.FromHexString(hex), manifest);
        DeepEquality.AssertEqual(Values[name], read);
    }

    [Theory]
    [MemberData(nameof(Golden))]
    public void Should_still_write_the_same_bytes(string name, string manifest, string hex)
    {
        Assert.Equal(manifest, Serializer.Manifest(Values[name]));
        Assert.Equal(hex, Convert.ToHexString(Serializer.ToBinary(Values[name])).ToLowerInvariant());
    }
}
