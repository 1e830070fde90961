using Akka.Hosting;

namespace Messaging.Messages.Serialization;

public static class SerializationHosting
{
    public const string SerializerName = "messaging";

    /// <summary>
    /// Binds <see cref="MessagingSerializer"/> to <see cref="IMessagingProtocol"/>, so every contract (on the wire,
    /// in the journal, in snapshots) is written as protobuf rather than with the default JSON serializer.
    /// </summary>
    public static AkkaConfigurationBuilder WithMessagingSerialization(this AkkaConfigurationBuilder builder) =>
        builder.WithCustomSerializer(
            SerializerName, [typeof(IMessagingProtocol)], system => new MessagingSerializer(system));
}
