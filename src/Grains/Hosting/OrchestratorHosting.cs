using System.Net;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Orchestrator.Grains.Execution;
using Orchestrator.Grains.Observability;
using Orchestrator.Grains.Placement;
using Orchestrator.Grains.Transport;
using Orchestrator.Training;
using Orleans.Configuration;
using Orleans.Runtime.MembershipService.SiloMetadata;
using Orleans.Serialization;

namespace Orchestrator.Grains.Hosting;

/// <summary>Silo and client setup shared by the silo host, the client's embedded silo and the tests.</summary>
public static class OrchestratorHosting
{
    /// <summary>Membership, name and ports from options, then <see cref="AddOrchestrator"/>.</summary>
    public static ISiloBuilder UseOrchestratorCluster(this ISiloBuilder silo, ClusterConnectionOptions cluster, SiloHostOptions host)
    {
        var advertised = IPAddress.Loopback;
        if (cluster.UsesRedis)
        {
            advertised = host.AdvertisedAddress();
            silo.UseRedisClustering(cluster.RedisSettings());
            silo.Configure<ClusterOptions>(o => (o.ClusterId, o.ServiceId) = (cluster.ClusterId, cluster.ServiceId));
            silo.ConfigureEndpoints(advertised, host.SiloPort, host.GatewayPort, host.ListenOnAnyAddress);
        }
        else
        {
            var primary = host.SiloPort == cluster.PrimarySiloPort ? null : new IPEndPoint(IPAddress.Loopback, cluster.PrimarySiloPort);
            silo.UseLocalhostClustering(host.SiloPort, host.GatewayPort, primary, cluster.ServiceId, cluster.ClusterId);
        }
        silo.Configure<SiloOptions>(o => o.SiloName = host.SiloName);
        silo.Services.AddSingleton(new PathRoots(host.PathRoots));
        silo.Services.AddSingleton(new JobMemoryLimit(host.MaxJobMemoryMB));
        if (cluster.Tls.SiloSettings() is { } tls) silo.UseTls(tls);   // inbound from silos and clients, outbound to silos
        // The data channel listens where the silo does and is advertised at the silo's address.
        var channel = new IPEndPoint(cluster.UsesRedis && host.ListenOnAnyAddress ? IPAddress.Any : advertised, host.DataChannelPort);
        return silo.AddOrchestrator(ClusterDevices.Parse(host.Devices), cluster.MaxMessageBytes, cluster.ResponseTimeout, ClusterSecret.For(cluster), channel,
            advertised);
    }

    /// <summary>
    /// What every silo of the cluster needs: its devices in the silo metadata, the device placement director,
    /// per-device executors, tensor transports, serializers for the training types and the message limits.
    /// </summary>
    /// <param name="channelSecret">The cluster secret the data channel authenticates with (<see cref="ClusterSecret.For"/>).</param>
    /// <param name="channelListen">Where the data channel listens; default loopback, a free port.</param>
    /// <param name="channelAdvertised">The address other silos send tensors to; default the listen address.</param>
    public static ISiloBuilder AddOrchestrator(this ISiloBuilder silo, IReadOnlyList<string> devices, int maxMessageBytes, TimeSpan responseTimeout,
        byte[] channelSecret, IPEndPoint? channelListen = null, IPAddress? channelAdvertised = null)
    {
        CheckDevices(devices);
        // The data channel listens from here on, so its endpoint can be advertised with the devices.
        channelListen ??= new IPEndPoint(IPAddress.Loopback, 0);
        var advertisedChannel = ChannelEndpoint.Register(silo.Services, channelListen, channelAdvertised, responseTimeout, channelSecret);
        silo.UseSiloMetadata(new Dictionary<string, string>
        {
            [ClusterDevices.MetadataKey] = string.Join(",", devices),
            [ChannelEndpoint.MetadataKey] = advertisedChannel,
            [SiloLocality.HostKey] = SiloLocality.Host,
            [SiloLocality.ProcessKey] = SiloLocality.Process,
        });
        silo.AddPlacementDirector<DevicePlacementStrategy, DevicePlacementDirector>();
        silo.Services.TryAddSingleton(PathRoots.Unconfined);
        silo.Services.TryAddSingleton(JobMemoryLimit.None);
        silo.Services.AddSingleton<DeviceExecutors>();
        silo.Services.AddSingleton<TensorTransports>();
        silo.AddIncomingGrainCallFilter<GrainLogContextFilter>();   // Job, Worker and Step on every grain log event
        silo.Services.AddSerializer(serializer => serializer.AddTrainingTypes());
        silo.Configure<SiloMessagingOptions>(o =>
        {
            o.MaxMessageBodySize = maxMessageBytes;
            o.ResponseTimeout = responseTimeout;
        });
        return silo;
    }

    /// <summary>
    /// Redis membership: gateways from Redis; otherwise static gateways from options (default: this machine's 30000).
    /// Then <see cref="AddOrchestratorClient"/>.
    /// </summary>
    public static IClientBuilder UseOrchestratorCluster(this IClientBuilder client, ClusterConnectionOptions cluster)
    {
        if (cluster.UsesRedis)
        {
            client.UseRedisClustering(cluster.RedisSettings());
            LastKnownGateways.Wrap(client.Services);
            client.Configure<GatewayOptions>(o => o.GatewayListRefreshPeriod = TimeSpan.FromSeconds(cluster.GatewayRefreshSeconds));
        }
        else
            client.UseStaticClustering((cluster.Gateways.Count == 0 ? ["localhost:30000"] : cluster.Gateways).Select(ParseEndpoint).ToArray());
        client.Configure<ClusterOptions>(o => (o.ClusterId, o.ServiceId) = (cluster.ClusterId, cluster.ServiceId));
        if (cluster.Tls.ClientSettings() is { } tls) client.UseTls(tls);
        return client.AddOrchestratorClient(cluster.MaxMessageBytes, cluster.ResponseTimeout);
    }

    public static IClientBuilder AddOrchestratorClient(this IClientBuilder client, int maxMessageBytes, TimeSpan responseTimeout)
    {
        client.Services.AddSerializer(serializer => serializer.AddTrainingTypes());
        client.Configure<ClientMessagingOptions>(o =>
        {
            o.MaxMessageBodySize = maxMessageBytes;
            o.ResponseTimeout = responseTimeout;
        });
        return client;
    }

    /// <summary>
    /// JobSpec, StepMetrics and the other records of the Orleans-free training library go as JSON. Its exceptions
    /// are left to Orleans' exception codec, which keeps their type name and message.
    /// </summary>
    public static ISerializerBuilder AddTrainingTypes(this ISerializerBuilder serializer) =>
        serializer.AddJsonSerializer(
            isSupported: type => type.Assembly == typeof(JobSpec).Assembly && !type.IsAssignableTo(typeof(Exception)),
            new JsonSerializerOptions { NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals });   // a NaN loss must still arrive

    /// <summary>"host:port" -> endpoint; "localhost" resolves to loopback.</summary>
    public static IPEndPoint ParseEndpoint(string text)
    {
        int colon = text.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(text.AsSpan(colon + 1), out int port) || port is <= 0 or > 65535)
            throw new ArgumentException($"gateway '{text}' is not host:port.");
        var host = text[..colon];
        var address = host == "localhost" ? IPAddress.Loopback
            : IPAddress.TryParse(host, out var ip) ? ip
            : Dns.GetHostAddresses(host).FirstOrDefault() ?? throw new ArgumentException($"gateway host '{host}' does not resolve.");
        return new IPEndPoint(address, port);
    }

    static void CheckDevices(IReadOnlyList<string> devices)
    {
        if (devices.Count == 0) throw new ArgumentException("a silo must own at least one device ('cpu' or 'cuda:N').");
        foreach (var device in devices)
        {
            if (!Kernels.Devices.IsName(device))
                throw new ArgumentException($"device '{device}' is not 'cpu' or 'cuda:N'.");
            if (Kernels.Devices.IsGpuName(device) && int.Parse(device[5..]) >= TorchSharp.torch.cuda.device_count())
                throw new ArgumentException($"device '{device}' does not exist here: this host has {TorchSharp.torch.cuda.device_count()} CUDA devices.");
        }
    }
}
