using Orchestrator.Kernels.Cuda.Native;
using TorchSharp;
using static TorchSharp.torch;

namespace Orchestrator.Kernels.Cuda;

/// <summary>
/// Maps <see cref="BatchedMatmul"/>'s strided row-major views onto one cublasGemmStridedBatchedEx call.
///
/// A row-major view (batch, rows, cols) with strides (sBatch, sRow, 1) is, to column-major cuBLAS, the
/// transposed matrix with leading dimension sRow; a view with strides (sBatch, 1, sCol) (a transpose) is
/// the matrix itself with leading dimension sCol. Row-major C = A @ B is column-major Cᵀ = Bᵀ @ Aᵀ, so B
/// goes first. Nothing is copied: x.permute(1, 0, 2) of a (B, N, D) tensor is batch stride D, row stride
/// N·D, exactly the seed's lda = N·D_in, strideA = D_in.
/// </summary>
static class CublasBatchedGemm
{
    /// <summary>When set, float32 GEMMs use TF32 tensor cores (faster, about 3e-4 relative error).</summary>
    public static bool AllowTf32 { get; set; }

    public static void Run(Tensor c, Tensor a, Tensor b, bool accumulate)
    {
        GroupedShapes.CheckSameKind((c, "c"), (a, "a"), (b, "b"));
        var cLayout = Layout.Of(c, "c");
        if (cLayout.Transposed)
            throw new ArgumentException($"the GEMM output must be row-major (unit column stride); got strides ({string.Join(", ", c.stride())}).");
        var aLayout = Layout.Of(a, "a");
        var bLayout = Layout.Of(b, "b");

        var device = CudaDevice.Of(c);
        device.MakeCurrent();
        var (dataType, computeType) = Types(c.dtype);
        Cublas.GemmStridedBatched(device.CublasHandle,
            transA: bLayout.Transposed ? Cublas.OpT : Cublas.OpN,
            transB: aLayout.Transposed ? Cublas.OpT : Cublas.OpN,
            m: checked((int)c.shape[2]), n: checked((int)c.shape[1]), k: checked((int)a.shape[2]),
            a: CudaDevice.DataPointer(b), lda: bLayout.Leading, strideA: bLayout.BatchStride,
            b: CudaDevice.DataPointer(a), ldb: aLayout.Leading, strideB: aLayout.BatchStride,
            c: CudaDevice.DataPointer(c), ldc: cLayout.Leading, strideC: cLayout.BatchStride,
            batch: checked((int)c.shape[0]), dataType, computeType, accumulate);
    }

    static (int Data, int Compute) Types(ScalarType dtype) => dtype switch
    {
        ScalarType.BFloat16 => (Cublas.DataBFloat16, Cublas.Compute32F),
        ScalarType.Float16 => (Cublas.DataFloat16, Cublas.Compute32F),
        ScalarType.Float32 => (Cublas.DataFloat32, AllowTf32 ? Cublas.Compute32FFastTf32 : Cublas.Compute32F),
        ScalarType.Float64 => (Cublas.DataFloat64, Cublas.Compute64F),
        _ => throw new ArgumentException($"cuBLAS GEMM does not support {dtype}."),
    };

    /// <summary>How a (batch, rows, cols) view sits in memory, in cuBLAS terms.</summary>
    readonly record struct Layout(bool Transposed, int Leading, long BatchStride)
    {
        public static Layout Of(Tensor t, string name)
        {
            long rows = t.shape[1], cols = t.shape[2];
            long sBatch = t.stride(0), sRow = t.stride(1), sCol = t.stride(2);
            // A dimension of size 1 has an arbitrary stride; treat it as packed.
            if (cols == 1) sCol = 1;
            if (rows == 1) sRow = Math.Max(cols, 1);
            if (sCol == 1 && sRow >= cols) return new(false, checked((int)sRow), sBatch);
            if (sRow == 1 && sCol >= rows) return new(true, checked((int)sCol), sBatch);
            throw new ArgumentException(
                $"{name} {GroupedShapes.Show(t)} with strides ({string.Join(", ", t.stride())}) has no unit-stride dimension among its last two; cuBLAS needs one.");
        }
    }
}
