using Orchestrator.Client.Commands;
using Spectre.Console.Cli;

var app = new CommandApp();
app.Configure(config =>
{
    config.SetApplicationName("orchestrator");
    config.AddCommand<TrainCommand>("train")
        .WithDescription("Train a job: on the cluster behind --gateway, or on a silo started in this process when no gateway is given.")
        .WithExample("train")
        .WithExample("train", "--steps", "2000", "--groups", "8", "--logdir", "runs/demo")
        .WithExample("train", "--spec", "job.json", "--gateway", "10.0.0.5:30000");
    config.AddCommand<StatusCommand>("status")
        .WithDescription("Show the cluster's devices and jobs.")
        .WithExample("status", "--gateway", "localhost:30000");
    // Room for the benchmark and GPU self-check commands ("bench", "gpu-check"), which another change adds here.
});
// Ctrl+C stops training after the current step; the summary is still printed and the job released.
using var cancel = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    cancel.Cancel();
};
return await app.RunAsync(args, cancel.Token);
