using System.Net;
using System.Net.NetworkInformation;

namespace Orchestrator.Grains.Hosting;

/// <summary>This silo, bound from the "Silo" configuration section.</summary>
public sealed class SiloHostOptions
{
    public const string Section = "Silo";

    /// <summary>Unique in the cluster; worker keys name it. Default: "{machine}-{SiloPort}".</summary>
    public string? Name { get; set; }
    /// <summary>Devices this silo owns: "cpu" or "cuda:0,cuda:1".</summary>
    public string Devices { get; set; } = "cpu";
    public int SiloPort { get; set; } = 11111;
    public int GatewayPort { get; set; } = 30000;
    /// <summary>
    /// Redis membership: the address other silos and clients reach this silo at (an IP, or a host name resolved at
    /// start). Default: this host's first non-loopback IPv4 address. Localhost membership always uses loopback.
    /// The data channel is advertised at the same address.
    /// </summary>
    public string? AdvertisedIP { get; set; }
    /// <summary>Redis membership: listen on every interface (0.0.0.0) instead of the advertised address only (containers, NAT).</summary>
    public bool ListenOnAnyAddress { get; set; }
    /// <summary>Port of the TCP data channel (tensors between GPU silos); 0 (default) picks a free port at start.</summary>
    public int DataChannelPort { get; set; }
    /// <summary>Port of the Orleans dashboard (HTTP); 0 (default) leaves it off. It listens where the silo listens.</summary>
    public int DashboardPort { get; set; }
    /// <summary>Stop when the process with this id exits (0, the default: never): a client's local cluster must not outlive it.</summary>
    public int ParentProcessId { get; set; }

    /// <summary>Directories under which clients' data paths and checkpoint directories must lie (see <see cref="Hosting.PathRoots"/>); none: unconfined.</summary>
    public List<string> PathRoots { get; set; } = [];
    /// <summary>The most memory one job may take on each of this silo's devices, in MiB, below the device's free memory; 0: no limit.</summary>
    public long MaxJobMemoryMB { get; set; }

    public string SiloName => string.IsNullOrWhiteSpace(Name) ? $"{Environment.MachineName}-{SiloPort}" : Name;

    /// <summary>The advertised address: <see cref="AdvertisedIP"/> resolved, or else this host's first non-loopback IPv4 address.</summary>
    public IPAddress AdvertisedAddress()
    {
        if (string.IsNullOrWhiteSpace(AdvertisedIP))
            return NetworkInterface.GetAllNetworkInterfaces()
                .Where(n => n.OperationalStatus == OperationalStatus.Up && n.NetworkInterfaceType != NetworkInterfaceType.Loopback)
                .SelectMany(n => n.GetIPProperties().UnicastAddresses).Select(a => a.Address)
                .FirstOrDefault(a => a.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork && !IPAddress.IsLoopback(a))
                ?? throw new ArgumentException("Silo:AdvertisedIP is not set and this host has no non-loopback IPv4 address to advertise; set it.");
        if (IPAddress.TryParse(AdvertisedIP, out var ip)) return ip;
        try
        {
            return Dns.GetHostAddresses(AdvertisedIP).FirstOrDefault(a => a.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork)
                ?? throw new ArgumentException($"Silo:AdvertisedIP '{AdvertisedIP}' has no IPv4 address.");
        }
        catch (System.Net.Sockets.SocketException e)
        {
            throw new ArgumentException($"Silo:AdvertisedIP '{AdvertisedIP}' is neither an IP address nor a host name that resolves: {e.Message}", e);
        }
    }
}
