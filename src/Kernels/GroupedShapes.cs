using TorchSharp;
using static TorchSharp.torch;

namespace Orchestrator.Kernels;

/// <summary>
/// Argument checks shared by the grouped kernels. Every message names the argument and the dimension
/// that is wrong, because a shape error deep inside a batched GEMM is otherwise unreadable.
/// </summary>
public static class GroupedShapes
{
    /// <summary>
    /// Returns x as a (B, N, D) view. Accepts (B, N, D) or the flattened (B*N, D) layout, where N comes
    /// from the weights.
    /// </summary>
    public static Tensor AsGrouped(Tensor x, long groups, long features, string name = "x")
    {
        if (x.dim() == 3)
        {
            if (x.shape[1] != groups)
                throw new ArgumentException($"{name} has {x.shape[1]} groups in dim 1 but the weights have {groups} (shape {Show(x)}).", name);
            if (x.shape[2] != features)
                throw new ArgumentException($"{name} has {x.shape[2]} features in dim 2 but the weights expect {features} (shape {Show(x)}).", name);
            return x.alias();
        }
        if (x.dim() == 2)
        {
            if (x.shape[1] != features)
                throw new ArgumentException($"{name} has {x.shape[1]} features in dim 1 but the weights expect {features} (shape {Show(x)}).", name);
            if (x.shape[0] % groups != 0)
                throw new ArgumentException($"flattened {name} has {x.shape[0]} rows in dim 0, not a multiple of the {groups} groups (shape {Show(x)}).", name);
            return x.view(x.shape[0] / groups, groups, features);
        }
        throw new ArgumentException($"{name} must be (B, N, D) or (B*N, D); got {x.dim()} dims {Show(x)}.", name);
    }

    /// <summary>Checks that a weight is (N, rows, cols) with the expected sizes where given (-1 = any).</summary>
    public static void CheckWeight(Tensor w, string name, long groups = -1, long rows = -1, long cols = -1)
    {
        if (w.dim() != 3)
            throw new ArgumentException($"{name} must be (N, D_in, D_out); got {w.dim()} dims {Show(w)}.", name);
        if (groups >= 0 && w.shape[0] != groups)
            throw new ArgumentException($"{name} has {w.shape[0]} groups in dim 0, expected {groups} (shape {Show(w)}).", name);
        if (rows >= 0 && w.shape[1] != rows)
            throw new ArgumentException($"{name} has {w.shape[1]} rows in dim 1, expected {rows} (shape {Show(w)}).", name);
        if (cols >= 0 && w.shape[2] != cols)
            throw new ArgumentException($"{name} has {w.shape[2]} columns in dim 2, expected {cols} (shape {Show(w)}).", name);
    }

    /// <summary>All tensors must share one dtype and one device, and be a floating dtype the kernels support.</summary>
    public static void CheckSameKind(params (Tensor Tensor, string Name)[] tensors)
    {
        var (first, firstName) = tensors[0];
        if (!IsSupported(first.dtype))
            throw new ArgumentException($"{firstName} has dtype {first.dtype}; supported are Float64, Float32, Float16 and BFloat16.", firstName);
        foreach (var (t, name) in tensors.Skip(1))
        {
            if (t.dtype != first.dtype)
                throw new ArgumentException($"{name} has dtype {t.dtype} but {firstName} has {first.dtype}.", name);
            if (t.device_type != first.device_type || t.device_index != first.device_index)
                throw new ArgumentException($"{name} is on {t.device} but {firstName} is on {first.device}.", name);
        }
    }

    /// <summary>Throws if any element is NaN or infinite. Costs a device sync, so callers opt in.</summary>
    public static void CheckFinite(Tensor t, string name)
    {
        using var scope = NewDisposeScope();
        if (!t.isfinite().all().item<bool>())
        {
            long bad = t.numel() - t.isfinite().sum().item<long>();
            throw new ArgumentException($"{name} contains {bad} non-finite values (NaN or Inf).", name);
        }
    }

    /// <summary>Whether the kernels take this dtype.</summary>
    public static bool IsSupported(ScalarType dtype) =>
        dtype is ScalarType.Float64 or ScalarType.Float32 or ScalarType.Float16 or ScalarType.BFloat16;

    /// <summary>A shape as error messages print it: (B, N, D).</summary>
    public static string Show(Tensor t) => "(" + string.Join(", ", t.shape) + ")";
}
