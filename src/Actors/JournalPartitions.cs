using System.Security.Cryptography;
using System.Text;

namespace Messaging.Actors;

/// <summary>The Akka.Persistence plugins an entity's events and snapshots go to ("": Akka's default ones).</summary>
public sealed record PersistencePlugins(string Journal, string SnapshotStore)
{
    public static PersistencePlugins Default { get; } = new("", "");
}

/// <summary>
/// Which journal each mailbox and group writes, when the journal is spread over several database servers. An entity's
/// persistence id falls into one of <see cref="Count"/> logical partitions by a hash that never changes (the first
/// byte of the SHA-256 of its UTF-8, which a database can compute too when partitions are moved: docs/operations.md),
/// and configuration says which journal each partition is on. The count is fixed for the life of the data, like the shard count: adding
/// a server moves whole partitions to it and never rehashes an entity. No SQL here: plugins are only names.
/// </summary>
public sealed class JournalPartitions
{
    /// <summary>Logical partitions: the most servers the journal can ever be spread over, and the unit moved between them.</summary>
    public const int Count = 256;

    private readonly PersistencePlugins[] _byPartition;

    /// <param name="byPartition">The plugins of each partition, <see cref="Count"/> of them in partition order.</param>
    public JournalPartitions(IReadOnlyList<PersistencePlugins> byPartition)
    {
        if (byPartition.Count != Count)
            throw new ArgumentException($"{Count} partitions expected, not {byPartition.Count}", nameof(byPartition));
        _byPartition = [.. byPartition];
        Plugins = [.. _byPartition.Distinct()];
    }

    /// <summary>Every partition on the same plugins: one database server.</summary>
    public static JournalPartitions AllOn(PersistencePlugins plugins) => new(Enumerable.Repeat(plugins, Count).ToArray());

    /// <summary>The plugins in use, each once, in the order of their first partition.</summary>
    public IReadOnlyList<PersistencePlugins> Plugins { get; }

    /// <summary>The partition of a persistence id: stable across processes, machines and releases (never string.GetHashCode).</summary>
    public static int PartitionOf(string persistenceId)
    {
        Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(Encoding.UTF8.GetBytes(persistenceId), hash);
        return hash[0]; // Count is 256: the first byte is the partition
    }

    public PersistencePlugins For(string persistenceId) => _byPartition[PartitionOf(persistenceId)];

    public PersistencePlugins ForPartition(int partition) => _byPartition[partition];
}
