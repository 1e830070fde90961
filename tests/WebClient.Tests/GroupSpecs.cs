using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace Messaging.WebClient.Tests;

/// <summary>Groups in the web client: three users, each in a browser context of their own, signed in by link.</summary>
public sealed class GroupSpecs(WebFixture web) : IClassFixture<WebFixture>
{
    private static ILocator Message(IPage page, string text) =>
        page.Locator("#messages li.message", new() { HasText = text });

    private static ILocator SystemLine(IPage page, string text) =>
        page.Locator("#messages li.system", new() { HasText = text });

    private static ILocator Entry(IPage page, string name) =>
        page.Locator("#conversations button", new() { HasText = name });

    private static async Task SendFromComposer(IPage page, string text)
    {
        await page.Locator("#composer-text").FillAsync(text);
        await page.Locator("#composer-text").PressAsync("Enter");
    }

    private static Task<IReadOnlyList<string>> Texts(IPage page) =>
        page.Locator("#messages li.message .text").AllTextContentsAsync();

    private async Task<string> CreateGroupAsync(string creator, string name, params string[] members) =>
        (await web.PostAsync(creator, "/v1/groups", new { name, memberIds = members, clientRequestId = Guid.NewGuid().ToString() }))
            .GetProperty("conversationId").GetString()!;

    [Fact]
    public async Task A_group_of_three_chats_live_in_one_order_and_a_removed_member_can_no_longer_send()
    {
        var alice = Users.Unique("alice");
        var bob = Users.Unique("bob");
        var carol = Users.Unique("carol");
        var group = $"Trip {Guid.NewGuid():N}"[..13];
        var alicePage = await web.SignedInPageAsync(alice);
        var bobPage = await web.SignedInPageAsync(bob);
        var carolPage = await web.SignedInPageAsync(carol, 390, 844); // one of them on a phone

        // alice creates the group from the sidebar form, and is in its thread.
        await alicePage.GetByText("New group").ClickAsync();
        await alicePage.GetByLabel("Group name").FillAsync(group);
        await alicePage.GetByLabel("Members (user ids").FillAsync($"{bob}, {carol}");
        await alicePage.GetByRole(AriaRole.Button, new() { Name = "Create group" }).ClickAsync();
        await Expect(alicePage.Locator("#thread-title")).ToHaveTextAsync(group);
        await Expect(alicePage.Locator("#thread-sub")).ToHaveTextAsync("3 members");
        await Expect(SystemLine(alicePage, $"You created the group with {bob} and {carol}")).ToBeVisibleAsync();

        // bob and carol see it appear live, by name and member count, and open it.
        foreach (var page in new[] { bobPage, carolPage })
        {
            await Expect(Entry(page, group).Locator(".member-count")).ToHaveTextAsync("3 members");
            await Expect(Entry(page, group).Locator(".snippet")).ToHaveTextAsync($"{alice} created the group");
            await Entry(page, group).ClickAsync();
            await Expect(page.Locator("#thread-title")).ToHaveTextAsync(group);
        }
        await Expect(SystemLine(bobPage, $"{alice} created the group with you and {carol}")).ToBeVisibleAsync();
        await Expect(SystemLine(carolPage, $"{alice} created the group with {bob} and you")).ToBeVisibleAsync();

        // They chat: alice first, then bob and carol at the same time, then alice again.
        await SendFromComposer(alicePage, "hi both");
        await Expect(Message(bobPage, "hi both")).ToBeVisibleAsync();
        await Expect(Message(carolPage, "hi both")).ToBeVisibleAsync();
        await Task.WhenAll(SendFromComposer(bobPage, "hi from bob"), SendFromComposer(carolPage, "hi from carol"));
        // Their typing while they wrote those (a notice the server may take after the message, when the two requests
        // cross) is over within its 5 s; then only what carol types next is news.
        foreach (var page in new[] { alicePage, bobPage })
        {
            await Expect(Message(page, "hi from carol")).ToBeVisibleAsync();
            await Expect(page.Locator("#typing")).ToHaveTextAsync("");
        }
        await carolPage.Locator("#composer-text").PressSequentiallyAsync("wai");
        await Expect(alicePage.Locator("#typing")).ToHaveTextAsync($"{carol} is typing…");
        await Expect(bobPage.Locator("#typing")).ToHaveTextAsync($"{carol} is typing…");
        await SendFromComposer(alicePage, "see you there");
        foreach (var page in new[] { alicePage, bobPage, carolPage })
            await Expect(page.Locator("#messages li.message")).ToHaveCountAsync(4);

        // Every window shows the same messages in the same order, the order of the API's copy.
        var order = await Texts(alicePage);
        Assert.Equal(["hi both", "see you there"], order.Where(t => t is "hi both" or "see you there"));
        Assert.Equal(order, await Texts(bobPage));
        Assert.Equal(order, await Texts(carolPage));
        var conversationId = await alicePage.Locator("#conversations button[aria-current='true']").GetAttributeAsync("data-conversation-id");
        var stored = (await web.ThreadAsync(alice, conversationId!))
            .Where(m => !m.TryGetProperty("system", out _)).Select(m => m.GetProperty("message").GetString()!).ToArray();
        Assert.Equal(order, stored);

        // Others' messages are labelled with their sender, one's own are not; ticks on one's own reach read.
        await Expect(Message(bobPage, "hi both").Locator(".sender")).ToHaveTextAsync(alice);
        await Expect(Message(carolPage, "hi from bob").Locator(".sender")).ToHaveTextAsync(bob);
        await Expect(Message(alicePage, "hi from carol").Locator(".sender")).ToHaveTextAsync(carol);
        await Expect(Message(alicePage, "hi both").Locator(".sender")).ToHaveCountAsync(0);
        await Expect(Message(alicePage, "see you there").Locator(".status")).ToHaveAttributeAsync("data-status", "read");
        await Expect(Message(bobPage, "hi from bob").Locator(".status")).ToHaveAttributeAsync("data-status", "read");

        // alice (the admin) removes carol from the members panel.
        await alicePage.GetByRole(AriaRole.Button, new() { Name = "Members", Exact = true }).ClickAsync();
        await Expect(alicePage.Locator("#members li")).ToHaveCountAsync(3);
        await alicePage.GetByRole(AriaRole.Button, new() { Name = $"Remove {carol}" }).ClickAsync();
        await Expect(alicePage.Locator("#members li")).ToHaveCountAsync(2);
        await Expect(SystemLine(alicePage, $"You removed {carol}")).ToBeVisibleAsync();
        await Expect(alicePage.Locator("#thread-sub")).ToHaveTextAsync("2 members");

        // carol's window shows it and no longer lets her send; bob's shows it too.
        await Expect(SystemLine(carolPage, $"{alice} removed you")).ToBeVisibleAsync();
        await Expect(carolPage.Locator("#composer-text")).ToBeDisabledAsync();
        await Expect(carolPage.Locator("#composer-note")).ToContainTextAsync("no longer send");
        await Expect(carolPage.Locator("#thread-sub")).ToHaveTextAsync("You are no longer a member");
        await Expect(SystemLine(bobPage, $"{alice} removed {carol}")).ToBeVisibleAsync();
        await Expect(bobPage.Locator("#thread-sub")).ToHaveTextAsync("2 members");

        // The group goes on without her: bob gets the next message, carol's copy (on screen and stored) ends at her removal.
        await SendFromComposer(alicePage, "just us now");
        await Expect(Message(bobPage, "just us now")).ToBeVisibleAsync();
        Assert.Equal(await Texts(alicePage), await Texts(bobPage));
        Assert.Equal(order, await Texts(carolPage));
        var carolsCopy = await web.ThreadAsync(carol, conversationId!);
        Assert.Equal("removed", carolsCopy[^1].GetProperty("system").GetProperty("action").GetString());
        using var carolClient = web.ClientFor(carol);
        var refused = await carolClient.PostAsJsonAsync("/v1/messages",
            new { conversationId, message = "let me in", clientMessageId = Guid.NewGuid().ToString() }, TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);

        foreach (var page in new[] { alicePage, bobPage, carolPage })
            await page.Context.CloseAsync();
    }

    [Fact]
    public async Task A_group_send_while_the_network_is_cut_stays_pending_and_is_retried_with_the_same_id_until_stored_once()
    {
        var alice = Users.Unique("alice");
        var bob = Users.Unique("bob");
        var carol = Users.Unique("carol");
        var group = $"Cut {Guid.NewGuid():N}"[..12];
        var conversationId = await CreateGroupAsync(alice, group, bob, carol);
        var alicePage = await web.SignedInPageAsync(alice);
        var bobPage = await web.SignedInPageAsync(bob);
        await Entry(alicePage, group).ClickAsync();
        await Entry(bobPage, group).ClickAsync();
        await Expect(alicePage.Locator("#thread-sub")).ToHaveTextAsync("3 members");

        // 1st attempt: the network is cut before the node. 2nd: the node stores it, the answer is lost (cut again).
        // 3rd: passes through, and the node answers Duplicate: stored exactly once.
        var attempts = new List<string>();
        var release = new TaskCompletionSource();
        var acknowledged = false;
        await alicePage.RouteAsync("**/v1/messages", async route =>
        {
            var body = JsonDocument.Parse(route.Request.PostData!).RootElement;
            Assert.Equal(conversationId, body.GetProperty("conversationId").GetString());
            int attempt;
            lock (attempts)
            {
                attempts.Add(body.GetProperty("clientMessageId").GetString()!);
                attempt = attempts.Count;
            }
            switch (attempt)
            {
                case 1:
                    await release.Task; // keeps the first failure on screen until the test has seen it pending
                    await route.AbortAsync("internetdisconnected");
                    break;
                case 2:
                    var stored = await route.FetchAsync();
                    Assert.Equal(200, stored.Status);
                    await route.AbortAsync("connectionreset");
                    break;
                default:
                    var answer = await route.FetchAsync();
                    var sendStatus = JsonDocument.Parse(await answer.TextAsync()).RootElement.GetProperty("sendStatus").GetString();
                    Assert.Equal("Duplicate", sendStatus);
                    await route.FulfillAsync(new() { Response = answer });
                    Volatile.Write(ref acknowledged, true);
                    break;
            }
        });

        await SendFromComposer(alicePage, "through the tunnel");
        var status = Message(alicePage, "through the tunnel").Locator(".status");
        await Expect(status).ToHaveAttributeAsync("data-status", "pending");
        await Expect(Message(alicePage, "through the tunnel")).ToHaveClassAsync(new System.Text.RegularExpressions.Regex("pending"));
        release.SetResult();
        await Expect(status).ToContainTextAsync("offline");
        await Expect(Message(bobPage, "through the tunnel")).ToHaveCountAsync(1);

        await Eventually.AssertAsync(() => Task.FromResult(Volatile.Read(ref acknowledged)), TimeSpan.FromSeconds(20),
            () => $"no acknowledged attempt; attempts: {attempts.Count}");
        Assert.True(attempts.Count >= 3, $"expected at least 3 attempts, saw {attempts.Count}");
        Assert.Single(attempts.Distinct());
        foreach (var member in new[] { alice, bob, carol })
        {
            var copy = Assert.Single(await web.ThreadAsync(member, conversationId),
                m => m.GetProperty("message").GetString() == "through the tunnel");
            Assert.Equal(attempts[0], copy.GetProperty("clientMessageId").GetString());
        }
        await Expect(Message(alicePage, "through the tunnel")).ToHaveCountAsync(1);
        await Expect(Message(bobPage, "through the tunnel")).ToHaveCountAsync(1);

        // carol opens it (a window of her own): read by everyone it went to, so alice's tick turns read.
        var carolPage = await web.SignedInPageAsync(carol);
        await Entry(carolPage, group).ClickAsync();
        await Expect(Message(carolPage, "through the tunnel")).ToHaveCountAsync(1);
        await Expect(status).ToHaveAttributeAsync("data-status", "read");

        foreach (var page in new[] { alicePage, bobPage, carolPage })
            await page.Context.CloseAsync();
    }

    [Fact]
    public async Task Only_an_admin_adds_and_removes_an_added_member_sees_the_group_live_and_a_leaver_can_no_longer_send()
    {
        var alice = Users.Unique("alice");
        var bob = Users.Unique("bob");
        var dave = Users.Unique("dave");
        var group = $"Club {Guid.NewGuid():N}"[..13];
        await CreateGroupAsync(alice, group, bob);
        var alicePage = await web.SignedInPageAsync(alice);
        var bobPage = await web.SignedInPageAsync(bob, 390, 844);
        var davePage = await web.SignedInPageAsync(dave);
        await Entry(alicePage, group).ClickAsync();
        await Entry(bobPage, group).ClickAsync();

        // bob is a member, not an admin: he sees the members, no add or remove, and may leave.
        await bobPage.GetByRole(AriaRole.Button, new() { Name = "Members", Exact = true }).ClickAsync();
        await Expect(bobPage.Locator("#members li")).ToHaveCountAsync(2);
        await Expect(bobPage.Locator("#members li", new() { HasText = alice }).Locator(".tag")).ToHaveTextAsync("admin");
        await Expect(bobPage.Locator("#members .remove")).ToHaveCountAsync(0);
        await Expect(bobPage.GetByLabel("Add member by user id")).ToBeHiddenAsync();
        await Expect(bobPage.GetByRole(AriaRole.Button, new() { Name = "Leave group" })).ToBeVisibleAsync();

        // alice adds dave with the keyboard: dave's list gets the group live, and his thread starts at his addition.
        await alicePage.GetByRole(AriaRole.Button, new() { Name = "Members", Exact = true }).ClickAsync();
        await Expect(alicePage.Locator("#members .remove")).ToHaveCountAsync(1);
        await alicePage.GetByLabel("Add member by user id").FillAsync(dave);
        await alicePage.GetByLabel("Add member by user id").PressAsync("Enter");
        await Expect(alicePage.Locator("#thread-sub")).ToHaveTextAsync("3 members");
        await Expect(SystemLine(alicePage, $"You added {dave}")).ToBeVisibleAsync();
        await Expect(SystemLine(bobPage, $"{alice} added {dave}")).ToBeVisibleAsync();
        await Expect(bobPage.Locator("#members li")).ToHaveCountAsync(3);
        await Expect(Entry(davePage, group).Locator(".member-count")).ToHaveTextAsync("3 members");
        await Entry(davePage, group).ClickAsync();
        await Expect(davePage.Locator("#messages li")).ToHaveCountAsync(1);
        await Expect(SystemLine(davePage, $"{alice} added you")).ToBeVisibleAsync();
        await SendFromComposer(davePage, "thanks for adding me");
        await Expect(Message(bobPage, "thanks for adding me").Locator(".sender")).ToHaveTextAsync(dave);

        // bob leaves (asked once more first): everyone sees it, and bob's composer is off.
        await bobPage.GetByRole(AriaRole.Button, new() { Name = "Leave group" }).ClickAsync();
        await Expect(bobPage.Locator("#composer-text")).ToBeEnabledAsync();
        await bobPage.GetByRole(AriaRole.Button, new() { Name = "Really leave? Press again" }).ClickAsync();
        await Expect(SystemLine(bobPage, "You left")).ToBeVisibleAsync();
        await Expect(bobPage.Locator("#composer-text")).ToBeDisabledAsync();
        await Expect(bobPage.GetByRole(AriaRole.Button, new() { Name = "Leave group" })).ToBeHiddenAsync();
        await Expect(SystemLine(alicePage, $"{bob} left")).ToBeVisibleAsync();
        await Expect(SystemLine(davePage, $"{bob} left")).ToBeVisibleAsync();
        await Expect(alicePage.Locator("#thread-sub")).ToHaveTextAsync("2 members");
        await Expect(Entry(bobPage, group)).ToBeHiddenAsync(); // on a phone the list is behind the thread
        await bobPage.GetByRole(AriaRole.Button, new() { Name = "Back to conversations" }).ClickAsync();
        await Expect(Entry(bobPage, group).Locator(".snippet")).ToHaveTextAsync($"{bob} left"); // still in his list

        foreach (var page in new[] { alicePage, bobPage, davePage })
            await page.Context.CloseAsync();
    }
}
