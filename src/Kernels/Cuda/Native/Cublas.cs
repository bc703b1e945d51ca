using System.Runtime.InteropServices;

namespace Orchestrator.Kernels.Cuda.Native;

/// <summary>cuBLAS entry points (libcublas), each checked.</summary>
static unsafe partial class Cublas
{
    public const int OpN = 0, OpT = 1;
    public const int DataFloat32 = 0, DataFloat64 = 1, DataFloat16 = 2, DataBFloat16 = 14;   // cudaDataType_t
    public const int Compute32F = 68, Compute32FFastTf32 = 77, Compute64F = 70;                // cublasComputeType_t
    const int GemmDefault = -1;                                                                 // cublasGemmAlgo_t

    [LibraryImport(NativeLibraries.Cublas)] private static partial int cublasCreate_v2(out IntPtr handle);
    [LibraryImport(NativeLibraries.Cublas)] private static partial IntPtr cublasGetStatusName(int status);
    [LibraryImport(NativeLibraries.Cublas)]
    private static partial int cublasGemmStridedBatchedEx(IntPtr handle, int transA, int transB, int m, int n, int k,
        void* alpha, IntPtr a, int aType, int lda, long strideA,
        IntPtr b, int bType, int ldb, long strideB,
        void* beta, IntPtr c, int cType, int ldc, long strideC,
        int batchCount, int computeType, int algo);

    /// <summary>A handle bound to the current device (create it with that device's context current).</summary>
    public static IntPtr Create()
    {
        Check(cublasCreate_v2(out var handle), nameof(cublasCreate_v2));
        return handle;
    }

    /// <summary>
    /// Column-major C[i] = op(A[i]) @ op(B[i]) (+ C[i] when accumulate) for i &lt; batch, on the handle's stream
    /// (the legacy default stream). alpha and beta are float for 32F compute and double for 64F.
    /// </summary>
    public static void GemmStridedBatched(IntPtr handle, int transA, int transB, int m, int n, int k,
        IntPtr a, int lda, long strideA, IntPtr b, int ldb, long strideB, IntPtr c, int ldc, long strideC,
        int batch, int dataType, int computeType, bool accumulate)
    {
        int status;
        if (computeType == Compute64F)
        {
            double alpha = 1, beta = accumulate ? 1 : 0;
            status = cublasGemmStridedBatchedEx(handle, transA, transB, m, n, k, &alpha, a, dataType, lda, strideA,
                b, dataType, ldb, strideB, &beta, c, dataType, ldc, strideC, batch, computeType, GemmDefault);
        }
        else
        {
            float alpha = 1, beta = accumulate ? 1 : 0;
            status = cublasGemmStridedBatchedEx(handle, transA, transB, m, n, k, &alpha, a, dataType, lda, strideA,
                b, dataType, ldb, strideB, &beta, c, dataType, ldc, strideC, batch, computeType, GemmDefault);
        }
        Check(status, $"cublasGemmStridedBatchedEx(m={m}, n={n}, k={k}, lda={lda}, ldb={ldb}, ldc={ldc}, batch={batch})");
    }

    static void Check(int status, string call)
    {
        if (status != 0)
            throw new CudaException($"{call} failed: {Marshal.PtrToStringUTF8(cublasGetStatusName(status)) ?? "CUBLAS_STATUS"} ({status})");
    }
}
