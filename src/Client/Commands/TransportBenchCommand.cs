using System.ComponentModel;
using Orchestrator.Benchmarks;
using Orchestrator.DataChannel;
using Spectre.Console.Cli;

namespace Orchestrator.Client.Commands;

/// <summary>`orchestrator bench-transport`: Orleans messages and the TCP data channel side by side.</summary>
public sealed class TransportBenchCommand : AsyncCommand<TransportBenchCommand.Settings>
{
    public sealed class Settings : CommandSettings
    {
        [CommandOption("--sizes <MIB>"), DefaultValue("1,8,32,64")]
        [Description("Comma-separated payload sizes in MiB.")]
        public string Sizes { get; init; } = "1,8,32,64";

        [CommandOption("--reps <COUNT>"), DefaultValue(10), TypeConverter(typeof(WholeNumberConverter))]
        [Description("Transfers timed per size.")]
        public int Repetitions { get; init; } = 10;

        [CommandOption("--warmup|--warm-ups <COUNT>"), DefaultValue(DataChannelBenchmark.DefaultWarmUps), TypeConverter(typeof(WholeNumberConverter))]
        [Description("Untimed transfers per size before the timed ones, for each transport (--warm-ups: the older spelling).")]
        public int WarmUps { get; init; } = DataChannelBenchmark.DefaultWarmUps;

        [CommandOption("--connections <COUNT>"), DefaultValue(DataChannelOptions.DefaultConnections), TypeConverter(typeof(WholeNumberConverter))]
        [Description("Connections the data channel stripes large transfers over (DataChannelOptions.Connections); 1 sends every transfer whole.")]
        public int Connections { get; init; } = DataChannelOptions.DefaultConnections;

        [CommandOption("--chunk-kib <KIB>"), DefaultValue(DataChannelOptions.DefaultChunkBytes >> 10), TypeConverter(typeof(WholeNumberConverter))]
        [Description("Bytes per checksummed chunk, in KiB (DataChannelOptions.ChunkBytes); a transfer is striped over at most one connection per chunk.")]
        public int ChunkKiB { get; init; } = DataChannelOptions.DefaultChunkBytes >> 10;

        public DataChannelOptions Channel => DataChannelOptions.Default with { Connections = Connections, ChunkBytes = ChunkKiB << 10 };

        public override Spectre.Console.ValidationResult Validate()
        {
            if (Repetitions < 1 || WarmUps < 0 || !Sizes.Split(',').All(s => int.TryParse(s, out int mib) && mib is > 0 and <= 1024))
                return Spectre.Console.ValidationResult.Error("--sizes takes MiB values from 1 to 1024, --reps at least 1, --warmup at least 0");
            try
            {
                Channel.Validate();
                return Spectre.Console.ValidationResult.Success();
            }
            catch (ArgumentException e)
            {
                return Spectre.Console.ValidationResult.Error($"--connections or --chunk-kib: {e.Message}");
            }
        }
    }

    public override async Task<int> ExecuteAsync(CommandContext context, Settings s, CancellationToken cancellation)
    {
        var sizes = s.Sizes.Split(',').Select(v => long.Parse(v) << 20).ToList();
        var rows = await TransportBenchmark.RunAsync(sizes, s.Repetitions, s.WarmUps, s.Channel, p => Console.Error.WriteLine($"timing {p}"));
        Console.WriteLine(TransportBenchmark.ToMarkdown(rows, s.Repetitions, s.WarmUps, s.Connections));
        return 0;
    }
}
