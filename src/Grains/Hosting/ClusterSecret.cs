using System.Security.Cryptography;
using System.Text;
using Orchestrator.DataChannel;

namespace Orchestrator.Grains.Hosting;

/// <summary>The bytes of the data channel's secret (<see cref="DataChannelOptions.Secret"/>) from Cluster:Secret.</summary>
public static class ClusterSecret
{
    /// <summary>
    /// The UTF-8 bytes of <see cref="ClusterConnectionOptions.Secret"/>, at least <see cref="DataChannelOptions.MinSecretBytes"/>;
    /// without one, an error for redis membership (production) and the development key for localhost membership.
    /// Throws an <see cref="ArgumentException"/> naming Cluster:Secret and how to make one.
    /// </summary>
    public static byte[] For(ClusterConnectionOptions cluster)
    {
        if (string.IsNullOrWhiteSpace(cluster.Secret))
            return cluster.UsesRedis
                ? throw new ArgumentException("Cluster:Membership is 'redis' but no Cluster:Secret is set: the silos' data channels authenticate each other " +
                    "with it. Make one with `openssl rand -hex 32` and give every silo of the cluster the same one by environment (Cluster__Secret).")
                : DevelopmentKey(cluster);
        var bytes = Encoding.UTF8.GetBytes(cluster.Secret);
        if (bytes.Length < DataChannelOptions.MinSecretBytes)
            throw new ArgumentException($"Cluster:Secret is {bytes.Length} bytes long; it needs at least {DataChannelOptions.MinSecretBytes}. " +
                "Make one with `openssl rand -hex 32`.");
        return bytes;
    }

    /// <summary>Derived from names anyone can read, so it protects nothing: it only lets a loopback development cluster start without setup.</summary>
    static byte[] DevelopmentKey(ClusterConnectionOptions cluster) =>
        SHA256.HashData(Encoding.UTF8.GetBytes($"orchestrator development channel key\n{cluster.ServiceId}\n{cluster.ClusterId}"));
}
