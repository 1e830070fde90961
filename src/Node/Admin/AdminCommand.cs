using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;

namespace Messaging.Node.Admin;

/// <summary>
/// <c>admin &lt;command&gt; [--node http://host:port] [--json] [--token T]</c>: a client of a node's admin HTTP surface.
/// It reads configuration like the node (to find the admin port and token) but never starts Akka.
/// Exit codes: 0 done, 1 the node refused or could not do it, 2 usage or configuration, 3 node unreachable,
/// 4 missing or wrong admin token.
/// </summary>
public static class AdminCommand
{
    public const int Ok = 0;
    public const int Failed = 1;
    public const int Usage = 2;
    public const int Unreachable = 3;
    public const int Unauthorized = 4;

    public const string UsageText = """
        usage: admin <command> [--node http://host:port] [--json] [--token TOKEN]
          cluster show                    members: address, status, reachability, app-version, roles, leader
          cluster leave [address]         the node at --node leaves (or the member at address)
          cluster down <address>          mark a member Down (its shards move once it is removed)
          cluster down-unreachable        down every member this node sees as unreachable
          sharding regions                shard regions (entity types) and the nodes that host them
          sharding stats                  mailbox shards and active mailboxes per node
          sharding shard <id>             the node hosting a shard and its active mailboxes
          mailbox <userId> [--no-start]   where a mailbox lives, whether it is active, its sequence number
                                          (reading the sequence number starts an inactive mailbox; --no-start does not)
          group <conversationId>          a group's members and admins, where it lives, the deliveries it still waits for
        --node defaults to this machine's admin port (Messaging:Admin:Port); the token defaults to
        Messaging:Admin:Token or the node's data-directory file admin-token.
        """;

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    public static async Task<int> RunAsync(string[] args, TextWriter output, TextWriter error)
    {
        string? node = null, token = null;
        bool json = false, noStart = false;
        var words = new List<string>();
        var configArgs = new List<string>();
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--node" when i + 1 < args.Length:
                    node = args[++i];
                    break;
                case "--token" when i + 1 < args.Length:
                    token = args[++i];
                    break;
                case "--json":
                    json = true;
                    break;
                case "--no-start":
                    noStart = true;
                    break;
                case "-h" or "--help":
                    output.WriteLine(UsageText);
                    return Ok;
                case var option when option.StartsWith("--node=", StringComparison.Ordinal):
                    node = option["--node=".Length..];
                    break;
                case var option when option.StartsWith("--token=", StringComparison.Ordinal):
                    token = option["--token=".Length..];
                    break;
                case var option when option.StartsWith("--", StringComparison.Ordinal):
                    // anything else is configuration, as for the node: --Messaging:DataDirectory=...
                    configArgs.Add(option);
                    if (!option.Contains('=') && i + 1 < args.Length)
                        configArgs.Add(args[++i]);
                    break;
                default:
                    words.Add(args[i]);
                    break;
            }
        }

        if (Route(words, noStart) is not { } request)
        {
            error.WriteLine(words.Count == 0 ? "admin: no command given" : $"admin: unknown command '{string.Join(' ', words)}'");
            error.WriteLine(UsageText);
            return Usage;
        }

        if (node is null || token is null)
        {
            NodeSettings settings;
            try
            {
                settings = NodeSettings.Load(NodeApp.CreateBuilder([.. configArgs]).Configuration);
            }
            catch (NodeConfigurationException ex)
            {
                error.WriteLine($"admin: {ex.Message}");
                return Usage;
            }
            node ??= DefaultNode(settings);
            token ??= AdminTokens.Find(settings);
            if (token is null)
            {
                error.WriteLine($"admin: no admin token: pass --token, set Messaging__Admin__Token, or run where the node's data directory is ({AdminTokens.PathOf(settings)} does not exist)");
                return Unauthorized;
            }
        }
        if (!Uri.TryCreate(node, UriKind.Absolute, out var baseUri) || baseUri.Scheme is not ("http" or "https"))
        {
            error.WriteLine($"admin: --node must be an http(s) URL like http://127.0.0.1:9090, not '{node}'");
            return Usage;
        }

        using var http = new HttpClient { BaseAddress = baseUri, Timeout = TimeSpan.FromSeconds(60) };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        HttpResponseMessage response;
        string body;
        try
        {
            response = await http.SendAsync(new HttpRequestMessage(request.Method, request.Path));
            body = await response.Content.ReadAsStringAsync();
        }
        catch (HttpRequestException ex)
        {
            error.WriteLine($"admin: cannot reach the node's admin endpoint at {baseUri}: {ex.Message}");
            return Unreachable;
        }
        catch (TaskCanceledException)
        {
            error.WriteLine($"admin: the node at {baseUri} did not answer within {http.Timeout.TotalSeconds:0} s");
            return Unreachable;
        }

        using (response)
        {
            if (!response.IsSuccessStatusCode)
            {
                var detail = ProblemDetail(body) ?? $"HTTP {(int)response.StatusCode} {response.ReasonPhrase}";
                if (response.StatusCode == HttpStatusCode.Unauthorized)
                {
                    error.WriteLine($"admin: the node at {baseUri} refused the admin token: {detail}");
                    return Unauthorized;
                }
                error.WriteLine($"admin: {detail} (HTTP {(int)response.StatusCode})");
                return Failed;
            }
            if (json)
            {
                output.WriteLine(JsonSerializer.Serialize(JsonDocument.Parse(body).RootElement, Json));
                return Ok;
            }
            request.Print(body, output);
            return Ok;
        }
    }

    private static string DefaultNode(NodeSettings settings)
    {
        var host = settings.Admin.Hostname switch
        {
            "*" or "0.0.0.0" => "127.0.0.1",
            "::" => "[::1]",
            var h when h.Contains(':') => $"[{h}]",
            var h => h,
        };
        return $"http://{host}:{settings.Admin.Port}";
    }

    private static string? ProblemDetail(string body)
    {
        try
        {
            return JsonDocument.Parse(body).RootElement.TryGetProperty("detail", out var detail) ? detail.GetString() : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private sealed record Request(HttpMethod Method, string Path, Action<string, TextWriter> Print);

    private static Request? Route(List<string> words, bool noStart) => words switch
    {
        ["cluster", "show"] => new(HttpMethod.Get, "admin/cluster", (b, o) => Tables.Cluster(Read<ClusterView>(b), o)),
        ["cluster", "leave"] => new(HttpMethod.Post, "admin/cluster/leave", (b, o) => Tables.Change(Read<MemberChange>(b), o)),
        ["cluster", "leave", var address] =>
            new(HttpMethod.Post, $"admin/cluster/leave?address={Uri.EscapeDataString(address)}", (b, o) => Tables.Change(Read<MemberChange>(b), o)),
        ["cluster", "down", var address] =>
            new(HttpMethod.Post, $"admin/cluster/down?address={Uri.EscapeDataString(address)}", (b, o) => Tables.Change(Read<MemberChange>(b), o)),
        ["cluster", "down-unreachable"] =>
            new(HttpMethod.Post, "admin/cluster/down-unreachable", (b, o) => Tables.Changes(Read<List<MemberChange>>(b), o)),
        ["sharding", "regions"] => new(HttpMethod.Get, "admin/sharding/regions", (b, o) => Tables.Regions(Read<List<RegionView>>(b), o)),
        ["sharding", "stats"] => new(HttpMethod.Get, "admin/sharding/stats", (b, o) => Tables.Stats(Read<ShardingStatsView>(b), o)),
        ["sharding", "shard", var id] =>
            new(HttpMethod.Get, $"admin/sharding/shards/{Uri.EscapeDataString(id)}", (b, o) => Tables.Shard(Read<ShardView>(b), o)),
        ["mailbox", var userId] =>
            new(HttpMethod.Get, $"admin/mailboxes/{Uri.EscapeDataString(userId)}?status={(noStart ? "false" : "true")}",
                (b, o) => Tables.Mailbox(Read<MailboxView>(b), o)),
        ["group", var groupId] =>
            new(HttpMethod.Get, $"admin/groups/{Uri.EscapeDataString(groupId)}", (b, o) => Tables.Group(Read<GroupAdminView>(b), o)),
        _ => null,
    };

    private static T Read<T>(string body) =>
        JsonSerializer.Deserialize<T>(body, Json) ?? throw new InvalidDataException("empty answer from the node");
}
