using System.Text;
using System.Text.Json;
using Orchestrator.Kernels;
using Orchestrator.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Orchestrator.Benchmarks;

/// <summary>Shapes and timing settings of one benchmark run.</summary>
public sealed record BenchmarkSettings(
    long Batch, long Groups, long InputDim, long LinearOutputDim, long HiddenDim, long MlpOutputDim,
    ScalarType DType, Device Device, int Warmup, int Repetitions, int InputSets);

/// <summary>One row of the table. Rate is TFLOP/s for GEMM work, GB/s for elementwise work.</summary>
public sealed record BenchmarkRow(string Case, double LoopMs, double OursMs, double Rate, string RateUnit, double PercentOfCeiling);

/// <summary>One phase of our SwiGLU MLP step, timed alone.</summary>
public sealed record PhaseRow(string Phase, double Ms, double Rate, string RateUnit, double PercentOfCeiling);

public sealed record BenchmarkReport(
    string Device, string DType, BenchmarkSettings Settings, double GemmCeilingTflops, double CopyCeilingGBps,
    IReadOnlyList<BenchmarkRow> Rows, IReadOnlyList<PhaseRow> MlpPhases, long MlpTrainingBytesMeasured, long MlpTrainingBytesMinimum);

/// <summary>
/// The kernel benchmark: the per-group loop (TorchSharp) against our strided batched GEMMs and fused
/// activations, with the device's own ceilings measured in the same run (a large matmul for GEMM work,
/// a large device-to-device copy for elementwise work). Random data, inputs rotated between repetitions.
/// </summary>
public static class KernelBenchmark
{
    public static BenchmarkReport Run(BenchmarkSettings s, Action<string>? progress = null)
    {
        var timer = new DeviceTimer(s.Device, s.Warmup, s.Repetitions);
        random.manual_seed(Random.Shared.NextInt64(1, long.MaxValue));   // fresh data every run
        Tensor Rand(long[] shape, double scale) => randn(shape, s.DType, s.Device).mul_(scale);

        long b = s.Batch, n = s.Groups, d = s.InputDim, o = s.LinearOutputDim, h = s.HiddenDim, m = s.MlpOutputDim;
        long rows = b * n, es = DTypeNames.ElementSize(s.DType);
        using var scope = NewDisposeScope();

        // Weights are shared across repetitions, like a training step; activations rotate through
        // several sets so the L2 cache never holds the next input.
        var w = Rand([n, d, o], 1 / Math.Sqrt(d));                      // (N, D_in, D_out)
        var wGateUp = Rand([n, d, 2 * h], 1 / Math.Sqrt(d));            // (N, D_in, 2H)
        var wDown = Rand([n, h, m], 1 / Math.Sqrt(h));                  // (N, H, D_mlp)
        var xs = Sets(s.InputSets, () => Rand([b, n, d], 1));           // (B, N, D_in)
        var dys = Sets(s.InputSets, () => Rand([b, n, o], 1));          // (B, N, D_out)
        var dOuts = Sets(s.InputSets, () => Rand([b, n, m], 1));        // (B, N, D_mlp)
        var gateUps = Sets(s.InputSets, () => Rand([b, n, 2 * h], 2));  // (B, N, 2H)
        var dHiddens = Sets(s.InputSets, () => Rand([b, n, h], 1));     // (B, N, H)
        Tensor Pick(Tensor[] sets, int i) => sets[i % sets.Length];

        // Memory first: the caching allocator never returns memory, so later cases would hide it.
        progress?.Invoke("memory of the SwiGLU MLP training step");
        long before = timer.UsedBytes();
        using (NewDisposeScope())
        {
            var output = GroupedSwiGluMlp.Forward(xs[0], wGateUp, wDown, out var saved);
            using var grads = GroupedSwiGluMlp.Backward(saved, wGateUp, wDown, dOuts[0]);
            saved.Dispose();
        }
        long measured = timer.UsedBytes() - before;
        // Saved gateUp (2H) + hidden (H) + output (D_mlp) + the transient dHidden (H) and dGateUp (2H)
        // + dX (D_in) + weight gradients: the least any implementation must hold at the peak.
        long minimum = es * (rows * (2 * h + h + m + h + 2 * h + d) + n * (d * 2 * h + h * m));

        // Ceilings before and after the cases; the higher counts (clocks drift over a run).
        progress?.Invoke("ceilings");
        double gemmCeiling = Ceilings.GemmTflops(timer, s.DType), copyCeiling = Ceilings.CopyGBps(timer, s.DType);

        var rows_ = new List<BenchmarkRow>();
        void Gemm(string name, double flops, Action<int> loop, Action<int> ours)
        {
            progress?.Invoke(name);
            double loopMs = Timed(timer, loop), oursMs = Timed(timer, ours);
            rows_.Add(new(name, loopMs, oursMs, flops / (oursMs * 1e-3) / 1e12, "TFLOP/s", 0));
        }
        void Elementwise(string name, double bytes, Action<int> baseline, Action<int> ours, Action<int>? prepareBaseline = null)
        {
            progress?.Invoke(name);
            double baseMs = timer.MedianMs(i => { using var _ = NewDisposeScope(); baseline(i); }, prepareBaseline);
            double oursMs = Timed(timer, ours);
            rows_.Add(new(name, baseMs, oursMs, bytes / (oursMs * 1e-3) / 1e9, "GB/s", 0));
        }

        double linearFlops = 2.0 * rows * d * o, mlpFlops = 2.0 * rows * (d * 2 * h + h * m);
        using (no_grad())
        {
            Gemm($"grouped linear fwd {d}->{o}", linearFlops,
                i => LoopReference.GroupedLinear(Pick(xs, i), w),
                i => GroupedLinear.Forward(Pick(xs, i), w));
        }
        Gemm($"grouped linear fwd+bwd {d}->{o}", 3 * linearFlops,
            i =>
            {
                var x = Pick(xs, i).detach().requires_grad_(true);
                var wl = w.detach().requires_grad_(true);
                LoopReference.GroupedLinear(x, wl).backward([Pick(dys, i)]);
            },
            i =>
            {
                using var _ = no_grad();
                var y = GroupedLinear.Forward(Pick(xs, i), w);
                var (dx, dw) = GroupedLinear.Backward(Pick(xs, i), w, Pick(dys, i));
            });
        using (no_grad())
        {
            Gemm($"SwiGLU MLP fwd {d}->{h}->{m}", mlpFlops,
                i => LoopReference.SwiGluMlp(Pick(xs, i), wGateUp, wDown),
                i => GroupedSwiGluMlp.Forward(Pick(xs, i), wGateUp, wDown));
        }
        Gemm($"SwiGLU MLP fwd+bwd {d}->{h}->{m}", 3 * mlpFlops,
            i =>
            {
                var x = Pick(xs, i).detach().requires_grad_(true);
                var wg = wGateUp.detach().requires_grad_(true);
                var wd = wDown.detach().requires_grad_(true);
                LoopReference.SwiGluMlp(x, wg, wd).backward([Pick(dOuts, i)]);
            },
            i =>
            {
                using var _ = no_grad();
                var output = GroupedSwiGluMlp.Forward(Pick(xs, i), wGateUp, wDown, out var saved);
                using var grads = GroupedSwiGluMlp.Backward(saved, wGateUp, wDown, Pick(dOuts, i));
                saved.Dispose();
            });

        using (no_grad())
        {
            Elementwise($"SwiGLU activation fwd (B*N={rows}, H={h})", 3.0 * rows * h * es,
                i => { var gu = Pick(gateUps, i); _ = nn.functional.silu(gu.narrow(-1, 0, h)) * gu.narrow(-1, h, h); },
                i => SwiGluActivation.Forward(Pick(gateUps, i)));
        }
        // The baseline's backward alone is timed: its forward graph is built before the clock starts.
        Tensor? leaf = null, hidden = null;
        Elementwise($"SwiGLU activation bwd (B*N={rows}, H={h})", 5.0 * rows * h * es,
            i =>
            {
                hidden!.backward([Pick(dHiddens, i)]);
                hidden.Dispose();
                leaf!.Dispose();   // frees its .grad before the next repetition
            },
            i => { using var _ = no_grad(); SwiGluActivation.Backward(Pick(gateUps, i), Pick(dHiddens, i)); },
            prepareBaseline: i =>
            {
                using var views = NewDisposeScope();
                leaf = Pick(gateUps, i).detach().requires_grad_(true).DetachFromDisposeScope();
                hidden = (nn.functional.silu(leaf.narrow(-1, 0, h)) * leaf.narrow(-1, h, h)).DetachFromDisposeScope();
            });

        // The training step's other memory-bound kernels, at the seed job's sizes: each fused pass against the same
        // formula in TorchSharp ops.
        long towerParameters = n * (d * 2 * h + h * m), trunkWidth = n * d;
        var masterDType = MasterWeight.MasterDType(s.DType);
        MasterWeight Weight() => new(randn([towerParameters], masterDType, s.Device).mul_(0.03).DetachFromDisposeScope(), s.DType);
        using (no_grad())
        using (var fusedWeight = Weight())
        using (var opsWeight = Weight())
        using (var fused = new AdamW(new OptimizerSpec(), fusedWeight))
        using (var ops = new AdamW(new OptimizerSpec(), opsWeight) { AllowFused = false })
        {
            var gradient = Rand([towerParameters], 1e-3);
            double perParameter = StepFloors.AdamWBytesPerParameter(s.DType);
            Elementwise($"AdamW, the towers' {towerParameters / 1e6:F1}M parameters ({perParameter} B each)", perParameter * towerParameters,
                _ => ops.Step(gradient), _ => fused.Step(gradient));
            var ys = Sets(s.InputSets, () => Rand([b, n, m], 1));
            Elementwise($"MSE loss and dY (B={b}, N={n}, D_out={m})", 3.0 * rows * m * es,
                i =>
                {
                    var diff = Pick(ys, i) - Pick(dOuts, i);
                    _ = diff.square().mean().to(ScalarType.Float64);
                    diff.mul_(2.0 / diff.numel());
                },
                i => MseLoss.Queue(Pick(ys, i), Pick(dOuts, i)));
            var pres = Sets(s.InputSets, () => Rand([b, trunkWidth], 1));
            var dxs = Sets(s.InputSets, () => Rand([b, trunkWidth], 1));
            Elementwise($"trunk SiLU bwd (B={b}, N*D_in={trunkWidth})", 3.0 * b * trunkWidth * es,
                i =>
                {
                    var (z, sg) = (Pick(pres, i), sigmoid(Pick(pres, i)));
                    _ = Pick(dxs, i) * (sg * (1 + z * (1 - sg)));
                },
                i => Trunk.ActivationBackward(Pick(dxs, i), Pick(pres, i)));
        }

        // Where the SwiGLU MLP's time goes: each kernel of our step alone.
        var hiddens = dHiddens;   // any (B, N, H) random data serves as the hidden activations
        var phases = new List<PhaseRow>();
        void Phase(string name, double work, bool gemm, Action<int> run)
        {
            progress?.Invoke($"phase {name}");
            double ms = Timed(timer, run);
            phases.Add(new(name, ms, gemm ? work / (ms * 1e-3) / 1e12 : work / (ms * 1e-3) / 1e9, gemm ? "TFLOP/s" : "GB/s", 0));
        }
        using (no_grad())
        {
            Phase("fwd: gate_up = x @ W_gate_up", 2.0 * rows * d * 2 * h, true, i => GroupedLinear.Forward(Pick(xs, i), wGateUp));
            Phase("fwd: hidden = silu(gate) * up", 3.0 * rows * h * es, false, i => SwiGluActivation.Forward(Pick(gateUps, i)));
            Phase("fwd: out = hidden @ W_down", 2.0 * rows * h * m, true, i => GroupedLinear.Forward(Pick(hiddens, i), wDown));
            Phase("bwd: dW_down, dHidden (2 GEMMs)", 4.0 * rows * h * m, true, i => GroupedLinear.Backward(Pick(hiddens, i), wDown, Pick(dOuts, i)));
            Phase("bwd: dGateUp = swiglu'(gate_up, dHidden)", 5.0 * rows * h * es, false, i => SwiGluActivation.Backward(Pick(gateUps, i), Pick(dHiddens, i)));
            Phase("bwd: dW_gate_up, dX (2 GEMMs)", 4.0 * rows * d * 2 * h, true, i => GroupedLinear.Backward(Pick(xs, i), wGateUp, Pick(gateUps, i)));
        }

        progress?.Invoke("ceilings again");
        gemmCeiling = Math.Max(gemmCeiling, Ceilings.GemmTflops(timer, s.DType));
        copyCeiling = Math.Max(copyCeiling, Ceilings.CopyGBps(timer, s.DType));
        double Percent(double rate, string unit) => 100 * rate / (unit == "GB/s" ? copyCeiling : gemmCeiling);

        return new BenchmarkReport(s.Device.ToString(), DTypeNames.Name(s.DType), s, gemmCeiling, copyCeiling,
            rows_.Select(r => r with { PercentOfCeiling = Percent(r.Rate, r.RateUnit) }).ToList(),
            phases.Select(p => p with { PercentOfCeiling = Percent(p.Rate, p.RateUnit) }).ToList(), measured, minimum);
    }

    /// <summary>Median time of work(i), each repetition inside its own dispose scope.</summary>
    static double Timed(DeviceTimer timer, Action<int> work) => timer.MedianMs(i => { using var _ = NewDisposeScope(); work(i); });

    static Tensor[] Sets(int count, Func<Tensor> make) => Enumerable.Range(0, count).Select(_ => make()).ToArray();

    public static string ToMarkdown(BenchmarkReport r)
    {
        var sb = new StringBuilder();
        sb.AppendLine($"device {r.Device}, {r.DType}, B={r.Settings.Batch}, N={r.Settings.Groups}; " +
                      $"median of {r.Settings.Repetitions} after {r.Settings.Warmup} warm-ups, {r.Settings.InputSets} rotating input sets");
        sb.AppendLine($"ceilings measured in this run (best of start and end): GEMM {r.GemmCeilingTflops:G4} TFLOP/s (square matmul), copy {r.CopyCeilingGBps:F0} GB/s (read + write)");
        sb.AppendLine();
        sb.AppendLine("| case | loop / TorchSharp (ms) | ours (ms) | speedup | rate | % of ceiling |");
        sb.AppendLine("| --- | ---: | ---: | ---: | ---: | ---: |");
        foreach (var row in r.Rows)
            sb.AppendLine($"| {row.Case} | {row.LoopMs:F3} | {row.OursMs:F3} | {row.LoopMs / row.OursMs:F2}x | {row.Rate:G4} {row.RateUnit} | {row.PercentOfCeiling:F1}% |");
        sb.AppendLine();
        sb.AppendLine("Our SwiGLU MLP step, one kernel phase at a time:");
        sb.AppendLine();
        sb.AppendLine("| phase | ms | rate | % of ceiling |");
        sb.AppendLine("| --- | ---: | ---: | ---: |");
        foreach (var p in r.MlpPhases)
            sb.AppendLine($"| {p.Phase} | {p.Ms:F3} | {p.Rate:G4} {p.RateUnit} | {p.PercentOfCeiling:F1}% |");
        sb.AppendLine($"| sum of phases (fwd+bwd) | {r.MlpPhases.Sum(p => p.Ms):F3} | | |");
        if (r.MlpTrainingBytesMeasured > 0)
        {
            sb.AppendLine();
            sb.AppendLine($"SwiGLU MLP fwd+bwd device memory: {r.MlpTrainingBytesMeasured / 1048576.0:F0} MiB reserved by the step " +
                          $"(driver view, caching allocator included) vs {r.MlpTrainingBytesMinimum / 1048576.0:F0} MiB of saved activations, outputs and gradients");
        }
        return sb.ToString();
    }

    public static string ToJson(BenchmarkReport r) =>
        JsonSerializer.Serialize(new
        {
            r.Device, r.DType, r.Settings.Batch, r.Settings.Groups, r.Settings.InputDim, r.Settings.LinearOutputDim,
            r.Settings.HiddenDim, r.Settings.MlpOutputDim, r.GemmCeilingTflops, r.CopyCeilingGBps, r.Rows,
            r.MlpTrainingBytesMeasured, r.MlpTrainingBytesMinimum,
        }, new JsonSerializerOptions { WriteIndented = true });
}
