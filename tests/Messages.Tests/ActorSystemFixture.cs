using Akka.Actor;
using Akka.Hosting;
using Messaging.Messages.Serialization;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Messaging.Messages.Tests;

/// <summary>An actor system configured by the production extension method, as the node configures it.</summary>
public sealed class ActorSystemFixture : IAsyncLifetime
{
    private IHost? _host;

    public ActorSystem System { get; private set; } = null!;

    public async ValueTask InitializeAsync()
    {
        _host = new HostBuilder()
            .ConfigureServices(services => services.AddAkka("messages-tests", builder => builder.WithMessagingSerialization()))
            .Build();
        await _host.StartAsync();
        System = _host.Services.GetRequiredService<ActorSystem>();
    }

    public async ValueTask DisposeAsync()
    {
        if (_host is null)
            return;
        await _host.StopAsync();
        _host.Dispose();
    }
}
