using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;
using Orchestrator.Grains.Hosting;
using Serilog;

// An Orleans silo that owns some devices of this machine. Settings come from appsettings.json, then environment
// variables (Silo__Devices=cuda:0,cuda:1), then the command line (--devices cuda:0,cuda:1).
if (args.Contains("--help") || args.Contains("-h"))
{
    Console.WriteLine("""
        orchestrator silo: hosts worker grains for the devices it owns and joins a cluster.

          --devices LIST        devices this silo owns: cpu, or cuda:0,cuda:1 (Silo:Devices, default cpu)
          --name NAME           silo name, unique in the cluster (Silo:Name, default MACHINE-SILOPORT)
          --silo-port PORT      silo-to-silo port (Silo:SiloPort, default 11111)
          --gateway-port PORT   port clients connect to (Silo:GatewayPort, default 30000)
          --primary-port PORT   localhost membership: silo port of the primary silo (Cluster:PrimarySiloPort, default 11111)
          --membership KIND     cluster membership: localhost (Cluster:Membership)
          --cluster-id ID       (Cluster:ClusterId, default orchestrator)
          --service-id ID       (Cluster:ServiceId, default orchestrator)
          --max-message-mb MB   largest Orleans message; tensors sent through messages must fit (Cluster:MaxMessageMB, default 100)
        """);
    return;
}

var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { Args = args, ContentRootPath = AppContext.BaseDirectory });
builder.Configuration.AddCommandLine(args, new Dictionary<string, string>
{
    ["--devices"] = "Silo:Devices",
    ["--name"] = "Silo:Name",
    ["--silo-port"] = "Silo:SiloPort",
    ["--gateway-port"] = "Silo:GatewayPort",
    ["--primary-port"] = "Cluster:PrimarySiloPort",
    ["--membership"] = "Cluster:Membership",
    ["--cluster-id"] = "Cluster:ClusterId",
    ["--service-id"] = "Cluster:ServiceId",
    ["--max-message-mb"] = "Cluster:MaxMessageMB",
});
builder.Services.AddSerilog(logger => logger
    .ReadFrom.Configuration(builder.Configuration)
    .Enrich.FromLogContext()
    .WriteTo.Console(outputTemplate: "[{Timestamp:HH:mm:ss} {Level:u3}] {Message:lj} {Properties:j}{NewLine}{Exception}"));

var cluster = builder.Configuration.GetSection(ClusterConnectionOptions.Section).Get<ClusterConnectionOptions>() ?? new();
var silo = builder.Configuration.GetSection(SiloHostOptions.Section).Get<SiloHostOptions>() ?? new();
builder.UseOrleans(orleans => orleans.UseOrchestratorCluster(cluster, silo));
await builder.Build().RunAsync();
