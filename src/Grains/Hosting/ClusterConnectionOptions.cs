using Orleans.Clustering.Redis;
using StackExchange.Redis;

namespace Orchestrator.Grains.Hosting;

/// <summary>
/// How silos and clients find each other, bound from the "Cluster" configuration section.
/// Membership "localhost" (the default) is the development cluster on one machine: every silo joins the one on
/// PrimarySiloPort, and clients use <see cref="Gateways"/>. Membership "redis" is the production cluster: silos
/// register in the Redis server of <see cref="Redis"/>, and clients read the gateway list from it.
/// </summary>
public sealed class ClusterConnectionOptions
{
    public const string Section = "Cluster";
    public const string Localhost = "localhost";
    public const string RedisMembership = "redis";

    public string Membership { get; set; } = Localhost;
    public string ClusterId { get; set; } = "orchestrator";
    public string ServiceId { get; set; } = "orchestrator";
    /// <summary>Localhost membership: the silo port of the primary silo.</summary>
    public int PrimarySiloPort { get; set; } = 11111;
    /// <summary>Gateways a client connects to, "host:port" (membership other than redis).</summary>
    public List<string> Gateways { get; set; } = [];
    /// <summary>Redis membership: a StackExchange.Redis connection string, e.g. "10.0.0.2:6379,password=secret".</summary>
    public string? Redis { get; set; }
    /// <summary>Redis membership: how long connecting to Redis may take before start fails.</summary>
    public int RedisConnectTimeoutSeconds { get; set; } = 10;
    /// <summary>Clients: how long connecting to the cluster (finding and reaching a gateway) may take before it fails.</summary>
    public int ConnectTimeoutSeconds { get; set; } = 30;
    /// <summary>Largest Orleans message body; tensors exchanged through messages must fit. Same on silos and clients.</summary>
    public int MaxMessageMB { get; set; } = 100;
    /// <summary>Redis membership, clients: how often the gateway list is read again from Redis.</summary>
    public int GatewayRefreshSeconds { get; set; } = 60;
    /// <summary>How long a grain call may take before it times out (a step of a big job can take a while).</summary>
    public int ResponseTimeoutSeconds { get; set; } = 600;
    /// <summary>
    /// The cluster secret the silos' data channels authenticate each other with (ClusterSecret has the rules): any
    /// string of at least 16 bytes, the same on every silo, e.g. from <c>openssl rand -hex 32</c>. Give it by environment
    /// (Cluster__Secret), never on a command line, which other users of the host can read. Required with redis
    /// membership. With localhost membership and none set, a fixed development key derived from ServiceId and ClusterId
    /// is used: anyone can derive it, so it protects nothing; such a cluster's channels listen on loopback only.
    /// </summary>
    public string? Secret { get; set; }

    /// <summary>TLS for silo-to-silo and client-to-gateway messages ("Cluster:Tls"); off by default.</summary>
    public ClusterTlsOptions Tls { get; set; } = new();

    public int MaxMessageBytes => MaxMessageMB is > 0 and <= 2047
        ? MaxMessageMB << 20
        : throw new ArgumentOutOfRangeException(nameof(MaxMessageMB), $"Cluster:MaxMessageMB must be 1..2047; got {MaxMessageMB}.");

    public TimeSpan ResponseTimeout => TimeSpan.FromSeconds(ResponseTimeoutSeconds);

    /// <summary>"localhost" or "redis" (any case); anything else is a configuration error.</summary>
    public bool UsesRedis => Membership.ToLowerInvariant() switch
    {
        Localhost => false,
        RedisMembership => true,
        _ => throw new ArgumentException($"Cluster:Membership '{Membership}' is not supported; use '{Localhost}' or '{RedisMembership}'."),
    };

    /// <summary>The endpoints of <see cref="Redis"/>, e.g. "10.0.0.2:6379": what may be shown, never its password.</summary>
    public string RedisEndpoints() => Endpoints(ConfigurationOptions.Parse(Redis ?? ""));

    static string Endpoints(ConfigurationOptions redis) => string.Join(", ", redis.EndPoints.Select(e => e.ToString()));

    /// <summary>
    /// Redis membership settings, checked now (missing or malformed connection string): the parsed connection string,
    /// a bounded connect and a clear error when Redis is unreachable.
    /// </summary>
    public Action<RedisClusteringOptions> RedisSettings()
    {
        if (string.IsNullOrWhiteSpace(Redis))
            throw new ArgumentException("Cluster:Membership is 'redis' but no Redis connection string is set: give Cluster:Redis (env Cluster__Redis, --redis), e.g. '127.0.0.1:6379,password=secret'.");
        if (RedisConnectTimeoutSeconds is <= 0 or > 3600)
            throw new ArgumentOutOfRangeException(nameof(RedisConnectTimeoutSeconds), $"Cluster:RedisConnectTimeoutSeconds must be 1..3600; got {RedisConnectTimeoutSeconds}.");
        ConfigurationOptions configuration;
        try
        {
            configuration = ConfigurationOptions.Parse(Redis);
        }
        catch (ArgumentException e)
        {
            throw new ArgumentException($"Cluster:Redis is not a valid Redis connection string: {e.Message}", e);
        }
        if (configuration.EndPoints.Count == 0)
            throw new ArgumentException("Cluster:Redis names no Redis endpoint; expected 'host:port[,password=...]'.");
        configuration.ConnectTimeout = RedisConnectTimeoutSeconds * 1000;
        configuration.AbortOnConnectFail = true;
        return redis =>
        {
            redis.ConfigurationOptions = configuration;
            redis.CreateMultiplexer = ConnectAsync;
        };
    }

    async Task<(IConnectionMultiplexer, bool)> ConnectAsync(RedisClusteringOptions redis)
    {
        var configuration = redis.ConfigurationOptions!;
        var where = Endpoints(configuration);
        try
        {
            return (await ConnectionMultiplexer.ConnectAsync(configuration).WaitAsync(TimeSpan.FromSeconds(RedisConnectTimeoutSeconds + 5)), false);
        }
        catch (Exception e) when (e is RedisConnectionException or TimeoutException)
        {
            throw new RedisUnreachableException(
                $"Redis membership: cannot connect to Redis at {where} within {RedisConnectTimeoutSeconds} s " +
                $"(Cluster:Redis, Cluster:RedisConnectTimeoutSeconds): {e.Message}", e);
        }
    }
}

/// <summary>Redis membership could not reach its Redis server.</summary>
public sealed class RedisUnreachableException(string message, Exception inner) : Exception(message, inner);
