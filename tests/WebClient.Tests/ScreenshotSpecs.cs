using System.Text.Json;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace Messaging.WebClient.Tests;

/// <summary>
/// The main screens at a desktop's width (1280x800) and a phone's (390x844), with the layout each should have.
/// The PNGs go to a temp folder; with MESSAGING_SCREENSHOTS=docs they replace the README's, in docs/images.
/// </summary>
public sealed class ScreenshotSpecs(WebFixture web) : IClassFixture<WebFixture>
{
    private static string Folder()
    {
        var target = Environment.GetEnvironmentVariable("MESSAGING_SCREENSHOTS") == "docs"
            ? Path.Combine(Repository.Root, "docs", "images")
            : Directory.CreateTempSubdirectory("messaging-screens-").FullName;
        Directory.CreateDirectory(target);
        return target;
    }

    [Fact]
    public async Task The_main_screens_at_desktop_and_phone_width()
    {
        var folder = Folder();
        // Readable names: only this class's node has them.
        await web.SendAsync("carol", "alice", "Lunch on Friday?");
        await web.SendAsync("alice", "carol", "Yes! 12:30 at the usual place");
        await web.SendAsync("bob", "alice", "Hi Alice, did you get the photos?");
        await web.SendAsync("alice", "bob", "I did, they are lovely. Thank you!");
        await web.SendAsync("bob", "alice", "Great. Same time next week?");
        await web.SendAsync("dave", "alice", "Meeting moved to 3 pm");

        var bob = await web.SignedInPageAsync("bob");
        await bob.Locator("#conversations button", new() { HasText = "alice" }).ClickAsync();
        await Expect(bob.Locator("#messages li.message")).ToHaveCountAsync(3);

        var desktop = await web.SignedInPageAsync("alice");
        await Expect(desktop.Locator("#conversations li")).ToHaveCountAsync(3);
        await desktop.Locator("#conversations button", new() { HasText = "bob" }).ClickAsync();
        await Expect(desktop.Locator("#messages li.message")).ToHaveCountAsync(3);
        await desktop.Locator("#composer-text").FillAsync("Yes, see you then");
        await desktop.Locator("#composer-text").PressAsync("Enter");
        await Expect(desktop.Locator("#messages li.message.own .status").Last).ToHaveAttributeAsync("data-status", "read");
        await Expect(desktop.Locator("#conversations button").First).ToContainTextAsync("bob"); // newest first
        await bob.Locator("#composer-text").PressSequentiallyAsync("Perf");
        await Expect(desktop.Locator("#typing")).ToHaveTextAsync("bob is typing…");
        await Expect(desktop.Locator("#sidebar")).ToBeVisibleAsync();
        await Expect(desktop.Locator("#thread")).ToBeVisibleAsync();
        await desktop.ScreenshotAsync(new() { Path = Path.Combine(folder, "desktop-thread.png") });

        var phone = await web.SignedInPageAsync("alice", 390, 844);
        await Expect(phone.Locator("#conversations li")).ToHaveCountAsync(3);
        await Expect(phone.Locator("#thread")).ToBeHiddenAsync(); // one screen at a time on a phone
        await phone.ScreenshotAsync(new() { Path = Path.Combine(folder, "phone-list.png") });
        await phone.Locator("#conversations button", new() { HasText = "carol" }).ClickAsync();
        await Expect(phone.Locator("#sidebar")).ToBeHiddenAsync();
        await Expect(phone.Locator("#messages li.message")).ToHaveCountAsync(2);
        await phone.Locator("#composer-text").FillAsync("Booked a table");
        await phone.ScreenshotAsync(new() { Path = Path.Combine(folder, "phone-thread.png") });
        await phone.GetByRole(AriaRole.Button, new() { Name = "Back to conversations" }).ClickAsync();
        await Expect(phone.Locator("#sidebar")).ToBeVisibleAsync();

        var signin = await web.Browser.NewPageAsync(new() { ViewportSize = new() { Width = 1280, Height = 800 } });
        await signin.GotoAsync(web.BaseAddress.ToString());
        await Expect(signin.GetByLabel("Paste your token")).ToBeVisibleAsync();
        await signin.ScreenshotAsync(new() { Path = Path.Combine(folder, "desktop-signin.png") });

        foreach (var name in new[] { "desktop-thread.png", "phone-list.png", "phone-thread.png", "desktop-signin.png" })
            Assert.True(new FileInfo(Path.Combine(folder, name)).Length > 5_000, name);
        foreach (var page in new[] { bob, desktop, phone, signin })
            await page.Context.CloseAsync();
    }

    private Task<JsonElement> PostAsync(string userId, string path, object body) => web.PostAsync(userId, path, body);

    private Task<JsonElement> SayAsync(string userId, string groupId, string text) =>
        PostAsync(userId, "/v1/messages", new { conversationId = groupId, message = text, clientMessageId = Guid.NewGuid().ToString() });

    private async Task ReadAllAsync(string userId, string groupId)
    {
        var thread = await web.ThreadAsync(userId, groupId);
        await PostAsync(userId, $"/v1/users/{userId}/conversations/{Uri.EscapeDataString(groupId)}/receipts",
            new { readUpToSeq = thread[^1].GetProperty("seq").GetInt64() });
    }

    [Fact]
    public async Task The_group_screens_at_desktop_and_phone_width()
    {
        var folder = Folder();
        // Users of their own (the other screenshots count alice's conversations).
        var group = (await PostAsync("maya", "/v1/groups",
            new { name = "Weekend hike", memberIds = new[] { "leo", "sam" }, clientRequestId = "hike" }))
            .GetProperty("conversationId").GetString()!;
        await SayAsync("leo", group, "Saturday looks sunny!");
        await SayAsync("sam", group, "I'm in. Which trail?");
        await SayAsync("maya", group, "The ridge loop, 12 km. Zoe wanted to come too");
        await PostAsync("maya", $"/v1/groups/{group}/members", new { add = new[] { "zoe" } });
        await SayAsync("zoe", group, "Thanks! Can I bring my dog?");
        await SayAsync("leo", group, "Of course");

        var leo = await web.SignedInPageAsync("leo", 390, 844);
        await leo.Locator("#conversations button", new() { HasText = "Weekend hike" }).ClickAsync();
        await Expect(leo.Locator("#messages li.message")).ToHaveCountAsync(5);

        var desktop = await web.SignedInPageAsync("maya");
        await desktop.Locator("#conversations button", new() { HasText = "Weekend hike" }).ClickAsync();
        await Expect(desktop.Locator("#messages li.system")).ToHaveCountAsync(2);
        await desktop.Locator("#composer-text").FillAsync("Meet at 8 at the car park");
        await desktop.Locator("#composer-text").PressAsync("Enter");
        await Expect(leo.Locator("#messages li.message")).ToHaveCountAsync(6);
        await ReadAllAsync("sam", group);
        await ReadAllAsync("zoe", group);
        await Expect(desktop.Locator("#messages li.message.own .status").Last).ToHaveAttributeAsync("data-status", "read");
        await leo.Locator("#composer-text").PressSequentiallyAsync("Great, I'll dri");
        await Expect(desktop.Locator("#typing")).ToHaveTextAsync("leo is typing…");
        await desktop.GetByRole(AriaRole.Button, new() { Name = "Members", Exact = true }).ClickAsync();
        await Expect(desktop.Locator("#members li")).ToHaveCountAsync(4);
        await Expect(desktop.Locator("#members .remove")).ToHaveCountAsync(3); // maya is the admin
        await desktop.ScreenshotAsync(new() { Path = Path.Combine(folder, "desktop-group.png") });

        await Expect(leo.Locator("#messages li.message.theirs .sender").First).ToBeVisibleAsync();
        await Expect(leo.Locator("#sidebar")).ToBeHiddenAsync();
        await leo.ScreenshotAsync(new() { Path = Path.Combine(folder, "phone-group.png") });

        var zoe = await web.SignedInPageAsync("zoe", 390, 844);
        await zoe.GetByText("New group").ClickAsync();
        await zoe.GetByLabel("Group name").FillAsync("Book club");
        await zoe.GetByLabel("Members (user ids").FillAsync("maya, sam");
        await Expect(zoe.GetByRole(AriaRole.Button, new() { Name = "Create group" })).ToBeInViewportAsync();
        await zoe.ScreenshotAsync(new() { Path = Path.Combine(folder, "phone-newgroup.png") });

        foreach (var name in new[] { "desktop-group.png", "phone-group.png", "phone-newgroup.png" })
            Assert.True(new FileInfo(Path.Combine(folder, name)).Length > 5_000, name);
        foreach (var page in new[] { leo, desktop, zoe })
            await page.Context.CloseAsync();
    }
}
