using System.Security.Claims;
using System.Text;
using Messaging.Http;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Npgsql;

namespace Messaging.LoadGenerator;

/// <summary>
/// The same send written the plain way, for comparison: ASP.NET Core minimal API, the same JWT validation as the
/// node, and one PostgreSQL transaction per send through Npgsql (both conversation rows upserted in a fixed order so
/// two users writing to each other cannot deadlock, then both copies inserted; the sender's copy is deduplicated by a
/// unique index on (sender, client_message_id)). Reads are single indexed queries.
/// </summary>
public static class Baseline
{
    public const string Schema = """
        CREATE TABLE IF NOT EXISTS conversations (
            owner text NOT NULL, conversation_id text NOT NULL, participants text[] NOT NULL, snippet text NOT NULL,
            last_updated bigint NOT NULL, last_seq bigint NOT NULL, PRIMARY KEY (owner, conversation_id));
        CREATE INDEX IF NOT EXISTS conversations_by_time ON conversations (owner, last_updated DESC);
        CREATE TABLE IF NOT EXISTS messages (
            owner text NOT NULL, conversation_id text NOT NULL, seq bigint NOT NULL, message_id text NOT NULL,
            sender text NOT NULL, recipient text NOT NULL, body text NOT NULL, client_message_id text NOT NULL,
            server_ts bigint NOT NULL, PRIMARY KEY (owner, conversation_id, seq));
        CREATE UNIQUE INDEX IF NOT EXISTS messages_dedup ON messages (sender, client_message_id) WHERE owner = sender;
        """;

    private const string UpsertConversation = """
        INSERT INTO conversations (owner, conversation_id, participants, snippet, last_updated, last_seq)
        VALUES (@owner, @conversation, @participants, @snippet, @ts, 1)
        ON CONFLICT (owner, conversation_id) DO UPDATE
            SET last_seq = conversations.last_seq + 1, snippet = EXCLUDED.snippet,
                last_updated = GREATEST(EXCLUDED.last_updated, conversations.last_updated + 1)
        RETURNING last_seq
        """;

    private const string InsertSenderCopy = """
        INSERT INTO messages (owner, conversation_id, seq, message_id, sender, recipient, body, client_message_id, server_ts)
        VALUES (@sender, @conversation, @seq, @id, @sender, @recipient, @body, @cmid, @ts)
        ON CONFLICT (sender, client_message_id) WHERE owner = sender DO NOTHING
        RETURNING 1
        """;

    private const string InsertRecipientCopy = """
        INSERT INTO messages (owner, conversation_id, seq, message_id, sender, recipient, body, client_message_id, server_ts)
        VALUES (@recipient, @conversation, @seq, @id, @sender, @recipient, @body, @cmid, @ts)
        """;

    private const string FindOriginal = """
        SELECT message_id, conversation_id, server_ts, recipient, body FROM messages
        WHERE sender = @sender AND client_message_id = @cmid AND owner = @sender
        """;

    public static async Task InitializeAsync(string connectionString)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(Schema, connection);
        await command.ExecuteNonQueryAsync();
    }

    public static async Task<int> RunServerAsync(string url, string connectionString, byte[] signingKey)
    {
        await InitializeAsync(connectionString);
        var app = Edge(url, signingKey, services => services.AddSingleton(NpgsqlDataSource.Create(connectionString)));
        var v1 = app.MapGroup("/v1").RequireAuthorization();
        v1.MapPost("/messages", Send);
        v1.MapGet("/users/{userId}/conversations", ListConversations);
        v1.MapGet("/users/{userId}/conversations/{conversationId}/messages", Thread);
        await app.RunAsync();
        return 0;
    }

    /// <summary>
    /// The edge alone, as a floor: the same minimal API, JWT validation, JSON and checks as the baseline, but a send is
    /// kept in a dictionary (a retry answers Duplicate from it) instead of a database. What a send costs any HTTP
    /// service of this API on this machine before it stores anything (bench --floor).
    /// </summary>
    public static async Task<int> RunFloorAsync(string url, byte[] signingKey)
    {
        var app = Edge(url, signingKey, _ => { });
        var sent = new System.Collections.Concurrent.ConcurrentDictionary<(string, string), (string Recipient, string Text, string Id, long Ts)>();
        app.MapGroup("/v1").RequireAuthorization().MapPost("/messages", (SendRequest request, ClaimsPrincipal principal) =>
        {
            var sender = User(principal);
            if (Refused(request, sender, out var recipient, out var text, out var clientMessageId) is { } refused)
                return refused;
            var conversation = string.CompareOrdinal(sender, recipient) < 0 ? $"dm~{sender}~{recipient}" : $"dm~{recipient}~{sender}";
            var ts = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
            var mine = (recipient, text, $"{ts:x}-{sender}", ts);
            var added = sent.TryAdd((sender, clientMessageId), mine);
            (string Recipient, string Text, string Id, long Ts) kept = added ? mine : sent[(sender, clientMessageId)];
            if (!added && (kept.Recipient != recipient || kept.Text != text))
                return Results.Problem(statusCode: 409, title: "Conflict", extensions: new Dictionary<string, object?> { ["sendStatus"] = "Conflict" });
            return Results.Ok(new { sendStatus = added ? "Sent" : "Duplicate", messageId = kept.Id, conversationId = conversation, serverTimestamp = kept.Ts });
        });
        await app.RunAsync();
        return 0;
    }

    /// <summary>The HTTP edge both servers share: Kestrel, the node's JWT validation, authorization, the readiness probe.</summary>
    private static WebApplication Edge(string url, byte[] signingKey, Action<IServiceCollection> services)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.WebHost.UseUrls(url);
        services(builder.Services);
        builder.Services.AddAuthentication(JwtBearerDefaults.AuthenticationScheme).AddJwtBearer(jwt =>
        {
            jwt.MapInboundClaims = false;
            jwt.TokenValidationParameters = MessagingAuth.ValidationParameters(signingKey);
        });
        builder.Services.AddAuthorization();
        var app = builder.Build();
        app.UseAuthentication();
        app.UseAuthorization();
        app.MapGet("/healthz/ready", () => "ok");
        return app;
    }

    /// <summary>A send's checks, as both servers make them: 400 or 403, or null to go on.</summary>
    private static IResult? Refused(SendRequest request, string sender, out string recipient, out string text, out string clientMessageId)
    {
        (recipient, text, clientMessageId) = (request.RecipientIds is [{ } r] ? r : "", request.Message ?? "", request.ClientMessageId ?? "");
        if (request.RecipientIds is not [{ Length: > 0 }] || recipient == sender || text.Length == 0 || clientMessageId.Length == 0
            || Encoding.UTF8.GetByteCount(text) > MessagingApi.MaxMessageBytes)
            return Results.Problem(statusCode: 400, title: "Invalid", extensions: new Dictionary<string, object?> { ["sendStatus"] = "Invalid" });
        return request.SenderId is { } s && s != sender ? Results.Problem(statusCode: 403, title: "Forbidden") : null;
    }

    public sealed record SendRequest(string? SenderId, List<string>? RecipientIds, string? Message, string? ClientMessageId);

    private static string User(ClaimsPrincipal principal) => principal.FindFirstValue("sub")!;

    private static async Task<IResult> Send(SendRequest request, ClaimsPrincipal principal, NpgsqlDataSource db)
    {
        var sender = User(principal);
        if (Refused(request, sender, out var recipient, out var text, out var clientMessageId) is { } refused)
            return refused;

        var participants = string.CompareOrdinal(sender, recipient) < 0 ? new[] { sender, recipient } : [recipient, sender];
        var conversation = $"dm~{participants[0]}~{participants[1]}";
        var ts = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        var messageId = $"{ts:x}-{sender}";
        var snippet = text.Length > 100 ? text[..100] : text;

        await using var connection = await db.OpenConnectionAsync();
        await using var tx = await connection.BeginTransactionAsync();
        var seqs = new Dictionary<string, long>();
        foreach (var owner in participants) // fixed order: no deadlock between a pair writing to each other
        {
            await using var upsert = new NpgsqlCommand(UpsertConversation, connection, tx);
            upsert.Parameters.AddWithValue("owner", owner);
            upsert.Parameters.AddWithValue("conversation", conversation);
            upsert.Parameters.AddWithValue("participants", participants);
            upsert.Parameters.AddWithValue("snippet", snippet);
            upsert.Parameters.AddWithValue("ts", ts);
            seqs[owner] = (long)(await upsert.ExecuteScalarAsync())!;
        }

        await using (var insert = new NpgsqlCommand(InsertSenderCopy, connection, tx))
        {
            AddMessage(insert, sender, recipient, conversation, seqs[sender], messageId, text, clientMessageId, ts);
            if (await insert.ExecuteScalarAsync() is null)
            {
                await tx.RollbackAsync();
                return await Duplicate(connection, sender, recipient, text, clientMessageId);
            }
        }
        await using (var insert = new NpgsqlCommand(InsertRecipientCopy, connection, tx))
        {
            AddMessage(insert, sender, recipient, conversation, seqs[recipient], messageId, text, clientMessageId, ts);
            await insert.ExecuteNonQueryAsync();
        }
        await tx.CommitAsync();
        return Results.Ok(new { sendStatus = "Sent", messageId, conversationId = conversation, serverTimestamp = ts });
    }

    private static void AddMessage(NpgsqlCommand command, string sender, string recipient, string conversation, long seq,
        string id, string body, string cmid, long ts)
    {
        command.Parameters.AddWithValue("sender", sender);
        command.Parameters.AddWithValue("recipient", recipient);
        command.Parameters.AddWithValue("conversation", conversation);
        command.Parameters.AddWithValue("seq", seq);
        command.Parameters.AddWithValue("id", id);
        command.Parameters.AddWithValue("body", body);
        command.Parameters.AddWithValue("cmid", cmid);
        command.Parameters.AddWithValue("ts", ts);
    }

    private static async Task<IResult> Duplicate(NpgsqlConnection connection, string sender, string recipient, string text, string cmid)
    {
        await using var find = new NpgsqlCommand(FindOriginal, connection);
        find.Parameters.AddWithValue("sender", sender);
        find.Parameters.AddWithValue("cmid", cmid);
        await using var reader = await find.ExecuteReaderAsync();
        if (!await reader.ReadAsync())
            return Results.Problem(statusCode: 503, title: "Unavailable");
        if (reader.GetString(3) != recipient || reader.GetString(4) != text)
            return Results.Problem(statusCode: 409, title: "Conflict", extensions: new Dictionary<string, object?> { ["sendStatus"] = "Conflict" });
        return Results.Ok(new { sendStatus = "Duplicate", messageId = reader.GetString(0), conversationId = reader.GetString(1), serverTimestamp = reader.GetInt64(2) });
    }

    private static async Task<IResult> ListConversations(string userId, ClaimsPrincipal principal, NpgsqlDataSource db,
        int? offset, int? count, long? lastUpdatedTimestamp)
    {
        if (userId != User(principal))
            return Results.Problem(statusCode: 403, title: "Forbidden");
        await using var command = db.CreateCommand("""
            SELECT conversation_id, participants, snippet, last_updated FROM conversations
            WHERE owner = @owner AND last_updated > @after ORDER BY last_updated DESC OFFSET @offset LIMIT @count
            """);
        command.Parameters.AddWithValue("owner", userId);
        command.Parameters.AddWithValue("after", lastUpdatedTimestamp ?? 0);
        command.Parameters.AddWithValue("offset", offset ?? 0);
        command.Parameters.AddWithValue("count", count ?? 20);
        var list = new List<object>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
            list.Add(new { conversationId = reader.GetString(0), participantIds = reader.GetFieldValue<string[]>(1), snippet = reader.GetString(2), lastUpdatedTimestamp = reader.GetInt64(3) });
        return Results.Ok(new { conversations = list, isDBupdate = list.Count > 0 });
    }

    private static async Task<IResult> Thread(string userId, string conversationId, ClaimsPrincipal principal, NpgsqlDataSource db,
        int? offset, int? count)
    {
        if (userId != User(principal))
            return Results.Problem(statusCode: 403, title: "Forbidden");
        await using var command = db.CreateCommand("""
            SELECT message_id, seq, sender, recipient, body, client_message_id, server_ts FROM messages
            WHERE owner = @owner AND conversation_id = @conversation ORDER BY seq DESC OFFSET @offset LIMIT @count
            """);
        command.Parameters.AddWithValue("owner", userId);
        command.Parameters.AddWithValue("conversation", conversationId);
        command.Parameters.AddWithValue("offset", offset ?? 0);
        command.Parameters.AddWithValue("count", count ?? 50);
        var list = new List<object>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
            list.Add(new
            {
                messageId = reader.GetString(0), conversationId, seq = reader.GetInt64(1), senderId = reader.GetString(2),
                recipientIds = new[] { reader.GetString(3) }, message = reader.GetString(4), clientMessageId = reader.GetString(5),
                serverTimestamp = reader.GetInt64(6),
            });
        if (list.Count == 0)
            return Results.Problem(statusCode: 404, title: "Not found");
        list.Reverse();
        return Results.Ok(new { messages = list });
    }
}
