using Orchestrator.Kernels;
using ScalarType = TorchSharp.torch.ScalarType;

namespace Orchestrator.Training;

/// <summary>
/// A DType field in JSON (the job's and the manifest's): every name users type is read (bf16, fp32, double, ...
/// case-insensitive), the canonical lower-case name is written (bfloat16, float32, ...), so files keep their text and
/// older ones, written with an alias, still read.
/// </summary>
public sealed class DTypeJsonConverter() : NamedChoiceJsonConverter<ScalarType>(nameof(JobSpec.DType), "dtype", DTypeNames.Accepted)
{
    protected override bool TryParse(string? name, out ScalarType value) => DTypeNames.TryParse(name, out value);

    protected override string Name(ScalarType value) => DTypeNames.Name(value);
}
