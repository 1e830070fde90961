using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Messaging.Http;
using Messaging.Node;
using Microsoft.AspNetCore.Builder;
using Microsoft.Playwright;

namespace Messaging.WebClient.Tests;

/// <summary>
/// One node in this process (real Kestrel on 127.0.0.1, a one-node cluster, SQLite in a temp folder, as
/// tests/EndToEnd.Tests/TestNode.cs starts it) and one headless Debian chromium driven by Playwright.
/// </summary>
public sealed class WebFixture : IAsyncLifetime
{
    public const string ChromiumPath = "/usr/bin/chromium";
    public const string SigningKey = "web-client-tests-signing-key-0123456789-abcdef";
    public static readonly byte[] SigningKeyBytes = System.Text.Encoding.UTF8.GetBytes(SigningKey);

    private WebApplication _app = null!;
    private IPlaywright _playwright = null!;
    private string _dataDirectory = null!;

    public IBrowser Browser { get; private set; } = null!;
    public Uri BaseAddress { get; private set; } = null!;
    public TokenIssuer Tokens { get; } = new(SigningKeyBytes, TimeSpan.FromHours(1));

    public async ValueTask InitializeAsync()
    {
        // Not a skip: the README's test command installs chromium (tests/prepare.sh), and a missing browser must not pass unnoticed.
        if (!File.Exists(ChromiumPath))
            throw new InvalidOperationException(
                $"Chromium is not installed at {ChromiumPath}: the web client tests drive Debian's chromium. " +
                "Install it with `apt-get install -y --no-install-recommends chromium` (tests/prepare.sh does).");

        _dataDirectory = Directory.CreateTempSubdirectory("messaging-web-").FullName;
        _app = NodeApp.Build(
        [
            "--urls=http://127.0.0.1:0",
            $"--Messaging:DataDirectory={_dataDirectory}",
            "--Messaging:Cluster:Hostname=127.0.0.1",
            "--Messaging:Cluster:Port=0",
            "--Messaging:Admin:Port=0",
            "--Logging:LogLevel:Default=Warning",
            $"--Messaging:Auth:SigningKey={SigningKey}",
        ]);
        await _app.StartAsync();
        BaseAddress = new Uri(_app.Urls.First());
        await Readiness.WaitAsync("the node", BaseAddress, TimeSpan.FromSeconds(30));

        Assertions.SetDefaultExpectTimeout(15_000);
        _playwright = await Playwright.CreateAsync();
        Browser = await _playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = ChromiumPath,
            Headless = true,
            Args = ["--no-sandbox"], // the tests run as root
        });
    }

    /// <summary>The link <c>token USER --link</c> prints, for this node.</summary>
    public string Link(string userId) => $"{BaseAddress.ToString().TrimEnd('/')}/#token={Tokens.Issue(userId)}";

    /// <summary>A browser context of its own (its own session storage) with the client open, signed in by link.</summary>
    public async Task<IPage> SignedInPageAsync(string userId, int width = 1280, int height = 800)
    {
        var context = await Browser.NewContextAsync(new BrowserNewContextOptions
        {
            ViewportSize = new ViewportSize { Width = width, Height = height },
        });
        var page = await context.NewPageAsync();
        await page.GotoAsync(Link(userId));
        await Assertions.Expect(page.Locator("#me")).ToHaveTextAsync(userId);
        await Assertions.Expect(page.Locator("#connection")).ToHaveTextAsync("Live");
        return page;
    }

    public HttpClient ClientFor(string userId)
    {
        var client = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(30) };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", Tokens.Issue(userId));
        return client;
    }

    public async Task<JsonElement> SendAsync(string from, string to, string text)
    {
        using var client = ClientFor(from);
        var response = await client.PostAsJsonAsync("/v1/messages",
            new { recipientIds = new[] { to }, message = text, clientMessageId = Guid.NewGuid().ToString() });
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"send: {(int)response.StatusCode} {body}");
        return JsonDocument.Parse(body).RootElement.Clone();
    }

    /// <summary>
    /// A POST as a careful client makes it: 503 and 429 are retried with the same body (the same clientMessageId or
    /// clientRequestId, so it takes effect once) until an answer or 30 s; any other failure fails the test.
    /// </summary>
    public async Task<JsonElement> PostAsync(string userId, string path, object body)
    {
        using var client = ClientFor(userId);
        var deadline = DateTime.UtcNow.AddSeconds(30);
        for (;;)
        {
            var response = await client.PostAsJsonAsync(path, body);
            var text = await response.Content.ReadAsStringAsync();
            if (response.IsSuccessStatusCode)
                return JsonDocument.Parse(text).RootElement.Clone();
            var transient = response.StatusCode is System.Net.HttpStatusCode.ServiceUnavailable or System.Net.HttpStatusCode.TooManyRequests;
            Assert.True(transient && DateTime.UtcNow < deadline, $"POST {path}: {(int)response.StatusCode} {text}");
            TestContext.Current.AddWarning($"POST {path} answered {(int)response.StatusCode}, retried: {text}");
            await Task.Delay(500);
        }
    }

    public async Task<JsonElement[]> ThreadAsync(string userId, string conversationId, int count = 200)
    {
        using var client = ClientFor(userId);
        var body = await client.GetStringAsync(
            $"/v1/users/{userId}/conversations/{Uri.EscapeDataString(conversationId)}/messages?count={count}");
        return [.. JsonDocument.Parse(body).RootElement.GetProperty("messages").EnumerateArray().Select(m => m.Clone())];
    }

    public async ValueTask DisposeAsync()
    {
        if (Browser is not null) await Browser.CloseAsync();
        _playwright?.Dispose();
        if (_app is not null)
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }
        try
        {
            if (_dataDirectory is not null) Directory.Delete(_dataDirectory, recursive: true);
        }
        catch (IOException)
        {
            // a SQLite handle still closing; the temp folder is cleaned by the OS eventually
        }
    }
}
