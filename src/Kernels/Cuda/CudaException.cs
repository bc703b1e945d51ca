namespace Orchestrator.Kernels.Cuda;

/// <summary>A failed CUDA driver, runtime, NVRTC or cuBLAS call, named with its error code.</summary>
public sealed class CudaException(string message) : Exception(message);
