using TorchSharp;
using static TorchSharp.torch;

namespace Orchestrator.Kernels;

/// <summary>
/// The one GEMM primitive every grouped kernel is built from: c[i] = a[i] @ b[i] for each batch i.
///
/// a (batch, m, k), b (batch, k, n) and c (batch, m, n) are strided views: typically x.permute(1, 0, 2),
/// which walks the (B, N, D) activations group by group without copying, or w.transpose(1, 2). On CUDA
/// the strides become cuBLAS leading dimensions and batch strides, so the whole grouped layer is ONE
/// cublasGemmStridedBatchedEx call that reads and writes the (B, N, ·) tensors in place. On the CPU the
/// same views go through torch.bmm, so CI exercises identical indexing.
/// </summary>
public static class BatchedMatmul
{
    /// <summary>Writes a @ b into c (or adds it when accumulate is set).</summary>
    public static void Into(Tensor c, Tensor a, Tensor b, bool accumulate = false)
    {
        if (a.dim() != 3 || b.dim() != 3 || c.dim() != 3)
            throw new ArgumentException($"batched matmul takes 3-d views; got a {GroupedShapes.Show(a)}, b {GroupedShapes.Show(b)}, c {GroupedShapes.Show(c)}.");
        if (a.shape[0] != b.shape[0] || a.shape[0] != c.shape[0] || a.shape[2] != b.shape[1]
            || c.shape[1] != a.shape[1] || c.shape[2] != b.shape[2])
            throw new ArgumentException($"batched matmul shapes do not chain: a {GroupedShapes.Show(a)} @ b {GroupedShapes.Show(b)} -> c {GroupedShapes.Show(c)}.");

        if (c.device_type == DeviceType.CUDA)
        {
            Cuda.CublasBatchedGemm.Run(c, a, b, accumulate);
            return;
        }
        using var product = bmm(a, b);
        if (accumulate) c.add_(product);
        else c.copy_(product);
    }
}
