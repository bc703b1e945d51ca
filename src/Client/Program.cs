using Orchestrator.Client.Commands;
using Spectre.Console;
using Spectre.Console.Cli;

// Piped output has no terminal width: Spectre's default of 80 columns would break log lines and --help mid-sentence.
if (Console.IsOutputRedirected) AnsiConsole.Profile.Width = 200;

// Before Spectre's own version option (listed in --help), which would print the bare version string.
if (args is ["--version"] or ["-v"])
{
    Console.WriteLine(Orchestrator.Grains.Hosting.VersionInfo.Describe("orchestrator"));
    return 0;
}

var app = new CommandApp();
app.Configure(config =>
{
    config.SetApplicationName("orchestrator");
    config.SetApplicationVersion(Orchestrator.Grains.Hosting.VersionInfo.BuildVersion);
    config.SetExceptionHandler((e, _) => CommandLineErrors.Report(e, args));
    config.UseStrictParsing();   // an unknown option (a typo: --setps) is an error, not an argument nobody reads
    config.AddCommand<TrainCommand>("train")
        .WithDescription("Train a job: on the cluster behind --gateway, or on a silo started in this process when no gateway is given. " +
                         "SIGINT (Ctrl+C), SIGTERM or SIGHUP stops it after the step in progress, saves a checkpoint when it has --checkpoint-dir, " +
                         "says how to --resume, and exits 130, 143 or 129 (128 + the signal); a second signal aborts at once. 0: the job finished.")
        .WithExample("train")
        .WithExample("train", "--steps", "2000", "--groups", "8", "--logdir", "runs/demo")
        .WithExample("train", "--spec", "job.json", "--gateway", "10.0.0.5:30000")
        .WithExample("train", "--redis", "10.0.0.2:6379,password=SECRET", "--steps", "1000")
        .WithExample("train", "--checkpoint-dir", "ckpt", "--name", "demo", "--resume", "--steps", "2000");
    config.AddCommand<StatusCommand>("status")
        .WithDescription("Show the cluster's devices and jobs.")
        .WithExample("status", "--gateway", "localhost:30000")
        .WithExample("status", "--redis", "10.0.0.2:6379,password=SECRET");
    config.AddCommand<StopCommand>("stop")
        .WithDescription("Stop a job of the cluster, whoever started it: checkpoint it (unless --discard) and release its devices.")
        .WithExample("stop", "demo", "--gateway", "localhost:30000");
    config.AddCommand<PredictCommand>("predict")
        .WithDescription("Run a checkpoint's model on the features of a .safetensors file and write its predictions to another.")
        .WithExample("predict", "--checkpoint", "ckpt/demo", "--data", "test.safetensors", "--output", "preds.safetensors")
        .WithExample("predict", "--checkpoint", "ckpt/demo", "--best", "--data", "test.safetensors", "--output", "preds.safetensors", "--device", "cuda:0");
    config.AddCommand<ExportCommand>("export")
        .WithDescription("Write a checkpoint's model (trunk and towers) as an ONNX file, for ONNX Runtime and other serving stacks.")
        .WithExample("export", "--checkpoint", "ckpt/demo", "--onnx", "demo.onnx")
        .WithExample("export", "--checkpoint", "ckpt/demo/step-000001000", "--onnx", "demo.onnx");
    config.AddCommand<BenchCommand>("bench")
        .WithDescription("Time the grouped kernels against the per-group loop and the device's measured ceilings.")
        .WithExample("bench", "--device", "cuda:0", "--dtype", "bf16");
    config.AddCommand<StepBenchCommand>("bench-step")
        .WithDescription("Time the full training step in process, on one silo, on two silos and on two silo processes sharing the device.")
        .WithExample("bench-step", "--device", "cuda:0")
        .WithExample("bench-step", "--memory-steps", "1000");
    config.AddCommand<ScalingBenchCommand>("bench-scaling")
        .WithDescription("Samples/s on one GPU and on several (one silo owning them), with the same groups (strong) and with more (weak).")
        .WithExample("bench-scaling", "--devices", "cuda:0,cuda:1");
    config.AddCommand<TransportBenchCommand>("bench-transport")
        .WithDescription("Orleans messages between silos and the TCP data channel, side by side on this machine's loopback.")
        .WithExample("bench-transport", "--sizes", "8,64");
    config.AddCommand<GpuCheckCommand>("gpu-check")
        .WithDescription("Check the kernels on a GPU against the float64 loop reference.")
        .WithExample("gpu-check", "--device", "cuda:0");
});
// train handles SIGINT and SIGTERM itself while it trains (StopSignals: it saves, then exits 130 or 143).
return await app.RunAsync(args);
