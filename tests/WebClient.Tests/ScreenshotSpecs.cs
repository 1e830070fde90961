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
}
