using System.Text;
using Orchestrator.Grains.Hosting;

namespace Orchestrator.Grains.Tests;

/// <summary>Cluster:Secret becomes the data channel's secret: required in production, a development key on localhost.</summary>
public sealed class ClusterSecretTests
{
    [Fact]
    public void Redis_membership_without_a_secret_is_an_error_that_says_how_to_make_one()
    {
        var error = Assert.Throws<ArgumentException>(() => ClusterSecret.For(new ClusterConnectionOptions { Membership = "redis", Redis = "127.0.0.1:6379" }));
        Assert.Contains("no Cluster:Secret is set", error.Message);
        Assert.Contains("openssl rand -hex 32", error.Message);
        Assert.Contains("Cluster__Secret", error.Message);
    }

    [Theory]
    [InlineData("redis")]
    [InlineData("localhost")]
    public void A_secret_shorter_than_16_bytes_is_an_error(string membership)
    {
        var options = new ClusterConnectionOptions { Membership = membership, Redis = "127.0.0.1:6379", Secret = "fifteen-chars.." };
        var error = Assert.Throws<ArgumentException>(() => ClusterSecret.For(options));
        Assert.Contains("Cluster:Secret is 15 bytes long; it needs at least 16", error.Message);
    }

    [Fact]
    public void A_configured_secret_is_used_as_its_bytes()
    {
        var secret = "0123456789abcdef0123456789abcdef";
        Assert.Equal(Encoding.UTF8.GetBytes(secret), ClusterSecret.For(new ClusterConnectionOptions { Membership = "redis", Secret = secret }));
    }

    [Fact]
    public void Localhost_membership_without_a_secret_derives_the_development_key_from_the_cluster_names()
    {
        var key = ClusterSecret.For(new ClusterConnectionOptions { ServiceId = "service", ClusterId = "a" });
        Assert.Equal(32, key.Length);
        Assert.Equal(key, ClusterSecret.For(new ClusterConnectionOptions { ServiceId = "service", ClusterId = "a" }));
        Assert.NotEqual(key, ClusterSecret.For(new ClusterConnectionOptions { ServiceId = "service", ClusterId = "b" }));
    }
}
