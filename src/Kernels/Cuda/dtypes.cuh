// Prepended to every kernel source of this folder before NVRTC compiles it (KernelModule): no CUDA headers needed.
//
// Element types as loaded and stored; all math is in float. S is the storage type.
typedef unsigned short u16;
typedef long long i64;

struct F32  { typedef float S; static __device__ float load(S v) { return v; } static __device__ S store(float f) { return f; } };
struct BF16 { typedef u16 S;
  static __device__ float load(S v) { return __uint_as_float(((unsigned)v) << 16); }
  static __device__ S store(float f) { u16 r; asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(r) : "f"(f)); return r; } };
struct F16  { typedef u16 S;
  static __device__ float load(S v) { float f; asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(v)); return f; }
  static __device__ S store(float f) { u16 r; asm("cvt.rn.f16.f32 %0, %1;" : "=h"(r) : "f"(f)); return r; } };

// V elements moved as one access of sizeof(S) * V bytes (16 for the vector variants).
template <class T, int V> struct __align__(sizeof(typename T::S) * V) Pack { typename T::S v[V]; };

__device__ inline float sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }

// Every element type with its 16-byte vector width and the scalar fallback: M(T, NAME, V) declares one variant's
// entry points, so each source lists its instantiations once: FOR_EACH_VARIANT(MY_ENTRY_POINTS).
#define FOR_EACH_VARIANT(M) M(F32, f32, 4) M(F32, f32, 1) M(BF16, bf16, 8) M(BF16, bf16, 1) M(F16, f16, 8) M(F16, f16, 1)

// Grid-stride loop over n work items, one per thread in the usual launch (CudaDevice.Launch).
#define FOR_EACH_ITEM(i, n) for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (i64)gridDim.x * blockDim.x)

__device__ inline bool is_finite_value(float x) { return (__float_as_uint(x) & 0x7f800000u) != 0x7f800000u; }

// Adds scale times the sum of every thread's value over the block to *out (float64): shuffles within each warp, then the
// warps' sums in the first warp, one atomic add per block. Every thread of the block must call it (blocks of <= 1024).
__device__ inline void block_sum_into(float value, double* out, double scale)
{
    __shared__ float warp_sums[32];
    for (int offset = 16; offset > 0; offset >>= 1) value += __shfl_down_sync(0xffffffffu, value, offset);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0) warp_sums[warp] = value;
    __syncthreads();
    if (warp == 0) {
        value = lane < (int)((blockDim.x + 31) >> 5) ? warp_sums[lane] : 0.0f;
        for (int offset = 16; offset > 0; offset >>= 1) value += __shfl_down_sync(0xffffffffu, value, offset);
        if (lane == 0) atomicAdd(out, (double)value * scale);
    }
}
