namespace Messaging.Testing;

public static class Users
{
    /// <summary>A user id no other spec uses, so specs sharing a node never see each other's messages.</summary>
    public static string Unique(string name) => $"{name}-{Guid.NewGuid():N}"[..(name.Length + 13)];
}
