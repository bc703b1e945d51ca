using System.Net;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.Extensions.DependencyInjection;
using Orchestrator.Grains.Execution;
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
        switch (cluster.Membership)
        {
            case "localhost":
                var primary = host.SiloPort == cluster.PrimarySiloPort ? null : new IPEndPoint(IPAddress.Loopback, cluster.PrimarySiloPort);
                silo.UseLocalhostClustering(host.SiloPort, host.GatewayPort, primary, cluster.ServiceId, cluster.ClusterId);
                break;
            default:
                throw new ArgumentException($"Cluster:Membership '{cluster.Membership}' is not supported; use 'localhost'.");
        }
        silo.Configure<SiloOptions>(o => o.SiloName = host.SiloName);
        return silo.AddOrchestrator(ClusterDevices.Parse(host.Devices), cluster.MaxMessageBytes, cluster.ResponseTimeout);
    }

    /// <summary>
    /// What every silo of the cluster needs: its devices in the silo metadata, the device placement director,
    /// per-device executors, tensor transports, serializers for the training types and the message limits.
    /// </summary>
    public static ISiloBuilder AddOrchestrator(this ISiloBuilder silo, IReadOnlyList<string> devices, int maxMessageBytes, TimeSpan responseTimeout)
    {
        CheckDevices(devices);
        // The data channel listens from here on, so its endpoint can be advertised with the devices.
        var channel = new ChannelEndpoint(IPAddress.Loopback, 0, responseTimeout);
        silo.Services.AddSingleton(channel);
        silo.Services.AddHostedService(_ => channel);
        silo.UseSiloMetadata(new Dictionary<string, string>
        {
            [ClusterDevices.MetadataKey] = string.Join(",", devices),
            [ChannelEndpoint.MetadataKey] = channel.Advertised,
        });
        silo.AddPlacementDirector<DevicePlacementStrategy, DevicePlacementDirector>();
        silo.Services.AddSingleton<DeviceExecutors>();
        silo.Services.AddSingleton<TensorTransports>();
        silo.Services.AddSerializer(serializer => serializer.AddTrainingTypes());
        silo.Configure<SiloMessagingOptions>(o =>
        {
            o.MaxMessageBodySize = maxMessageBytes;
            o.ResponseTimeout = responseTimeout;
        });
        return silo;
    }

    /// <summary>Static gateways from options (default: this machine's 30000), then <see cref="AddOrchestratorClient"/>.</summary>
    public static IClientBuilder UseOrchestratorCluster(this IClientBuilder client, ClusterConnectionOptions cluster)
    {
        var gateways = (cluster.Gateways.Count == 0 ? ["localhost:30000"] : cluster.Gateways).Select(ParseEndpoint).ToArray();
        client.UseStaticClustering(gateways);
        client.Configure<ClusterOptions>(o => (o.ClusterId, o.ServiceId) = (cluster.ClusterId, cluster.ServiceId));
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
            if (device.StartsWith("cuda:", StringComparison.Ordinal) && int.Parse(device[5..]) >= TorchSharp.torch.cuda.device_count())
                throw new ArgumentException($"device '{device}' does not exist here: this host has {TorchSharp.torch.cuda.device_count()} CUDA devices.");
        }
    }
}
