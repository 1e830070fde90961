using System.ComponentModel;
using System.ComponentModel.DataAnnotations;
using System.Globalization;
using System.Security.Claims;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using Akka.Actor;
using Akka.Event;
using Akka.Hosting;
using Messaging.Actors;
using Messaging.Http.OpenApi;
using Messaging.Messages;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Routing;

namespace Messaging.Http;

/// <summary>
/// GET /v1/users/{userId}/events: Server-Sent Events of one user's mailbox, on whichever node the client reached.
/// The request's <see cref="EventStream"/> actor follows the mailbox through the shard region; this handler only
/// writes what the actor hands it, and a keep-alive comment when there is nothing to write.
/// </summary>
public static class LiveEvents
{
    public const string Route = "/v1/users/{userId}/events";

    /// <summary>The query parameter a browser's EventSource uses for the token (this route only).</summary>
    public const string AccessTokenParameter = "access_token";

    public const string EventStreamContentType = "text/event-stream";

    /// <summary>The comment written when nothing else was for <see cref="MessagingApiOptions.LiveKeepAlive"/>.</summary>
    internal const string KeepAliveComment = ": keep-alive\n\n";

    private static readonly byte[] KeepAlive = Encoding.UTF8.GetBytes(KeepAliveComment);

    /// <summary>Last-Event-ID and lastEventId: an event id, a stamp (digits only, a long).</summary>
    private const string EventIdPattern = "^[0-9]{1,19}$";

    public static IEndpointRouteBuilder MapLiveEvents(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapGet(Route, Stream)
            .RequireAuthorization()
            .WithTags(MessagingApi.Tag)
            .WithName("getEvents")
            .WithSummary("Live events of a user's mailbox (Server-Sent Events), resumable with Last-Event-ID")
            .WithMetadata(new LiveEventsRoute())
            .Produces<string>(StatusCodes.Status200OK, EventStreamContentType)
            .DescribeSuccess(
                "The stream, open until the client or the server closes it; the client " +
                "then reconnects with the id of the last event it processed. It carries:\n\n" +
                "- `event: conversation`, `id: <stamp>`, `data: {\"conversation\": ConversationDto, \"messages\": " +
                "[ThreadMessageDto, ...]}` whenever a conversation changes in this user's mailbox (a message stored, a " +
                "receipt). `id` is the conversation's new `lastUpdatedTimestamp`, so ids strictly increase along a stream; " +
                "`messages` holds the messages this change stored, as thread pages show them (it may be empty, e.g. for " +
                "a receipt).\n" +
                "- `event: typing`, no id, `data: {\"conversationId\": \"...\", \"userId\": \"...\", \"until\": <ms>}`: " +
                "another participant is typing until `until` (Unix epoch milliseconds). Never stored, best effort.\n" +
                "- `: keep-alive`, a comment line, at least every 15 s while nothing else is sent.\n\n" +
                "Resuming: with `Last-Event-ID` (header, or the query parameter `lastEventId`) the stream first sends one " +
                "`conversation` event for every conversation changed after that id, oldest change first, with the current " +
                "conversation (its `messages` may be empty: read what is missing with `messages?afterSeq=` up to `lastSeq`), then " +
                "goes live. Without it, the stream starts live. A client that always reconnects with the id of the last " +
                "event it processed never misses a change; a stream the server can no longer feed is closed, never left silent.",
                null, ("stream", ApiExamples.LiveStream))
            .ProducesFailure(StatusCodes.Status400BadRequest, "a malformed userId, or a Last-Event-ID / lastEventId that is not a stamp")
            .ProducesFailure(StatusCodes.Status401Unauthorized, "no token (header or access_token), bad signature, expired, wrong issuer or audience")
            .ProducesFailure(StatusCodes.Status403Forbidden, "userId is not the token's user")
            .ProducesFailure(StatusCodes.Status429TooManyRequests,
                "this user already has Messaging:Mailbox:MaxStreamsPerUser live streams open (default 10), on all nodes " +
                "together; close one first",
                retryAfter: false)
            .ProducesFailure(StatusCodes.Status503ServiceUnavailable, "the user's mailbox cannot answer now; reconnect later");
        return endpoints;
    }

    private static async Task<IResult> Stream(
        [Id(IdKind.User)] string userId, HttpContext http, ClaimsPrincipal principal, ActorSystem system,
        IRequiredActor<MailboxRegion> region, MessagingApiOptions options,
        [FromHeader(Name = "Last-Event-ID"), RegularExpression(EventIdPattern),
         Description("The id of the last event the client processed: the stream first sends every conversation changed " +
                     "after it, then goes live. Without it (and without lastEventId) the stream starts live.")]
        string? lastEventIdHeader = null,
        [RegularExpression(EventIdPattern),
         Description("Last-Event-ID as a query parameter, for clients that cannot set headers; the header wins when both are given.")]
        string? lastEventId = null)
    {
        if (MessagingApi.CheckUser(userId, principal) is { } problem)
            return problem;
        var resumeFrom = lastEventIdHeader ?? lastEventId;
        long after = 0;
        if (resumeFrom is not null && (!long.TryParse(resumeFrom, NumberStyles.None, CultureInfo.InvariantCulture, out after)))
            return Problems.Of(StatusCodes.Status400BadRequest, "Last-Event-ID (or lastEventId) must be the id of an event: a number >= 0");
        // Without an id the stream starts live: everything up to now counts as seen.
        var live = resumeFrom is null;

        var buffer = new StreamBuffer(options);
        var started = new TaskCompletionSource<object>(TaskCreationOptions.RunContinuationsAsynchronously);
        var mailboxes = await region.GetAsync(http.RequestAborted);
        var stream = system.ActorOf(EventStream.Props(userId, live ? long.MaxValue : after, mailboxes, buffer, started, options));
        try
        {
            var first = await started.Task;
            switch (first)
            {
                case SubscriptionRefused refused:
                    return Problems.Of(StatusCodes.Status429TooManyRequests, refused.Reason);
                case MailboxUnavailable unavailable:
                    http.Response.Headers.RetryAfter = options.UnavailableRetryAfterSeconds.ToString(CultureInfo.InvariantCulture);
                    return Problems.Of(StatusCodes.Status503ServiceUnavailable, $"the cluster cannot answer now: {unavailable.Reason}");
            }

            http.Response.ContentType = EventStreamContentType;
            http.Response.Headers.CacheControl = "no-cache";
            http.Response.Headers["X-Accel-Buffering"] = "no"; // a proxy must not hold events back
            await http.Response.Body.FlushAsync(http.RequestAborted);
            HttpMetrics.LiveStreamOpened();
            try
            {
                await Pump(http, buffer, options);
            }
            finally
            {
                HttpMetrics.LiveStreamClosed();
            }
            return Results.Empty; // the response is written: the stream ended, the client reconnects with its last id
        }
        catch (OperationCanceledException) when (http.RequestAborted.IsCancellationRequested)
        {
            return Results.Empty; // the client went away
        }
        finally
        {
            system.Stop(stream);
        }
    }

    /// <summary>Write what the stream actor hands over, a keep-alive when idle, and end when it completes the channel.</summary>
    private static async Task Pump(HttpContext http, StreamBuffer buffer, MessagingApiOptions options)
    {
        var events = buffer.Reader;
        var body = http.Response.Body;
        var aborted = http.RequestAborted;
        while (true)
        {
            using var idle = CancellationTokenSource.CreateLinkedTokenSource(aborted);
            idle.CancelAfter(options.LiveKeepAlive);
            bool more;
            try
            {
                more = await events.WaitToReadAsync(idle.Token);
            }
            catch (OperationCanceledException) when (!aborted.IsCancellationRequested)
            {
                await body.WriteAsync(KeepAlive, aborted);
                await body.FlushAsync(aborted);
                continue;
            }
            if (!more)
                return; // the stream actor closed it: the client reconnects with its last id
            while (events.TryRead(out var frame))
            {
                await body.WriteAsync(frame, aborted);
                buffer.Written(frame.Length);
            }
            await body.FlushAsync(aborted);
        }
    }

    /// <summary>One event in the text/event-stream format (JSON has no raw newlines, so data is one line).</summary>
    internal static byte[] Format(object item, string userId)
    {
        var text = item switch
        {
            ConversationChange change => Event(new ConversationEventDto(
                Views.Conversation(change.Conversation),
                [.. change.Messages.Select(m => Views.Message(m, userId, change.Conversation.Receipts))])),
            TypingNotice typing => Event(new TypingEventDto(typing.ConversationId, typing.FromUserId, typing.Until)),
            _ => throw new ArgumentException($"not an event: {item.GetType().Name}", nameof(item)),
        };
        return Encoding.UTF8.GetBytes(text);
    }

    /// <summary>A <c>conversation</c> event, its id the conversation's <c>lastUpdatedTimestamp</c>.</summary>
    internal static string Event(ConversationEventDto change) =>
        $"event: conversation\nid: {change.Conversation.LastUpdatedTimestamp.ToString(CultureInfo.InvariantCulture)}\ndata: " +
        JsonSerializer.Serialize(change, MessagingJsonContext.Default.ConversationEventDto) + "\n\n";

    /// <summary>A <c>typing</c> event (no id: it is not a change to resume after).</summary>
    internal static string Event(TypingEventDto typing) =>
        "event: typing\ndata: " + JsonSerializer.Serialize(typing, MessagingJsonContext.Default.TypingEventDto) + "\n\n";

    /// <summary>An id-only block: browsers' EventSource takes it as the last event id without dispatching an event.</summary>
    internal static byte[] IdOnly(long id) => Encoding.UTF8.GetBytes($"id: {id.ToString(CultureInfo.InvariantCulture)}\n\n");
}

/// <summary>
/// The frames between a stream actor and its HTTP response, bounded by count (<c>LiveStreamBuffer</c>) and by bytes
/// (<c>LiveStreamBufferBytes</c>): what a client that does not read can make the node hold.
/// </summary>
public sealed class StreamBuffer(MessagingApiOptions options)
{
    private readonly Channel<byte[]> _frames = Channel.CreateBounded<byte[]>(new BoundedChannelOptions(options.LiveStreamBuffer)
    {
        SingleReader = true,
        SingleWriter = true,
        FullMode = BoundedChannelFullMode.Wait, // TryWrite fails when full: the stream cuts a client that does not read
    });

    private long _bytes;

    public ChannelReader<byte[]> Reader => _frames.Reader;

    public long Bytes => Interlocked.Read(ref _bytes);

    public int Count => _frames.Reader.Count;

    /// <summary>Whether <paramref name="frames"/> more frames of <paramref name="bytes"/> in all would still fit.</summary>
    public bool HasRoomFor(int frames, long bytes) =>
        Count + frames <= options.LiveStreamBuffer && Bytes + bytes <= options.LiveStreamBufferBytes;

    /// <summary>Queue a frame; false when the buffer is full (one frame always fits into an empty buffer).</summary>
    public bool TryWrite(byte[] frame)
    {
        if (Bytes > 0 && Bytes + frame.Length > options.LiveStreamBufferBytes)
            return false;
        if (!_frames.Writer.TryWrite(frame))
            return false;
        Interlocked.Add(ref _bytes, frame.Length);
        return true;
    }

    public void Written(int bytes) => Interlocked.Add(ref _bytes, -bytes);

    public void Complete() => _frames.Writer.TryComplete();
}

/// <summary>Marks the live events route (its token may come as access_token; the OpenAPI document describes it).</summary>
public sealed class LiveEventsRoute;

/// <summary>
/// One open live stream: follows the user's mailbox wherever it lives. It asks the mailbox (through the shard
/// region) for everything after the last event it handed on, page by page, until the mailbox registers it and
/// pushes each change. It watches the mailbox: when that stops (moved, passivated, its node died) it asks again at
/// once, from its own last id, and so reaches the next incarnation with nothing missed. It asks again every
/// keep-alive interval as a heartbeat; a mailbox that does not answer within the interval closes the stream (the
/// client reconnects), so a stream is fed or closed, never silently stale. A client that does not read fills the
/// bounded channel, and the stream is closed rather than buffered.
/// </summary>
public sealed class EventStream : ReceiveActor, IWithTimers
{
    private readonly string _userId;
    private readonly IActorRef _mailboxes;
    private readonly StreamBuffer _out;
    private readonly TaskCompletionSource<object> _started;
    private readonly MessagingApiOptions _options;
    private long _last;
    private IActorRef? _mailbox;
    private bool _awaiting;
    private DateTime _askedAt;

    public ITimerScheduler Timers { get; set; } = null!;

    private sealed record Heartbeat
    {
        public static readonly Heartbeat Instance = new();
    }

    private sealed record FirstAnswerDue
    {
        public static readonly FirstAnswerDue Instance = new();
    }

    /// <summary>Catching up, the next page waits for room in the buffer (a slow client is paced, not cut off).</summary>
    private sealed record NextPage
    {
        public static readonly NextPage Instance = new();
    }

    /// <param name="after">The last id the client processed; <see cref="long.MaxValue"/>: start live.</param>
    /// <param name="started">Completed with the first answer (<see cref="LiveChanges"/>), or why there is none
    /// (<see cref="SubscriptionRefused"/>, <see cref="MailboxUnavailable"/>).</param>
    public static Props Props(
        string userId, long after, IActorRef mailboxes, StreamBuffer output, TaskCompletionSource<object> started,
        MessagingApiOptions options) =>
        FactoryProps.Of(() => new EventStream(userId, after, mailboxes, output, started, options));

    public EventStream(
        string userId, long after, IActorRef mailboxes, StreamBuffer output, TaskCompletionSource<object> started,
        MessagingApiOptions options)
    {
        _userId = userId;
        _mailboxes = mailboxes;
        _out = output;
        _started = started;
        _options = options;
        _last = after;

        Receive<LiveChanges>(HandleChanges);
        Receive<TypingNotice>(typing => Emit(typing));
        Receive<SubscriptionRefused>(refused =>
        {
            _started.TrySetResult(refused);
            Close();
        });
        Receive<Terminated>(terminated =>
        {
            if (!terminated.ActorRef.Equals(_mailbox))
                return;
            _mailbox = null;
            Ask(); // the next incarnation, from our own last id
        });
        Receive<Heartbeat>(_ =>
        {
            if (!_awaiting)
                Ask();
            else if (DateTime.UtcNow - _askedAt >= _options.LiveKeepAlive)
                Close(); // a whole interval without an answer: let the client reconnect
        });
        Receive<NextPage>(_ => AskForNextPage());
        Receive<FirstAnswerDue>(_ =>
        {
            _started.TrySetResult(new MailboxUnavailable($"the mailbox of {_userId} did not answer within {_options.AskTimeout.TotalSeconds:0.###} s"));
            Close();
        });
    }

    protected override void PreStart()
    {
        Ask();
        Timers.StartSingleTimer(FirstAnswerDue.Instance, FirstAnswerDue.Instance, _options.AskTimeout);
        Timers.StartPeriodicTimer(Heartbeat.Instance, Heartbeat.Instance, _options.LiveKeepAlive);
    }

    protected override void PostStop()
    {
        _started.TrySetResult(new MailboxUnavailable("the stream stopped"));
        _out.Complete();
    }

    private void Ask()
    {
        _awaiting = true;
        _askedAt = DateTime.UtcNow;
        // Starting live (_last is long.MaxValue until the first answer): nothing is after it, so the first page is
        // empty and registers the stream, and its UpTo says where the stream starts.
        _mailboxes.Tell(new Subscribe(_userId, _last), Self);
    }

    private void HandleChanges(LiveChanges changes)
    {
        _awaiting = false;
        if (!Sender.Equals(_mailbox))
        {
            if (_mailbox is not null)
                Context.Unwatch(_mailbox);
            _mailbox = Sender;
            Context.Watch(_mailbox);
        }
        if (_started.TrySetResult(changes))
            Timers.Cancel(FirstAnswerDue.Instance);
        if (_last == long.MaxValue)
        {
            // Started live: everything up to the mailbox's answer counts as seen. Say so to the client at once, so
            // an EventSource that reconnects before the first change resumes from here rather than starting live again.
            _last = changes.UpTo;
            if (!_out.TryWrite(LiveEvents.IdOnly(_last)))
            {
                Close();
                return;
            }
        }
        foreach (var change in changes.Changes)
        {
            // Ids strictly increase along a stream: what is not after the last one was handed on already.
            if (change.Conversation.LastUpdatedTimestamp <= _last)
                continue;
            if (!Emit(change))
                return;
            _last = change.Conversation.LastUpdatedTimestamp;
        }
        if (!changes.CaughtUp)
            AskForNextPage();
    }

    /// <summary>The next catch-up page once a whole page fits in the buffer (catch-up events carry no messages).</summary>
    private void AskForNextPage()
    {
        if (_out.HasRoomFor(MailboxActor.CatchUpPage, MailboxActor.CatchUpPage * 4096L))
            Ask();
        else
            Timers.StartSingleTimer(NextPage.Instance, NextPage.Instance, TimeSpan.FromMilliseconds(50));
    }

    private bool Emit(object item)
    {
        if (_out.TryWrite(LiveEvents.Format(item, _userId)))
            return true;
        Context.GetLogger().Info("Live stream of {UserId} closed: the client did not read {Events} events ({Bytes} bytes) buffered for it",
            _userId, _out.Count, _out.Bytes);
        Close();
        return false;
    }

    private void Close()
    {
        _out.Complete();
        Context.Stop(Self);
    }
}
