using Messaging.Cluster.Tests.Harness;
using Npgsql;
using Xunit;

namespace Messaging.Cluster.Tests;

public sealed class PostgresServerSpecs
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Should_start_a_throwaway_server_survive_an_immediate_restart_and_clean_up()
    {
        string directory;
        await using (var server = await PostgresServer.StartAsync())
        {
            directory = server.Directory;
            await ExecuteAsync(server, "CREATE TABLE t (id int primary key, v text)");
            await ExecuteAsync(server, "INSERT INTO t VALUES (1, 'before restart')");

            await using var held = new NpgsqlConnection(server.ConnectionString);
            await held.OpenAsync(Ct);

            await server.RestartAsync();

            // A connection from before the restart is dead; new ones reach the recovered server and its data.
            await Assert.ThrowsAnyAsync<Exception>(async () =>
            {
                await using var command = new NpgsqlCommand("SELECT 1", held);
                await command.ExecuteScalarAsync(Ct);
            });
            Assert.Equal("before restart", await ScalarAsync(server, "SELECT v FROM t WHERE id = 1"));
            Assert.Equal(server.Database, await ScalarAsync(server, "SELECT current_database()"));
        }
        Assert.False(Directory.Exists(directory));
    }

    [Fact]
    public async Task Should_give_each_server_its_own_port()
    {
        await using var a = await PostgresServer.StartAsync();
        await using var b = await PostgresServer.StartAsync();
        Assert.NotEqual(a.Port, b.Port);
        Assert.Equal("1", await ScalarAsync(a, "SELECT 1::text"));
        Assert.Equal("1", await ScalarAsync(b, "SELECT 1::text"));
    }

    private static async Task ExecuteAsync(PostgresServer server, string sql)
    {
        await using var connection = new NpgsqlConnection(server.ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    private static async Task<string?> ScalarAsync(PostgresServer server, string sql)
    {
        await using var connection = new NpgsqlConnection(server.ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return (await command.ExecuteScalarAsync())?.ToString();
    }
}
