using System.Text.Json.Serialization;
using static TorchSharp.torch;

namespace Orchestrator.Training;

/// <summary>
/// What a tower shard's parameters are made of, and all a worker needs of its job's spec to build one: the shape, the
/// seed (group g's initial weights depend on (Seed, g) alone), the dtype and AdamW's settings.
/// </summary>
public sealed record TowerSpec(ModelShape Shape, long Seed, [property: JsonConverter(typeof(DTypeJsonConverter))] ScalarType DType, OptimizerSpec Optimizer);
