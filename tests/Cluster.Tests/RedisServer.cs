using System.Net;
using System.Net.Sockets;
using StackExchange.Redis;

namespace Orchestrator.Cluster.Tests;

/// <summary>
/// The Redis server the membership tests use. $ORCHESTRATOR_TEST_REDIS (a connection string; .ci/run starts one
/// and sets it) wins. Without it, CI (CI=true) fails here: a missing service must not go unnoticed. A developer's
/// run starts redis-server from PATH itself on a free loopback port, with a password and no persistence, and stops
/// it afterwards. When redis-server is not installed, a root user on Debian or Ubuntu gets Debian's package installed
/// (as .ci/run does), so `dotnet test` works on a fresh machine with only the .NET SDK; anyone else gets an error that
/// says how to install it. Tests never skip.
/// </summary>
public sealed class RedisServer : IAsyncLifetime
{
    public const string Variable = "ORCHESTRATOR_TEST_REDIS";

    ChildProcess? server;

    /// <summary>StackExchange.Redis connection string, e.g. "127.0.0.1:6390,password=...".</summary>
    public string ConnectionString { get; private set; } = "";

    public async Task InitializeAsync()
    {
        var configured = Environment.GetEnvironmentVariable(Variable);
        if (string.IsNullOrWhiteSpace(configured))
        {
            if (string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase))
                throw new InvalidOperationException(
                    $"{Variable} is not set. Under CI (CI=true) .ci/run must start redis-server and export {Variable}=host:port,password=...; " +
                    "the Redis membership tests do not start their own there.");
            configured = StartLocalServer();
        }
        ConnectionString = configured;
        await WaitUntilReachable(TimeSpan.FromSeconds(15));
    }

    static string? OnPath(string name) => (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
        .Select(dir => Path.Combine(dir, name)).FirstOrDefault(File.Exists);

    /// <summary>apt-get install redis-server, for root on Debian/Ubuntu only; bounded, and quiet unless it fails.</summary>
    static void InstallRedisWithApt()
    {
        if (Environment.UserName != "root" || OnPath("apt-get") is not { } apt) return;
        var script = $"{apt} update -qq && DEBIAN_FRONTEND=noninteractive {apt} install -y -qq redis-server";
        using var install = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("bash", ["-c", script])
            { RedirectStandardOutput = true, RedirectStandardError = true })!;
        var output = install.StandardOutput.ReadToEndAsync();
        var errors = install.StandardError.ReadToEndAsync();
        if (!install.WaitForExit(TimeSpan.FromMinutes(5)))
        {
            install.Kill(entireProcessTree: true);
            throw new TimeoutException("apt-get install redis-server took over 5 minutes.");
        }
        if (install.ExitCode != 0)
            throw new InvalidOperationException($"apt-get install redis-server failed ({install.ExitCode}):\n{output.Result}\n{errors.Result}");
    }

    string StartLocalServer()
    {
        if (OnPath("redis-server") is null) InstallRedisWithApt();
        var executable = OnPath("redis-server")
            ?? throw new InvalidOperationException(
                $"The Redis membership tests need a Redis server: set {Variable}=host:port[,password=...] or install redis-server " +
                "(Debian/Ubuntu: apt-get install redis-server); the tests then start one on a free loopback port themselves.");
        int port = FreePort();
        string password = Convert.ToHexString(Guid.NewGuid().ToByteArray());
        server = ChildProcess.Start("redis-server", executable,
            ["--port", $"{port}", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--requirepass", password]);
        return $"127.0.0.1:{port},password={password}";
    }

    async Task WaitUntilReachable(TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            try
            {
                var options = ConfigurationOptions.Parse(ConnectionString);
                options.ConnectTimeout = 2000;
                await using var redis = await ConnectionMultiplexer.ConnectAsync(options);
                await redis.GetDatabase().PingAsync();
                return;
            }
            catch (RedisConnectionException e) when (DateTime.UtcNow < deadline && server?.HasExited != true)
            {
                _ = e;
                await Task.Delay(200);
            }
            catch (RedisConnectionException e)
            {
                throw new InvalidOperationException(
                    $"Redis at {Endpoints(ConnectionString)} ({Variable} or the server these tests started) is not reachable: {e.Message}\n{server?.Output}", e);
            }
        }
    }

    public static string Endpoints(string connection) =>
        string.Join(", ", ConfigurationOptions.Parse(connection).EndPoints.Select(e => e.ToString()));

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public async Task DisposeAsync()
    {
        if (server is not null) await server.DisposeAsync();
    }
}
