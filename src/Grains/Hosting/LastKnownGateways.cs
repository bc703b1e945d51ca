using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Orleans.Messaging;

namespace Orchestrator.Grains.Hosting;

/// <summary>
/// A client's gateway list that survives the loss of the membership table. Redis without persistence forgets the
/// table when it restarts; Orleans' Redis provider then fails ("the membership table version is missing") or lists no
/// gateway, and the client, told there is none, drops the gateways it is connected to and dies with "No gateways
/// available" although every silo still runs. This wrapper answers with the last list that named any gateway
/// whenever the provider it wraps fails or comes back empty, so the client keeps using the silos it knows (those that
/// really died are dropped by the client's own connection checks) until the table is back.
/// </summary>
internal sealed class LastKnownGateways(IGatewayListProvider inner, ILogger<LastKnownGateways> log) : IGatewayListProvider
{
    /// <summary>Wraps the gateway list provider registered last in <paramref name="services"/> (the clustering's).</summary>
    public static void Wrap(IServiceCollection services)
    {
        var registered = services.Last(d => d.ServiceType == typeof(IGatewayListProvider));
        services.Remove(registered);
        services.AddSingleton<IGatewayListProvider>(provider => new LastKnownGateways(
            registered.ImplementationInstance as IGatewayListProvider
            ?? registered.ImplementationFactory?.Invoke(provider) as IGatewayListProvider
            ?? (IGatewayListProvider)ActivatorUtilities.CreateInstance(provider, registered.ImplementationType!),
            provider.GetRequiredService<ILogger<LastKnownGateways>>()));
    }

    IList<Uri> lastKnown = [];
    bool degraded;

    public TimeSpan MaxStaleness => inner.MaxStaleness;
    [Obsolete("Orleans no longer reads it: every provider is considered updatable.")]
    public bool IsUpdatable => true;

    public Task InitializeGatewayListProvider() => inner.InitializeGatewayListProvider();

    public Task InitializeGatewayListProviderAsync(CancellationToken cancellationToken) => inner.InitializeGatewayListProviderAsync(cancellationToken);

    public Task<IList<Uri>> GetGateways() => GetGatewaysAsync(CancellationToken.None);

    public async Task<IList<Uri>> GetGatewaysAsync(CancellationToken cancellationToken)
    {
        IList<Uri> listed;
        try
        {
            listed = await inner.GetGatewaysAsync(cancellationToken);
        }
        catch (Exception e) when (lastKnown.Count > 0 && !cancellationToken.IsCancellationRequested)
        {
            return KeepLastKnown(e.Message);
        }
        if (listed.Count == 0 && lastKnown.Count > 0) return KeepLastKnown("it lists no gateway");
        if (degraded) log.LogInformation("The cluster's gateway list is readable again: {Count} gateways", listed.Count);
        (lastKnown, degraded) = (listed, false);
        return listed;
    }

    IList<Uri> KeepLastKnown(string why)
    {
        if (!degraded)
            log.LogWarning("The cluster's gateway list cannot be read ({Problem}); keeping the {Count} gateways known before", why, lastKnown.Count);
        degraded = true;
        return lastKnown;
    }
}
