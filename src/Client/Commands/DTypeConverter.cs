using Orchestrator.Kernels;
using static TorchSharp.torch;

namespace Orchestrator.Client.Commands;

/// <summary>Reads a dtype option's value (bfloat16, bf16, float32, ...: <see cref="DTypeNames"/>) into its ScalarType.</summary>
public sealed class DTypeConverter : OptionNameConverter<ScalarType>
{
    protected override ScalarType Parse(string text) => Read(text);

    /// <summary>The dtype <paramref name="text"/> names; a refused one is told the names accepted.</summary>
    public static ScalarType Read(string text) =>
        DTypeNames.TryParse(text, out var dtype) ? dtype : throw new FormatException(DTypeNames.Refusal(text));
}
