using System.ComponentModel;
using Orchestrator.Training.Inference;
using Spectre.Console;
using Spectre.Console.Cli;

namespace Orchestrator.Client.Commands;

/// <summary>The checkpoint `predict` and `export` read: a step directory, or a job directory's latest or best checkpoint.</summary>
public class CheckpointSettings : CommandSettings
{
    [CommandOption("--checkpoint <DIR>")]
    [Description("The checkpoint: a step directory (CHECKPOINT_DIR/JOB/step-000000123) or a job directory (CHECKPOINT_DIR/JOB), whose 'latest' checkpoint is taken (or 'best' with --best). Its files are checked against their SHA-256 in the manifest before use.")]
    public string Checkpoint { get; init; } = "";

    [CommandOption("--best")]
    [Description("With a job directory: take the checkpoint with the lowest validation loss (the 'best' pointer; jobs trained with --val-fraction or --val-data) instead of the latest.")]
    public bool Best { get; init; }

    public CheckpointPointer Pointer => Best ? CheckpointPointer.Best : CheckpointPointer.Latest;

    public override ValidationResult Validate() =>
        string.IsNullOrWhiteSpace(Checkpoint) ? ValidationResult.Error("--checkpoint <DIR> is required: a step directory or a job directory.")
            : ValidationResult.Success();
}
