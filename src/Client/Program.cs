using Orchestrator.Client.Commands;
using Spectre.Console.Cli;

var app = new CommandApp();
app.Configure(config =>
{
    config.SetApplicationName("orchestrator");
    config.AddCommand<BenchCommand>("bench").WithDescription("Time the grouped kernels against the per-group loop and the device's measured ceilings.");
    config.AddCommand<GpuCheckCommand>("gpu-check").WithDescription("Check the kernels on a GPU against the float64 loop reference.");
});
return app.Run(args);
