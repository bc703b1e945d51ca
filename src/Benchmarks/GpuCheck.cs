using Orchestrator.Kernels;
using Orchestrator.Training;
using TorchSharp;
using static TorchSharp.torch;
using GroupedLinearModule = Orchestrator.Kernels.Modules.GroupedLinear;
using GroupedSwiGluMlpModule = Orchestrator.Kernels.Modules.GroupedSwiGluMlp;

namespace Orchestrator.Benchmarks;

/// <summary>One comparison of a fast path against the float64 loop reference.</summary>
public sealed record CheckResult(string DType, string Shape, string Quantity, double RelativeError, double Tolerance)
{
    public bool Passed => RelativeError < Tolerance;   // NaN (an unwritten, poisoned element) never passes
}

/// <summary>
/// Correctness of the kernels on a device: the grouped linear layer and the grouped SwiGLU MLP, forward
/// and every gradient, against the per-group loop differentiated by autograd in float64 from the same
/// (rounded) inputs; the training step's fused MSE, input count, SiLU backward and AdamW against their float64
/// formulas; in bfloat16 and float32, the same kernels as torch.nn modules through autograd. Fresh random data each run; the allocator is poisoned with NaN before every call,
/// so an output element the kernels fail to write shows up as a NaN error.
/// </summary>
public static class GpuCheck
{
    public sealed record Shape(long Batch, long Groups, long InputDim, long HiddenDim, long OutputDim)
    {
        public override string ToString() => $"B={Batch} N={Groups} {InputDim}->{HiddenDim}->{OutputDim}";
    }

    /// <summary>The seed's configuration plus shapes that exercise the edges: one group, odd sizes (the scalar kernel path), B not a multiple of 8.</summary>
    public static readonly Shape[] DefaultShapes =
    [
        new(2560, 12, 1024, 3072, 1024),
        new(37, 1, 33, 17, 29),
        new(100, 5, 64, 96, 40),
        new(13, 3, 16, 8, 24),
    ];

    public static readonly ScalarType[] DefaultDTypes = [ScalarType.BFloat16, ScalarType.Float16, ScalarType.Float32, ScalarType.Float64];

    public static double Tolerance(ScalarType dtype) => dtype switch
    {
        ScalarType.Float64 => 1e-10,
        ScalarType.Float32 => 1e-4,
        _ => 1e-2,
    };

    public static List<CheckResult> Run(Device device, IEnumerable<ScalarType> dtypes, IEnumerable<Shape> shapes, Action<string>? progress = null)
    {
        random.manual_seed(Random.Shared.NextInt64(1, long.MaxValue));
        var results = new List<CheckResult>();
        foreach (var dtype in dtypes)
            foreach (var shape in shapes)
            {
                progress?.Invoke($"{DTypeNames.Name(dtype)} {shape}");
                results.AddRange(CheckSwiGlu(device, dtype, shape));
                results.AddRange(CheckLinear(device, dtype, shape));
                if (dtype is ScalarType.BFloat16 or ScalarType.Float32) results.AddRange(CheckModules(device, dtype, shape));
                if (dtype != ScalarType.Float64) results.AddRange(CheckStepKernels(device, dtype, shape));   // float64 takes the reference's own ops
            }
        return results;
    }

    static IEnumerable<CheckResult> CheckSwiGlu(Device device, ScalarType dtype, Shape s)
    {
        using var scope = NewDisposeScope();
        // Inputs drawn in float64, rounded to dtype; the reference starts from the rounded values.
        var x = Draw([s.Batch, s.Groups, s.InputDim], 1, dtype, device);
        var wGateUp = Draw([s.Groups, s.InputDim, 2 * s.HiddenDim], 1 / Math.Sqrt(s.InputDim), dtype, device);
        var wDown = Draw([s.Groups, s.HiddenDim, s.OutputDim], 1 / Math.Sqrt(s.HiddenDim), dtype, device);
        var dOut = Draw([s.Batch, s.Groups, s.OutputDim], 1, dtype, device);

        Tensor output;
        SwiGluGradients grads;
        using (no_grad())
        {
            Poison(device, s, dtype);
            output = GroupedSwiGluMlp.Forward(x, wGateUp, wDown, out var saved);
            Poison(device, s, dtype);
            grads = GroupedSwiGluMlp.Backward(saved, wGateUp, wDown, dOut);
            saved.Dispose();
        }

        var (rx, rg, rd) = (Leaf(x), Leaf(wGateUp), Leaf(wDown));
        var reference = LoopReference.SwiGluMlp(rx, rg, rd);
        reference.backward([dOut.to(ScalarType.Float64)]);

        string name = DTypeNames.Name(dtype), shape = s.ToString();
        double tol = Tolerance(dtype);
        return
        [
            new(name, shape, "SwiGLU MLP out", Error(output, reference), tol),
            new(name, shape, "SwiGLU MLP dX", Error(grads.DX, rx.grad!), tol),
            new(name, shape, "SwiGLU MLP dW_gate_up", Error(grads.DGateUp, rg.grad!), tol),
            new(name, shape, "SwiGLU MLP dW_down", Error(grads.DDown, rd.grad!), tol),
        ];
    }

    static IEnumerable<CheckResult> CheckLinear(Device device, ScalarType dtype, Shape s)
    {
        using var scope = NewDisposeScope();
        var x = Draw([s.Batch, s.Groups, s.InputDim], 1, dtype, device);
        var w = Draw([s.Groups, s.InputDim, s.HiddenDim], 1 / Math.Sqrt(s.InputDim), dtype, device);
        var dy = Draw([s.Batch, s.Groups, s.HiddenDim], 1, dtype, device);

        Tensor y, dx, dw;
        using (no_grad())
        {
            Poison(device, s, dtype);
            y = GroupedLinear.Forward(x, w);
            Poison(device, s, dtype);
            (dx, dw) = GroupedLinear.Backward(x, w, dy);
        }
        var (rx, rw) = (Leaf(x), Leaf(w));
        var reference = LoopReference.GroupedLinear(rx, rw);
        reference.backward([dy.to(ScalarType.Float64)]);

        string name = DTypeNames.Name(dtype), shape = s.ToString();
        double tol = Tolerance(dtype);
        return
        [
            new(name, shape, "grouped linear y", Error(y, reference), tol),
            new(name, shape, "grouped linear dX", Error(dx, rx.grad!), tol),
            new(name, shape, "grouped linear dW", Error(dw, rw.grad!), tol),
        ];
    }

    /// <summary>
    /// The kernels as TorchSharp users take them (Orchestrator.Kernels.Modules): a GroupedLinear (with its bias, D_in
    /// to H) and a GroupedSwiGluMlp made on the device in the dtype, forward and autograd backward (the explicit fused
    /// backward behind the modules' autograd functions), against the loop reference differentiated in float64 from
    /// the modules' own parameters. Checked in bfloat16 and float32, the dtypes models train in: the kernels beneath
    /// are checked in every dtype above, and this checks the modules' wiring (parameters, bias, autograd) over them.
    /// </summary>
    public static List<CheckResult> CheckModules(Device device, ScalarType dtype, Shape s)
    {
        using var generator = new Generator((ulong)Random.Shared.NextInt64(1, long.MaxValue));
        using var linear = new GroupedLinearModule(s.Groups, s.InputDim, s.HiddenDim, device: device, dtype: dtype, generator: generator);
        using var mlp = new GroupedSwiGluMlpModule(s.Groups, s.InputDim, s.HiddenDim, s.OutputDim, device: device, dtype: dtype, generator: generator);
        return
        [
            .. CheckModule("GroupedLinear module", linear, device, dtype, s, s.HiddenDim,
                (x, p) => LoopReference.GroupedLinear(x, p[0]) + p[1]),   // weight, then bias (N, H) over B
            .. CheckModule("GroupedSwiGluMlp module", mlp, device, dtype, s, s.OutputDim,
                (x, p) => LoopReference.SwiGluMlp(x, p[0], p[1])),        // w_gate_up, w_down
        ];
    }

    /// <summary>
    /// The module's output for x (B, N, D_in) and the gradients autograd gives x and each registered parameter for a
    /// random dOut, against <paramref name="reference"/> on float64 leaf copies of x and the parameters (in
    /// registration order). A gradient autograd did not produce is a NaN error, a failure.
    /// </summary>
    static IEnumerable<CheckResult> CheckModule(string what, nn.Module<Tensor, Tensor> module, Device device, ScalarType dtype, Shape s,
                                                long outputDim, Func<Tensor, Tensor[], Tensor> reference)
    {
        using var scope = NewDisposeScope();
        var x = Draw([s.Batch, s.Groups, s.InputDim], 1, dtype, device).requires_grad_(true);
        var dOut = Draw([s.Batch, s.Groups, outputDim], 1, dtype, device);
        Poison(device, s, dtype);
        var output = module.call(x);
        Poison(device, s, dtype);
        output.backward([dOut]);

        var parameters = module.named_parameters().ToArray();
        var xRef = Leaf(x);
        var parametersRef = parameters.Select(p => Leaf(p.parameter)).ToArray();
        var expected = reference(xRef, parametersRef);
        expected.backward([dOut.to(ScalarType.Float64)]);

        string name = DTypeNames.Name(dtype), shape = s.ToString();
        double tol = Tolerance(dtype);
        static double GradientError(Tensor leaf, Tensor referenceLeaf) =>
            leaf.grad is { } actual && referenceLeaf.grad is { } expected ? Error(actual, expected) : double.NaN;
        return
        [
            new(name, shape, $"{what} out", Error(output, expected), tol),
            new(name, shape, $"{what} dX", GradientError(x, xRef), tol),
            .. parameters.Zip(parametersRef, (p, r) => new CheckResult(name, shape, $"{what} d{p.name}", GradientError(p.parameter, r), tol)),
        ];
    }

    /// <summary>
    /// The training step's fused kernels against the same formulas in float64 TorchSharp ops on the same (rounded) inputs:
    /// MSE loss and dY, the trunk's SiLU backward, and AdamW over three tensors in one launch (one of odd size, so its
    /// tail takes the scalar path), three steps so the bias corrections move.
    /// </summary>
    static IEnumerable<CheckResult> CheckStepKernels(Device device, ScalarType dtype, Shape s)
    {
        using var scope = NewDisposeScope();
        string name = DTypeNames.Name(dtype), shape = s.ToString();
        double tol = Tolerance(dtype);
        var results = new List<CheckResult>();

        var y = Draw([s.Batch, s.Groups, s.OutputDim], 1, dtype, device);
        var target = Draw([s.Batch, s.Groups, s.OutputDim], 1, dtype, device);
        Poison(device, s, dtype);
        var (loss, dY) = MseLoss.Queue(y, target);
        var diff = y.to(ScalarType.Float64) - target.to(ScalarType.Float64);
        // The fused kernel sums float32 terms in float64; TorchSharp's CPU mean rounds to the dtype.
        results.Add(new(name, shape, "MSE loss", Error(loss, diff.square().mean()), device.type == DeviceType.CUDA ? 1e-5 : tol));
        // Against the float64 dY rounded to the dtype: float16 cannot hold 2 (y - t) / n for the seed's n = 3.1e7 (it
        // underflows into subnormals), which is the format's limit, not the kernel's.
        results.Add(new(name, shape, "MSE dY", Error(dY, (diff * (2.0 / diff.numel())).to(dtype)), tol));

        // The verdict counts NaN and infinite inputs exactly (a fused pass on CUDA).
        var features = Draw([s.Batch, s.InputDim], 1, dtype, device);
        long badFeatures = 1 + Random.Shared.Next(4), badTargets = 1 + Random.Shared.Next(4);
        Spoil(features, badFeatures);
        using (var verdict = new StepVerdict(loss, features, target, fence: null))
            results.Add(new(name, shape, "verdict: non-finite features counted", Counted(verdict, features, target, $"features hold {badFeatures} NaN"), 0.5));
        Spoil(target, badTargets);
        using (var verdict = new StepVerdict(loss, features.nan_to_num(), target, fence: null))
            results.Add(new(name, shape, "verdict: non-finite targets counted", Counted(verdict, features, target, $"targets hold {badTargets} NaN"), 0.5));

        results.AddRange(CheckLosses(device, dtype, s));

        var pre = Draw([s.Batch, s.Groups * s.InputDim], 2, dtype, device);
        var dX = Draw([s.Batch, s.Groups * s.InputDim], 1, dtype, device);
        Poison(device, s, dtype);
        var dPre = Trunk.ActivationBackward(dX, pre);
        var z = pre.to(ScalarType.Float64);
        var sg = sigmoid(z);
        results.Add(new(name, shape, "trunk SiLU bwd", Error(dPre, dX.to(ScalarType.Float64) * (sg * (1 + z * (1 - sg)))), tol));

        long[][] shapes = [[s.Groups, s.InputDim, 2 * s.HiddenDim], [s.Groups, s.HiddenDim, s.OutputDim], [2 * s.Batch + 1]];
        var settings = new OptimizerSpec { LearningRate = 1e-3, WeightDecay = 0.1 };
        var initial = shapes.Select(sh => randn(sh, ScalarType.Float64, device).mul_(0.03).to(ScalarType.Float32)).ToArray();
        var fused = initial.Select(t => new MasterWeight(t.clone(), dtype)).ToArray();
        var reference = initial.Select(t => new MasterWeight(t.to(ScalarType.Float64), ScalarType.Float64)).ToArray();
        using (var fusedAdam = new AdamW(settings, fused))
        using (var referenceAdam = new AdamW(settings, reference))
        {
            for (int step = 0; step < 3; step++)
            {
                var grads = shapes.Select(sh => Draw(sh, 1e-2, dtype, device)).ToArray();
                fusedAdam.Step(grads);
                referenceAdam.Step(grads.Select(g => g.to(ScalarType.Float64)).ToArray());
            }
            for (int i = 0; i < shapes.Length; i++)
            {
                string what = $"AdamW tensor {i} ({string.Join("x", shapes[i])})";
                results.Add(new(name, shape, $"{what} master", Error(fused[i].Master, reference[i].Master), 1e-5));
                results.Add(new(name, shape, $"{what} exp_avg", Error(fusedAdam.ExpAvg[i], referenceAdam.ExpAvg[i]), 1e-5));
                results.Add(new(name, shape, $"{what} exp_avg_sq", Error(fusedAdam.ExpAvgSq[i], referenceAdam.ExpAvgSq[i]), 1e-5));
                if (fused[i].HasWorkingCopy)
                    results.Add(new(name, shape, $"{what} working copy", Error(fused[i].Working, reference[i].Master), tol));
            }
        }
        foreach (var w in fused.Concat(reference)) w.Dispose();
        return results;
    }

    /// <summary>
    /// The weighted MSE and the BCE of <see cref="JobLoss"/> (TorchSharp ops on the device) against their formulas in
    /// float64 on the same rounded inputs, the BCE verdict's count of targets outside [0, 1], and a waiting update's
    /// squared norm (<see cref="DeferredUpdate"/>, clipping's reduction).
    /// </summary>
    static IEnumerable<CheckResult> CheckLosses(Device device, ScalarType dtype, Shape s)
    {
        using var scope = NewDisposeScope();
        string name = DTypeNames.Name(dtype), shape = s.ToString();
        double tol = Tolerance(dtype);
        var y = Draw([s.Batch, s.Groups, s.OutputDim], 3, dtype, device);
        var labels = Draw([s.Batch, s.Groups, s.OutputDim], 1, dtype, device).gt(0).to(dtype);
        var weights = Enumerable.Range(0, (int)s.Groups).Select(_ => 0.25 + Random.Shared.NextDouble() * 2).ToArray();
        var w = tensor(weights, ScalarType.Float64, device).view(1, -1, 1);
        var (y64, t64) = (y.to(ScalarType.Float64), labels.to(ScalarType.Float64));
        long count = y.numel();
        var results = new List<CheckResult>();
        using (var bce = new JobLoss(new LossSpec { Kind = LossKind.Bce, GroupWeights = weights }))
        {
            var (loss, dY) = bce.Queue(y, labels);
            var perElement = y64.clamp_min(0) - y64 * t64 + y64.abs().neg().exp().log1p();
            results.Add(new(name, shape, "BCE loss (weighted)", Error(loss, (perElement.mean([0, 2]) * w.flatten()).mean()), tol));
            results.Add(new(name, shape, "BCE dY (weighted)", Error(dY, ((sigmoid(y64) - t64) * w / count).to(dtype)), tol));
        }
        using (var mse = new JobLoss(new LossSpec { GroupWeights = weights }))
        {
            var (loss, dY) = mse.Queue(y, labels);
            var diff = y64 - t64;
            results.Add(new(name, shape, "MSE loss (weighted)", Error(loss, (diff.square().mean([0, 2]) * w.flatten()).mean()), tol));
            results.Add(new(name, shape, "MSE dY (weighted)", Error(dY, (diff * 2 * w / count).to(dtype)), tol));
        }
        var features = Draw([s.Batch, s.InputDim], 1, dtype, device);
        var outside = labels.clone();
        long bad = 1 + Random.Shared.Next(4);
        outside.view(-1).narrow(0, 0, bad).fill_(1.5);
        using (var verdict = new StepVerdict(zeros([], ScalarType.Float64, device), features, outside, fence: null, targetsAreProbabilities: true))
            results.Add(new(name, shape, "verdict: BCE targets outside [0, 1] counted", Counted(verdict, features, outside, $"{bad} of its targets are outside"), 0.5));

        var gradients = new[] { Draw([s.Groups, s.InputDim, 2 * s.HiddenDim], 1e-2, dtype, device), Draw([s.Groups, s.HiddenDim, s.OutputDim], 1e-2, dtype, device) };
        var masters = gradients.Select(g => new MasterWeight(zeros_like(g, ScalarType.Float32), dtype)).ToArray();
        using (var adam = new AdamW(new OptimizerSpec(), masters))
        using (var update = new DeferredUpdate(adam))
        {
            update.Hold(gradients.Select(g => g.clone()).ToArray());
            double expected = gradients.Sum(g => g.to(ScalarType.Float64).square().sum().item<double>());
            results.Add(new(name, shape, "gradient squared norm (clipping)", Math.Abs(update.SquaredNorm() - expected) / expected, 1e-6));
        }
        foreach (var m in masters) m.Dispose();
        return results;
    }

    /// <summary>Sets <paramref name="count"/> distinct elements of <paramref name="t"/> to NaN, +Inf or -Inf in turn.</summary>
    static void Spoil(Tensor t, long count)
    {
        var flat = t.view(-1);
        var positions = randperm(flat.shape[0]).narrow(0, 0, count).data<long>().ToArray();
        double[] bad = [double.NaN, double.PositiveInfinity, double.NegativeInfinity];
        for (int i = 0; i < positions.Length; i++) flat[positions[i]] = tensor(bad[i % 3], flat.dtype, flat.device);
    }

    /// <summary>0 when the verdict's rejection says <paramref name="expected"/>, 1 otherwise.</summary>
    static double Counted(StepVerdict verdict, Tensor features, Tensor targets, string expected) =>
        verdict.Read(0, new JobSpec(), features, targets).Rejection?.Contains(expected) == true ? 0 : 1;

    static Tensor Draw(long[] shape, double scale, ScalarType dtype, Device device) =>
        randn(shape, ScalarType.Float64).mul_(scale).to(dtype, device);

    /// <summary>A float64 leaf on the same device with the same (rounded) values, for the reference.</summary>
    static Tensor Leaf(Tensor t) => t.detach().to(ScalarType.Float64).requires_grad_(true);

    /// <summary>‖a − ref‖ / ‖ref‖ in float64; NaN if a has any non-finite element.</summary>
    internal static double Error(Tensor actual, Tensor reference)
    {
        using var scope = NewDisposeScope();
        var a = actual.detach().to(ScalarType.Float64);
        var r = reference.detach().to(ScalarType.Float64);
        if (!a.isfinite().all().item<bool>()) return double.NaN;
        return (a - r).norm().item<double>() / r.norm().item<double>();
    }

    /// <summary>
    /// Fills freed allocator blocks with NaN: the next allocations of the kernels reuse them, so any
    /// element they do not write stays NaN. Sized to cover the largest tensor of the shape.
    /// </summary>
    static void Poison(Device device, Shape s, ScalarType dtype)
    {
        if (device.type != DeviceType.CUDA) return;   // the CPU allocator does not recycle blocks this way
        long largest = s.Batch * s.Groups * 2 * Math.Max(Math.Max(s.HiddenDim, s.InputDim), s.OutputDim);
        var blocks = Enumerable.Range(0, 4).Select(_ => full([largest], double.NaN, dtype, device)).ToList();
        foreach (var block in blocks) block.Dispose();
    }
}
