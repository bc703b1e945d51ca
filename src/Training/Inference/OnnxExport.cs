using Google.Protobuf;
using Onnx;
using static TorchSharp.torch;

namespace Orchestrator.Training.Inference;

/// <summary>
/// The trained model as an ONNX graph (opset <see cref="Opset"/>, which ONNX Runtime 1.32 runs), its weights float32
/// initializers. Input "features" (batch, D_feat) float32; output "predictions" (batch, N, D_out), the raw outputs
/// (logits for bce jobs), and for bce jobs "probabilities" = Sigmoid(predictions). The graph is the model's math:
///   pre    = Gemm(features, trunk.weight, trunk.bias)        (batch, N*D_in)
///   x      = Reshape(pre * Sigmoid(pre), [0, N, D_in])        (batch, N, D_in)     silu
///   xg     = Transpose(x, [1, 0, 2])                          (N, batch, D_in)
///   gateUp = MatMul(xg, towers.w_gate_up)                     (N, batch, 2H)       one batched GEMM over the groups
///   hidden = silu(gateUp[..., :H]) * gateUp[..., H:]          (N, batch, H)        Slice, Sigmoid, Mul
///   y      = MatMul(hidden, towers.w_down)                    (N, batch, D_out)
///   predictions = Transpose(y, [1, 0, 2])                     (batch, N, D_out)
/// The job, step, shape and loss are in the model's metadata_props.
/// </summary>
public static class OnnxExport
{
    public const int Opset = 17;
    /// <summary>ONNX IR version 8 goes with opset 17.</summary>
    const long IrVersion = 8;
    public const string InputName = "features";
    public const string OutputName = PredictionFile.PredictionsName;
    public const string ProbabilitiesName = PredictionFile.ProbabilitiesName;
    /// <summary>A protobuf message, so an ONNX file without external data, holds at most 2 GiB.</summary>
    const long MaxBytes = int.MaxValue;

    /// <summary>Writes the ONNX file of <paramref name="model"/> to <paramref name="path"/> (checked writable first, replaced atomically).</summary>
    public static void Write(TrainedModel model, string path)
    {
        string output = OutputFile.CheckWritable(path, "--onnx");
        var onnx = Build(model);
        OutputFile.Write(output, onnx.WriteTo);
    }

    /// <summary>The ONNX model of <paramref name="model"/>, loaded in float32: its weights are the checkpoint's float32 masters.</summary>
    public static ModelProto Build(TrainedModel model)
    {
        if (model.DType != ScalarType.Float32)
            throw new ArgumentException($"the model runs in {Kernels.DTypeNames.Name(model.DType)}; ONNX export takes it loaded in float32 (its float32 master weights).", nameof(model));
        var shape = model.Job.Shape;
        long weights = (long)shape.Features * shape.Groups * shape.Input + (long)shape.Groups * shape.Input
                       + (long)shape.Groups * shape.Input * 2 * shape.Hidden + (long)shape.Groups * shape.Hidden * shape.Output;
        if (weights * sizeof(float) >= MaxBytes)
            throw new InvalidOperationException($"job '{model.Job.Name}' has {weights} weights, {weights * sizeof(float) >> 20} MiB in float32: " +
                                                "more than one ONNX file without external data holds (2 GiB).");
        var graph = new GraphProto { Name = model.Job.Name, DocString = "trunk (silu(features @ W + b)) and N grouped SwiGLU towers" };
        graph.Input.Add(Value(InputName, "batch", shape.Features));
        graph.Initializer.Add(Initializer(ParameterNames.TrunkWeight, model.Trunk.Weight));      // (D_feat, N*D_in)
        graph.Initializer.Add(Initializer(ParameterNames.TrunkBias, model.Trunk.Bias));          // (N*D_in)
        graph.Initializer.Add(Initializer(ParameterNames.TowerGateUp, model.Towers.WGateUp));    // (N, D_in, 2H)
        graph.Initializer.Add(Initializer(ParameterNames.TowerDown, model.Towers.WDown));        // (N, H, D_out)
        graph.Initializer.Add(Int64s("trunk.shape", 0, shape.Groups, shape.Input));
        graph.Initializer.Add(Int64s("hidden.first", 0));
        graph.Initializer.Add(Int64s("hidden.size", shape.Hidden));
        graph.Initializer.Add(Int64s("hidden.end", 2L * shape.Hidden));
        graph.Initializer.Add(Int64s("hidden.axis", 2));

        graph.Node.Add(Node("Gemm", ["features", ParameterNames.TrunkWeight, ParameterNames.TrunkBias], "trunk.pre"));
        Silu(graph, "trunk.pre", "trunk.act");
        graph.Node.Add(Node("Reshape", ["trunk.act", "trunk.shape"], "x"));
        graph.Node.Add(Node("Transpose", ["x"], "x.by_group", Perm()));
        graph.Node.Add(Node("MatMul", ["x.by_group", ParameterNames.TowerGateUp], "gate_up"));
        graph.Node.Add(Node("Slice", ["gate_up", "hidden.first", "hidden.size", "hidden.axis"], "gate"));
        graph.Node.Add(Node("Slice", ["gate_up", "hidden.size", "hidden.end", "hidden.axis"], "up"));
        Silu(graph, "gate", "gate.act");
        graph.Node.Add(Node("Mul", ["gate.act", "up"], "hidden"));
        graph.Node.Add(Node("MatMul", ["hidden", ParameterNames.TowerDown], "y.by_group"));
        graph.Node.Add(Node("Transpose", ["y.by_group"], OutputName, Perm()));
        graph.Output.Add(Value(OutputName, "batch", shape.Groups, shape.Output));
        if (model.Job.Loss.Kind == LossKind.Bce)
        {
            graph.Node.Add(Node("Sigmoid", [OutputName], ProbabilitiesName));
            graph.Output.Add(Value(ProbabilitiesName, "batch", shape.Groups, shape.Output));
        }

        var onnx = new ModelProto
        {
            IrVersion = IrVersion,
            ProducerName = "orchestrator",
            ModelVersion = model.Step,
            DocString = $"job '{model.Job.Name}' after {model.Step} steps",
            Graph = graph,
        };
        onnx.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = Opset });
        foreach (var (key, value) in model.Metadata())
            onnx.MetadataProps.Add(new StringStringEntryProto { Key = key, Value = value });
        return onnx;
    }

    /// <summary>silu(input) = input * Sigmoid(input), as two nodes.</summary>
    static void Silu(GraphProto graph, string input, string output)
    {
        graph.Node.Add(Node("Sigmoid", [input], $"{input}.sigmoid"));
        graph.Node.Add(Node("Mul", [input, $"{input}.sigmoid"], output));
    }

    static NodeProto Node(string op, string[] inputs, string output, AttributeProto? attribute = null)
    {
        var node = new NodeProto { OpType = op, Name = output };
        node.Input.AddRange(inputs);
        node.Output.Add(output);
        if (attribute is not null) node.Attribute.Add(attribute);
        return node;
    }

    /// <summary>perm = [1, 0, 2]: (batch, N, D) and (N, batch, D) into each other.</summary>
    static AttributeProto Perm()
    {
        var perm = new AttributeProto { Name = "perm", Type = AttributeProto.Types.AttributeType.Ints };
        perm.Ints.AddRange([1L, 0L, 2L]);
        return perm;
    }

    /// <summary>A float32 tensor of the weights' values (on any device), little-endian raw data.</summary>
    static TensorProto Initializer(string name, Tensor weights)
    {
        using var data = weights.detach().cpu().contiguous();
        var tensor = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Float, RawData = ByteString.CopyFrom(data.bytes) };
        tensor.Dims.AddRange(data.shape);
        return tensor;
    }

    static TensorProto Int64s(string name, params long[] values)
    {
        var tensor = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Int64 };
        tensor.Dims.Add(values.Length);
        tensor.Int64Data.AddRange(values);
        return tensor;
    }

    /// <summary>A float32 tensor of shape (<paramref name="batch"/>, <paramref name="dims"/>...), the batch named (dynamic).</summary>
    static ValueInfoProto Value(string name, string batch, params long[] dims)
    {
        var shape = new TensorShapeProto();
        shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimParam = batch });
        foreach (long d in dims) shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = d });
        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float, Shape = shape } },
        };
    }
}
