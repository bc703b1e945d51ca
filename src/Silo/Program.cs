using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;
using Orchestrator.Grains.Hosting;
using Orchestrator.Silo;
using Orleans.Dashboard;

// An Orleans silo that owns some devices of this machine. Settings come from appsettings.json, then environment
// variables (Silo__Devices=cuda:0,cuda:1), then the command line (--devices cuda:0,cuda:1). docs/deploy.md has them all.
if (SiloCommandLine.AsksForHelp(args))
{
    Console.WriteLine(SiloCommandLine.Help);
    return 0;
}
if (args is ["--version"])
{
    Console.WriteLine(VersionInfo.Describe("orchestrator silo"));
    return 0;
}

try
{
    // Checked before anything starts: an option the silo does not know is a typo, never silently a default.
    var commandLine = SiloCommandLine.Parse(args);
    var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { ContentRootPath = AppContext.BaseDirectory });
    builder.Configuration.AddInMemoryCollection(commandLine);
    var cluster = builder.Configuration.GetSection(ClusterConnectionOptions.Section).Get<ClusterConnectionOptions>() ?? new();
    var silo = builder.Configuration.GetSection(SiloHostOptions.Section).Get<SiloHostOptions>() ?? new();
    if (silo.DashboardPort > 0)
    {
        // The dashboard is a web app: the same silo, hosted by ASP.NET Core on Silo:DashboardPort.
        var web = WebApplication.CreateBuilder(new WebApplicationOptions { ContentRootPath = AppContext.BaseDirectory });
        web.Configuration.AddInMemoryCollection(commandLine);
        web.WebHost.UseUrls($"http://{DashboardAddress(cluster, silo)}:{silo.DashboardPort}");
        web.AddSiloLogging(silo);
        web.AddParentProcessWatch(silo);
        web.UseOrleans(orleans => orleans.UseOrchestratorCluster(cluster, silo).AddDashboard().AddReadyLine(cluster, silo));
        var app = web.Build();
        app.MapOrleansDashboard();
        await app.RunAsync();
    }
    else
    {
        builder.AddSiloLogging(silo);
        builder.AddParentProcessWatch(silo);
        builder.UseOrleans(orleans => orleans.UseOrchestratorCluster(cluster, silo).AddReadyLine(cluster, silo));
        await builder.Build().RunAsync();
    }
    return 0;
}
catch (Exception e) when (e is ArgumentException or RedisUnreachableException || e.InnerException is RedisUnreachableException)
{
    Console.Error.WriteLine($"orchestrator silo: {(e as RedisUnreachableException ?? e.InnerException as RedisUnreachableException ?? e).Message}");
    return 2;
}
catch (Exception e) when (SiloConfigurationErrors.Describe(e) is { } error)
{
    Console.Error.WriteLine($"orchestrator silo: {error}");
    return 2;
}

// The dashboard listens where the silo does: loopback for localhost membership, else the advertised IP or every interface.
static string DashboardAddress(ClusterConnectionOptions cluster, SiloHostOptions silo) =>
    !cluster.UsesRedis ? "127.0.0.1" : silo.ListenOnAnyAddress ? "0.0.0.0" : silo.AdvertisedAddress().ToString();
