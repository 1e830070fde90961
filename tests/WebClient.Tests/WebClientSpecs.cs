using System.Net;
using System.Text.Json;
using Messaging.Node;
using Microsoft.Extensions.Configuration;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace Messaging.WebClient.Tests;

/// <summary>The web client in a real browser: two users, each in a browser context of their own, signed in by link.</summary>
public sealed class WebClientSpecs(WebFixture web) : IClassFixture<WebFixture>
{
    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    private static ILocator Message(IPage page, string text) =>
        page.Locator("#messages li.message", new() { HasText = text });

    private static async Task SendFromComposer(IPage page, string text)
    {
        await page.Locator("#composer-text").FillAsync(text);
        await page.Locator("#composer-text").PressAsync("Enter");
    }

    private static async Task StartChat(IPage page, string peer)
    {
        await page.GetByLabel("New chat with user id").FillAsync(peer);
        await page.GetByLabel("New chat with user id").PressAsync("Enter");
        await Expect(page.Locator("#thread-title")).ToHaveTextAsync(peer);
    }

    [Fact]
    public async Task A_message_appears_live_in_the_other_window_and_turns_read_once_it_is_on_screen_there()
    {
        var alice = Users.Unique("alice");
        var bob = Users.Unique("bob");
        var alicePage = await web.SignedInPageAsync(alice);
        var bobPage = await web.SignedInPageAsync(bob);

        await StartChat(alicePage, bob);
        await SendFromComposer(alicePage, "hello bob");
        await Expect(Message(alicePage, "hello bob").Locator(".status")).ToHaveAttributeAsync("data-status", "delivered");

        // bob's list gets it live (no reload): snippet and unread badge; the page posted delivered for it.
        var entry = bobPage.Locator("#conversations button", new() { HasText = alice });
        await Expect(entry.Locator(".snippet")).ToHaveTextAsync("hello bob");
        await Expect(entry.Locator(".badge")).ToHaveTextAsync("1");
        await Expect(Message(alicePage, "hello bob").Locator(".status")).ToHaveAttributeAsync("data-status", "delivered");
        Assert.Equal("delivered", await Message(alicePage, "hello bob").Locator(".status").GetAttributeAsync("data-status"));

        // bob opens the thread: on screen, so read; alice's tick turns read without a reload.
        await entry.ClickAsync();
        await Expect(Message(bobPage, "hello bob")).ToBeVisibleAsync();
        await Expect(Message(alicePage, "hello bob").Locator(".status")).ToHaveAttributeAsync("data-status", "read");
        await Expect(entry.Locator(".badge")).ToHaveCountAsync(0);

        // With the thread open on both sides: typing shows, a reply appears live, and is read at once.
        await bobPage.Locator("#composer-text").PressSequentiallyAsync("hi al");
        await Expect(alicePage.Locator("#typing")).ToHaveTextAsync($"{bob} is typing…");
        await bobPage.Locator("#composer-text").PressSequentiallyAsync("ice");
        await bobPage.Locator("#composer-text").PressAsync("Enter");
        await Expect(Message(alicePage, "hi alice")).ToBeVisibleAsync();
        await Expect(Message(bobPage, "hi alice").Locator(".status")).ToHaveAttributeAsync("data-status", "read");
        await SendFromComposer(alicePage, "second");
        await Expect(Message(bobPage, "second")).ToBeVisibleAsync();
        await Expect(Message(alicePage, "second").Locator(".status")).ToHaveAttributeAsync("data-status", "read");

        // Both windows show the same thread, in the same order.
        string[] expected = ["hello bob", "hi alice", "second"];
        await Expect(alicePage.Locator("#messages .text")).ToHaveTextAsync(expected);
        await Expect(bobPage.Locator("#messages .text")).ToHaveTextAsync(expected);
        await alicePage.Context.CloseAsync();
        await bobPage.Context.CloseAsync();
    }

    [Fact]
    public async Task A_send_the_server_answers_503_is_kept_pending_retried_with_the_same_id_and_stored_once()
    {
        var alice = Users.Unique("alice");
        var bob = Users.Unique("bob");
        await web.SendAsync(bob, alice, "ping"); // the conversation exists
        var alicePage = await web.SignedInPageAsync(alice);
        var bobPage = await web.SignedInPageAsync(bob);
        await alicePage.Locator("#conversations button", new() { HasText = bob }).ClickAsync();
        await bobPage.Locator("#conversations button", new() { HasText = alice }).ClickAsync();

        // 1st attempt: 503 without reaching the node. 2nd: reaches the node (stored), but its answer is lost (503).
        // 3rd: passes through, and the node answers Duplicate: the message is stored exactly once.
        var attempts = new List<string>();
        var release = new TaskCompletionSource();
        var acknowledged = false;
        await alicePage.RouteAsync("**/v1/messages", async route =>
        {
            var body = JsonDocument.Parse(route.Request.PostData!).RootElement;
            lock (attempts) attempts.Add(body.GetProperty("clientMessageId").GetString()!);
            var unavailable = new RouteFulfillOptions
            {
                Status = 503, ContentType = "application/problem+json", Headers = new Dictionary<string, string> { ["Retry-After"] = "1" },
                Body = """{"title":"Service Unavailable","status":503,"detail":"test: unavailable","sendStatus":"Unavailable"}""",
            };
            switch (attempts.Count)
            {
                case 1:
                    await release.Task; // keeps the first failure on screen until the test has seen it pending
                    await route.FulfillAsync(unavailable);
                    break;
                case 2:
                    var stored = await route.FetchAsync();
                    Assert.Equal(200, stored.Status);
                    await route.FulfillAsync(unavailable);
                    break;
                default:
                    var answer = await route.FetchAsync();
                    var sendStatus = JsonDocument.Parse(await answer.TextAsync()).RootElement.GetProperty("sendStatus").GetString();
                    Assert.Equal("Duplicate", sendStatus); // the second attempt stored it
                    await route.FulfillAsync(new() { Response = answer });
                    Volatile.Write(ref acknowledged, true);
                    break;
            }
        });

        await SendFromComposer(alicePage, "exactly once");
        var status = Message(alicePage, "exactly once").Locator(".status");
        await Expect(status).ToHaveAttributeAsync("data-status", "pending");
        await Expect(Message(alicePage, "exactly once")).ToHaveClassAsync(new System.Text.RegularExpressions.Regex("pending"));
        release.SetResult();
        await Expect(status).ToContainTextAsync("503");
        await Expect(status).ToHaveAttributeAsync("data-status", "read", new() { Timeout = 30_000 });
        await Expect(Message(bobPage, "exactly once")).ToHaveCountAsync(1);

        // Seeing its own message stored (by the live stream) is not an answer: the page sends until one comes back.
        await Eventually.AssertAsync(() => Task.FromResult(Volatile.Read(ref acknowledged)), TimeSpan.FromSeconds(20),
            () => $"no acknowledged attempt; attempts: {attempts.Count}");
        Assert.True(attempts.Count >= 3, $"expected at least 3 attempts, saw {attempts.Count}");
        Assert.Single(attempts.Distinct());
        var conversationId = (await web.SendAsync(bob, alice, "after")).GetProperty("conversationId").GetString()!;
        var thread = await web.ThreadAsync(alice, conversationId);
        var copy = Assert.Single(thread, m => m.GetProperty("message").GetString() == "exactly once");
        Assert.Equal(attempts[0], copy.GetProperty("clientMessageId").GetString());
        Assert.Single(await web.ThreadAsync(bob, conversationId), m => m.GetProperty("message").GetString() == "exactly once");
        await Expect(Message(alicePage, "exactly once")).ToHaveCountAsync(1);
        await alicePage.Context.CloseAsync();
        await bobPage.Context.CloseAsync();
    }

    [Fact]
    public async Task Html_and_script_in_a_message_are_shown_as_text_and_never_run()
    {
        const string Hostile = "<img src=x onerror=alert(1)><script>alert(2)</script>";
        var alice = Users.Unique("alice");
        var bob = Users.Unique("bob");
        var alicePage = await web.SignedInPageAsync(alice);
        var bobPage = await web.SignedInPageAsync(bob);
        var dialogs = new List<string>();
        foreach (var page in new[] { alicePage, bobPage })
            page.Dialog += async (_, dialog) => { lock (dialogs) dialogs.Add(dialog.Message); await dialog.DismissAsync(); };

        await StartChat(alicePage, bob);
        await SendFromComposer(alicePage, Hostile);
        var entry = bobPage.Locator("#conversations button", new() { HasText = alice });
        await Expect(entry.Locator(".snippet")).ToHaveTextAsync(Hostile);
        await entry.ClickAsync();

        await Expect(bobPage.Locator("#messages .text")).ToHaveTextAsync([Hostile]);
        await Expect(alicePage.Locator("#messages .text")).ToHaveTextAsync([Hostile]);
        await Expect(Message(alicePage, Hostile).Locator(".status")).ToHaveAttributeAsync("data-status", "read");
        foreach (var page in new[] { alicePage, bobPage })
        {
            Assert.Equal(0, await page.Locator("#app img, #app script").CountAsync());
            Assert.Equal(1, await page.Locator("script").CountAsync()); // the page's own module only
        }
        await alicePage.WaitForTimeoutAsync(500);
        Assert.Empty(dialogs);
        await alicePage.Context.CloseAsync();
        await bobPage.Context.CloseAsync();
    }

    [Fact]
    public async Task Older_messages_load_when_the_thread_is_scrolled_to_the_top()
    {
        var alice = Users.Unique("alice");
        var bob = Users.Unique("bob");
        for (var i = 1; i <= 65; i++)
            await web.SendAsync(alice, bob, $"message {i}");
        var bobPage = await web.SignedInPageAsync(bob, 390, 844);

        await bobPage.Locator("#conversations button", new() { HasText = alice }).ClickAsync();
        await Expect(bobPage.Locator("#messages li.message")).ToHaveCountAsync(50); // the newest page
        await Expect(bobPage.Locator("#messages li.message").Last).ToContainTextAsync("message 65");
        await Expect(bobPage.Locator("#messages li.message").First).ToContainTextAsync("message 16");

        await bobPage.Locator("#messages").EvaluateAsync("list => list.scrollTop = 0");
        await Expect(bobPage.Locator("#messages li.message")).ToHaveCountAsync(65);
        await Expect(bobPage.Locator("#messages li.message").First).ToContainTextAsync("message 1");
        var seqs = await bobPage.Locator("#messages li.message").EvaluateAllAsync<int[]>("items => items.map(i => Number(i.dataset.seq))");
        Assert.Equal(Enumerable.Range(1, 65), seqs);
        // the reader's place is kept: the old top message is still in view, not the new top one
        Assert.True(await bobPage.Locator("#messages").EvaluateAsync<double>("list => list.scrollTop") > 0);
        await bobPage.Context.CloseAsync();
    }

    [Fact]
    public async Task The_page_is_served_without_a_token_with_a_content_security_policy_and_shadows_no_route()
    {
        using var anonymous = new HttpClient { BaseAddress = web.BaseAddress };
        var response = await anonymous.GetAsync("/", Cancel);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/html", response.Content.Headers.ContentType?.MediaType);
        var csp = string.Join(";", response.Headers.GetValues("Content-Security-Policy"));
        Assert.Contains("script-src 'self'", csp);
        Assert.DoesNotContain("unsafe-inline", csp);
        Assert.Contains("object-src 'none'", csp);
        Assert.Contains("frame-ancestors 'none'", csp);
        Assert.Equal("nosniff", string.Join("", response.Headers.GetValues("X-Content-Type-Options")));
        foreach (var file in new[] { "/app.js", "/api.js", "/style.css", "/index.html" })
        {
            var asset = await anonymous.GetAsync(file, Cancel);
            Assert.Equal(HttpStatusCode.OK, asset.StatusCode);
            Assert.True(asset.Headers.Contains("Content-Security-Policy"), file);
        }
        Assert.Equal("text/javascript", (await anonymous.GetAsync("/app.js", Cancel)).Content.Headers.ContentType?.MediaType);

        // The API's routes are untouched: still their own answers.
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync("/v1/users/alice/conversations", Cancel)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await anonymous.GetAsync("/healthz/live", Cancel)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await anonymous.GetAsync("/openapi/v1.json", Cancel)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await anonymous.GetAsync("/no-such-file.js", Cancel)).StatusCode);

        // And the browser sees the same header on the document it opens.
        var context = await web.Browser.NewContextAsync();
        var page = await context.NewPageAsync();
        var document = await page.GotoAsync(web.BaseAddress.ToString());
        Assert.Contains("script-src 'self'", (await document!.AllHeadersAsync())["content-security-policy"]);
        await Expect(page.GetByLabel("Paste your token")).ToBeVisibleAsync();
        await context.CloseAsync();
    }

    [Fact]
    public async Task The_link_token_link_prints_signs_in_and_leaves_the_address_bar_and_a_pasted_token_works_too()
    {
        var alice = Users.Unique("alice");
        var dataDirectory = Directory.CreateTempSubdirectory("messaging-token-").FullName;
        var output = new StringWriter();
        var exit = TokenCommand.Run(
            [alice, "--link", $"--urls={web.BaseAddress}", $"--Messaging:Auth:SigningKey={WebFixture.SigningKey}",
             $"--Messaging:DataDirectory={dataDirectory}"],
            output, TextWriter.Null);
        Assert.Equal(0, exit);
        var link = output.ToString().Trim();
        Assert.StartsWith($"{web.BaseAddress.ToString().TrimEnd('/')}/#token=", link);

        var context = await web.Browser.NewContextAsync();
        var page = await context.NewPageAsync();
        await page.GotoAsync(link);
        await Expect(page.Locator("#me")).ToHaveTextAsync(alice);
        Assert.DoesNotContain("token", page.Url);
        Assert.Equal(link[(link.IndexOf("#token=", StringComparison.Ordinal) + 7)..],
            await page.EvaluateAsync<string>("() => sessionStorage.getItem('messaging.token')"));
        await page.ReloadAsync(); // the tab's session storage keeps it signed in
        await Expect(page.Locator("#me")).ToHaveTextAsync(alice);

        await page.GetByRole(AriaRole.Button, new() { Name = "Sign out" }).ClickAsync();
        await Expect(page.GetByLabel("Paste your token")).ToBeVisibleAsync();
        await page.GetByLabel("Paste your token").FillAsync(web.Tokens.Issue(alice));
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();
        await Expect(page.Locator("#me")).ToHaveTextAsync(alice);
        await context.CloseAsync();

        // Without --link the output is the bare token, as before.
        var bare = new StringWriter();
        Assert.Equal(0, TokenCommand.Run([alice, $"--Messaging:DataDirectory={dataDirectory}"], bare, TextWriter.Null));
        Assert.Matches("^[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+$", bare.ToString().Trim());
        Directory.Delete(dataDirectory, recursive: true);
    }

    [Theory]
    [InlineData(null, "http://localhost:8080")]
    [InlineData("http://0.0.0.0:9000", "http://localhost:9000")]
    [InlineData("http://*:9001;https://*:9443", "http://localhost:9001")]
    [InlineData("http://+:9002/", "http://localhost:9002")]
    [InlineData("http://[::]:9003", "http://localhost:9003")]
    [InlineData("http://chat.example.org:80", "http://chat.example.org:80")]
    public void The_link_uses_the_configured_url_with_a_wildcard_host_made_localhost(string? urls, string expected)
    {
        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(urls is null ? [] : [new("urls", urls)])
            .Build();
        Assert.Equal(expected, TokenCommand.PublicUrl(configuration));
    }
}
