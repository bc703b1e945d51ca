// Grouped (strided batched) GEMM for Hopper (sm_90a) with fused SwiGLU epilogues, compiled at run time by NVRTC
// after src/Kernels/Cuda/dtypes.cuh. An experiment (issue 11), not shipped: hopper_gemm.py beside it is its host
// (tensor maps, launch, checks against PyTorch, timings); it moves into src/Kernels/Cuda once it beats cuBLAS plus
// the separate activation kernels (docs/kernel-notes.md). The math it must equal is GroupedLinear + SwiGluActivation.
//
// For each group g and row b:   C[b, g, :] = A[b, g, :] @ W_g          A (M=B rows, G, K), K contiguous.
// W_g is read through a TMA tensor map in one of two layouts:
//   MN-major  W (G, K, cols)   the forward weights as stored (wGateUp, wDown);
//   K-major   W (G, cols, K)   a transposed weight, as the backward's dHidden = dOut @ wDownᵀ reads wDown (G, H, D_out).
// No operand is copied or transposed: the tensor maps carry the (B, N, D) strides, exactly like the cuBLAS path.
//
// One CTA computes a 128 x 256 accumulator tile: two halves of 128 columns (each half one wgmma n128 per k16 step).
//   plain       halves are columns [n0, n0+128) and [n0+128, n0+256); C is stored as is.
//   swiglu_fwd  halves are gate columns [n0, n0+128) and up columns [H+n0, H+n0+128) of wGateUp (G, K, 2H); the
//               epilogue stores gate_up (both halves, for the backward) and h = silu(g) * u, so no separate pass.
//   swiglu_bwd  C = dHidden (plain halves); the epilogue reads g, u from gate_up and stores dGateUp =
//               (dh * u * silu'(g), dh * silu(g)) instead of dHidden.
// Values pass through the storage type (bf16/f16) exactly where the unfused path rounds them, so both paths compute
// the activation from the same numbers.
//
// Warp specialisation: warpgroup 0 is the producer (one thread issues TMA loads into a ring of STAGES shared-memory
// stages, each completing on its "full" mbarrier); warpgroups 1 and 2 are consumers, each owning 64 of the tile's 128
// rows, issuing wgmma from shared memory and releasing a stage on its "empty" mbarrier once the wgmma reading it has
// retired. Shared-memory tiles use the 128-byte swizzle that both TMA and wgmma understand.

typedef unsigned long long u64;

struct __align__(64) TensorMap { u64 opaque[16]; };   // a CUtensorMap, encoded on the host (cuTensorMapEncodeTiled)

// Where the epilogue writes (and, for swiglu_bwd, reads). Strides in elements; rows are the batch, groups the N groups.
struct Epilogue {
    u16* out;  i64 out_row;  i64 out_group;   // plain: C; swiglu_fwd: gate_up; swiglu_bwd: dGateUp
    u16* aux;  i64 aux_row;  i64 aux_group;   // swiglu_fwd: h (written); swiglu_bwd: gate_up (read); plain: unused
    int rows;                                 // M (the batch)
    int cols;                                 // valid output columns: plain C's width, or H for both SwiGLU kinds
    int hidden;                               // H: where up starts in gate_up-shaped tensors (SwiGLU kinds)
};

enum { BM = 128, BK = 64, HALF = 128, STAGES = 3, THREADS = 384 };
enum { A_BYTES = BM * BK * 2, HALF_BYTES = HALF * BK * 2, STAGE_BYTES = A_BYTES + 2 * HALF_BYTES };
enum { PLAIN = 0, SWIGLU_FWD = 1, SWIGLU_BWD = 2 };

__device__ inline unsigned smem_address(const void* p)
{
    unsigned r;
    asm("{ .reg .u64 a; cvta.to.shared.u64 a, %1; cvt.u32.u64 %0, a; }" : "=r"(r) : "l"(p));
    return r;
}

__device__ inline void barrier_init(unsigned bar, unsigned count)
{ asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" :: "r"(bar), "r"(count) : "memory"); }

__device__ inline void barrier_expect(unsigned bar, unsigned bytes)
{ asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" :: "r"(bar), "r"(bytes) : "memory"); }

__device__ inline void barrier_arrive(unsigned bar)
{ asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" :: "r"(bar) : "memory"); }

__device__ inline void barrier_wait(unsigned bar, unsigned parity)
{
    asm volatile("{\n .reg .pred done;\n WAIT:\n"
                 " mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n"
                 " @!done bra WAIT;\n}" :: "r"(bar), "r"(parity) : "memory");
}

// One TMA box of a rank-3 tensor map into shared memory, completing on bar.
__device__ inline void tma_load(unsigned dst, const TensorMap* map, unsigned bar, int c0, int c1, int c2)
{
    asm volatile("cp.async.bulk.tensor.3d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%3, %4, %5}], [%2];"
                 :: "r"(dst), "l"(map), "r"(bar), "r"(c0), "r"(c1), "r"(c2) : "memory");
}

// Keeps the compiler from moving accumulator reads or writes across the asynchronous wgmma instructions.
__device__ inline void pin(float (&d)[64])
{
    #pragma unroll
    for (int i = 0; i < 64; i++) asm volatile("" : "+f"(d[i]) :: "memory");
}

#define ACC8(i) "+f"(d[i]), "+f"(d[i + 1]), "+f"(d[i + 2]), "+f"(d[i + 3]), "+f"(d[i + 4]), "+f"(d[i + 5]), "+f"(d[i + 6]), "+f"(d[i + 7])
#define ACC64 ACC8(0), ACC8(8), ACC8(16), ACC8(24), ACC8(32), ACC8(40), ACC8(48), ACC8(56)
#define REGS64 "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "                      \
    "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "                         \
    "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, "                         \
    "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}"

// d (64 x 128, f32, this warpgroup's fragment) += A (64 x 16, K-major) @ B (16 x 128); trans_b is 1 for MN-major B.
#define WGMMA_N128(TYPE)                                                                                        \
template <int TransB> __device__ inline void wgmma_n128_##TYPE(float (&d)[64], u64 desc_a, u64 desc_b)         \
{                                                                                                               \
    asm volatile("{\n .reg .pred accumulate;\n setp.ne.b32 accumulate, %66, 0;\n"                               \
                 " wgmma.mma_async.sync.aligned.m64n128k16.f32." #TYPE "." #TYPE " " REGS64 ", %64, %65, accumulate, 1, 1, 0, %67;\n}" \
                 : ACC64 : "l"(desc_a), "l"(desc_b), "r"(1), "n"(TransB));                                      \
}
WGMMA_N128(bf16)
WGMMA_N128(f16)

struct BF16Mma { template <int TransB> static __device__ void run(float (&d)[64], u64 a, u64 b) { wgmma_n128_bf16<TransB>(d, a, b); } };
struct F16Mma  { template <int TransB> static __device__ void run(float (&d)[64], u64 a, u64 b) { wgmma_n128_f16<TransB>(d, a, b); } };

// A shared-memory matrix descriptor: the host encodes the layout bits (leading and stride byte offsets, 128-byte
// swizzle: hopper_gemm.py's layout()), the kernel adds the start address.
__device__ inline u64 descriptor(u64 layout, unsigned address) { return layout | (u64)((address & 0x3FFFF) >> 4); }

// The epilogue stages each consumer's 64 x 256 tile in shared memory (rows padded by 16 bytes, so the fragment's
// 4-byte writes from 8 rows x 4 lanes hit 32 different banks), then moves it out in 16-byte pieces, a warp per
// 512-byte row: coalesced global stores (and, for swiglu_bwd, coalesced loads of g and u).
enum { PITCH = 2 * HALF * 2 + 16, STAGING_BYTES = 64 * PITCH };

template <class T>
__device__ inline void stage_fragment(unsigned char* staging, int warp, int lane, const float (&acc)[64], int col_offset)
{
    #pragma unroll
    for (int j = 0; j < 16; j++)
        #pragma unroll
        for (int half_row = 0; half_row < 2; half_row++) {
            Pack<T, 2> v;
            v.v[0] = T::store(acc[4 * j + 2 * half_row]);
            v.v[1] = T::store(acc[4 * j + 2 * half_row + 1]);
            const int row = warp * 16 + lane / 4 + half_row * 8, col = col_offset + 8 * j + 2 * (lane % 4);
            *reinterpret_cast<Pack<T, 2>*>(staging + row * PITCH + col * 2) = v;
        }
}

// sigmoid with the hardware's approximate exp and reciprocal (a few ulp of float, far below bf16's rounding): the
// precise expf and division cost ~3 us per tile in the epilogue, while the tensor cores wait.
__device__ inline float fast_sigmoid(float x) { return __fdividef(1.0f, 1.0f + __expf(-x)); }

// Named barrier of one consumer warpgroup (ids 1 and 2; 0 is __syncthreads).
__device__ inline void warpgroup_sync(int consumer) { asm volatile("bar.sync %0, 128;" :: "r"(consumer + 1) : "memory"); }

template <class T, class Mma, int Kind, int TransB>
__device__ void grouped_gemm(const TensorMap* a_map, const TensorMap* b_map, int k_size, u64 a_layout, u64 b_layout, Epilogue e,
                             int n_tiles, int m_tiles, int groups)
{
    extern __shared__ unsigned char raw[];
    // Swizzled tiles must start on 1024-byte boundaries for the swizzle pattern TMA writes to be the one wgmma reads.
    unsigned char* tiles = (unsigned char*)(((u64)raw + 1023) & ~(u64)1023);
    unsigned char* staging_all = tiles + STAGES * STAGE_BYTES;
    u64* bars = (u64*)(staging_all + 2 * STAGING_BYTES);           // full[STAGES] then empty[STAGES]
    const unsigned tiles_at = smem_address(tiles), full_at = smem_address(bars), empty_at = full_at + 8 * STAGES;

    const int warpgroup = threadIdx.x / 128, k_tiles = (k_size + BK - 1) / BK;
    const int tile_count = n_tiles * m_tiles * groups;

    if (threadIdx.x == 0) {
        for (int s = 0; s < STAGES; s++) {
            barrier_init(full_at + 8 * s, 1);
            barrier_init(empty_at + 8 * s, 8);    // lane 0 of each of the 8 consumer warps
        }
        asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
    }
    __syncthreads();

    // Persistent: CTA b takes tiles b, b + grid, ...; columns fastest, so the CTAs in flight share one group's
    // weights and a few row blocks of A in L2. The producer runs ahead into the next tile while consumers store.
    if (warpgroup == 0) {
        asm volatile("setmaxnreg.dec.sync.aligned.u32 40;");
        if (threadIdx.x == 0) {
            int it = 0;
            for (int tile = blockIdx.x; tile < tile_count; tile += gridDim.x) {
                const int n_tile = tile % n_tiles, m0 = (tile / n_tiles % m_tiles) * BM, group = tile / n_tiles / m_tiles;
                const int n0 = Kind == SWIGLU_FWD ? n_tile * HALF : n_tile * 2 * HALF;
                const int half_col[2] = { n0, Kind == SWIGLU_FWD ? e.hidden + n0 : n0 + HALF };
                for (int kt = 0; kt < k_tiles; kt++, it++) {
                    const int s = it % STAGES;
                    const unsigned stage = tiles_at + s * STAGE_BYTES, full = full_at + 8 * s;
                    barrier_wait(empty_at + 8 * s, ((it / STAGES) & 1) ^ 1);
                    barrier_expect(full, STAGE_BYTES);
                    tma_load(stage, a_map, full, kt * BK, group, m0);                           // A box (64 k, 1, 128 rows)
                    #pragma unroll
                    for (int h = 0; h < 2; h++) {
                        const unsigned half = stage + A_BYTES + h * HALF_BYTES;
                        if (TransB) {                                                             // B boxes (64 n, 64 k, 1)
                            tma_load(half, b_map, full, half_col[h], kt * BK, group);
                            tma_load(half + HALF_BYTES / 2, b_map, full, half_col[h] + 64, kt * BK, group);
                        } else {                                                                  // B box (64 k, 128 n, 1)
                            tma_load(half, b_map, full, kt * BK, half_col[h], group);
                        }
                    }
                }
            }
        }
        return;
    }

    asm volatile("setmaxnreg.inc.sync.aligned.u32 232;");
    const int consumer = warpgroup - 1, lane = threadIdx.x % 32, warp = (threadIdx.x / 32) % 4, thread = threadIdx.x % 128;
    unsigned char* staging = staging_all + consumer * STAGING_BYTES;
    typedef Pack<T, 8> P8;
    int it = 0;
    for (int tile = blockIdx.x; tile < tile_count; tile += gridDim.x) {
        const int n_tile = tile % n_tiles, m0 = (tile / n_tiles % m_tiles) * BM, group = tile / n_tiles / m_tiles;
        const int n0 = Kind == SWIGLU_FWD ? n_tile * HALF : n_tile * 2 * HALF;
        const int half_col[2] = { n0, Kind == SWIGLU_FWD ? e.hidden + n0 : n0 + HALF };

        float acc0[64], acc1[64];
        #pragma unroll
        for (int i = 0; i < 64; i++) { acc0[i] = 0.0f; acc1[i] = 0.0f; }
        for (int kt = 0; kt < k_tiles; kt++, it++) {
            const int s = it % STAGES;
            const unsigned stage = tiles_at + s * STAGE_BYTES;
            barrier_wait(full_at + 8 * s, (it / STAGES) & 1);
            pin(acc0); pin(acc1);
            asm volatile("wgmma.fence.sync.aligned;" ::: "memory");
            #pragma unroll
            for (int k = 0; k < BK / 16; k++) {
                // A: this consumer's 64 rows (64 x 128 B), K-major: a k16 step is 32 bytes into each swizzled row.
                const u64 a = descriptor(a_layout, stage + consumer * (64 * 128) + k * 32);
                // B: MN-major, a k16 step is 16 rows of 128 bytes; K-major, 32 bytes into each row.
                const unsigned b_step = TransB ? k * 16 * 128 : k * 32;
                Mma::template run<TransB>(acc0, a, descriptor(b_layout, stage + A_BYTES + b_step));
                Mma::template run<TransB>(acc1, a, descriptor(b_layout, stage + A_BYTES + HALF_BYTES + b_step));
            }
            asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory");
            pin(acc0); pin(acc1);
            // The previous k tile's wgmma have retired once at most this one is pending: its stage can be refilled.
            asm volatile("wgmma.wait_group.sync.aligned 1;" ::: "memory");
            if (kt > 0 && lane == 0) barrier_arrive(empty_at + 8 * ((it - 1) % STAGES));
        }
        asm volatile("wgmma.wait_group.sync.aligned 0;" ::: "memory");
        pin(acc0); pin(acc1);
        if (lane == 0) barrier_arrive(empty_at + 8 * ((it - 1) % STAGES));

        // Accumulator fragment of m64nNk16: register 4j + {0,1} is row (warp*16 + lane/4), columns 8j + 2(lane%4) + {0,1};
        // 4j + {2,3} the same columns 8 rows down. Staged as the storage type: where the unfused path rounds.
        const int row_base = m0 + consumer * 64;
        const i64 out_base = (i64)group * e.out_group, aux_base = (i64)group * e.aux_group;
        if (Kind == SWIGLU_FWD) {
            stage_fragment<T>(staging, warp, lane, acc0, 0);
            stage_fragment<T>(staging, warp, lane, acc1, HALF);
            #pragma unroll
            for (int i = 0; i < 64; i++) {                               // h, in place of the staged gate
                const float g = T::load(T::store(acc0[i]));
                acc0[i] = g * fast_sigmoid(g) * T::load(T::store(acc1[i]));
            }
            warpgroup_sync(consumer);
            for (int i = thread; i < 64 * 32; i += 128) {                 // gate_up: g to [n0, ...), u to [H + n0, ...)
                const int r = i / 32, c = (i % 32) * 8, col = n0 + c % HALF;
                if (row_base + r >= e.rows || col >= e.cols) continue;
                *reinterpret_cast<P8*>(e.out + out_base + (i64)(row_base + r) * e.out_row + (c < HALF ? 0 : e.hidden) + col) =
                    *reinterpret_cast<const P8*>(staging + r * PITCH + c * 2);
            }
            warpgroup_sync(consumer);
            stage_fragment<T>(staging, warp, lane, acc0, 0);
            warpgroup_sync(consumer);
            for (int i = thread; i < 64 * 16; i += 128) {                 // h to [n0, ...)
                const int r = i / 16, col = n0 + (i % 16) * 8;
                if (row_base + r >= e.rows || col >= e.cols) continue;
                *reinterpret_cast<P8*>(e.aux + aux_base + (i64)(row_base + r) * e.aux_row + col) =
                    *reinterpret_cast<const P8*>(staging + r * PITCH + (col - n0) * 2);
            }
        } else {
            stage_fragment<T>(staging, warp, lane, acc0, 0);
            stage_fragment<T>(staging, warp, lane, acc1, HALF);
            warpgroup_sync(consumer);
            // A warp per row, 16 rows per thread: in two batches of 8 rows, so that swiglu_bwd has 16 loads of g and u
            // in flight at once (the accumulators are dead by now) instead of waiting on each row's in turn.
            const int c = lane * 8, col = half_col[c / HALF] + c % HALF;
            #pragma unroll
            for (int batch = 0; batch < 2; batch++) {
                P8 g[8], u[8];
                if (Kind == SWIGLU_BWD) {
                    #pragma unroll
                    for (int i = 0; i < 8; i++) {
                        const int r = warp + 4 * (8 * batch + i);
                        if (row_base + r >= e.rows || col >= e.cols) continue;
                        const u16* gate_up = e.aux + aux_base + (i64)(row_base + r) * e.aux_row;
                        g[i] = *reinterpret_cast<const P8*>(gate_up + col);
                        u[i] = *reinterpret_cast<const P8*>(gate_up + e.hidden + col);
                    }
                }
                #pragma unroll
                for (int i = 0; i < 8; i++) {
                    const int r = warp + 4 * (8 * batch + i);
                    if (row_base + r >= e.rows || col >= e.cols) continue;
                    const P8 v = *reinterpret_cast<const P8*>(staging + r * PITCH + c * 2);
                    u16* out = e.out + out_base + (i64)(row_base + r) * e.out_row;
                    if (Kind == PLAIN) *reinterpret_cast<P8*>(out + col) = v;
                    else {
                        P8 dg, du;
                        #pragma unroll
                        for (int j = 0; j < 8; j++) {
                            const float dh = T::load(v.v[j]), gf = T::load(g[i].v[j]), uf = T::load(u[i].v[j]), s = fast_sigmoid(gf);
                            dg.v[j] = T::store(dh * uf * s * (1.0f + gf * (1.0f - s)));
                            du.v[j] = T::store(dh * gf * s);
                        }
                        *reinterpret_cast<P8*>(out + col) = dg;
                        *reinterpret_cast<P8*>(out + e.hidden + col) = du;
                    }
                }
            }
        }
        warpgroup_sync(consumer);                                      // staging is free for the next tile
    }
}

#define GROUPED_GEMM_ENTRY(T, NAME, MMA, KIND, KIND_NAME, TRANS_B, B_NAME)                                              \
extern "C" __global__ void __launch_bounds__(THREADS, 1) grouped_gemm_sm90_##NAME##_##KIND_NAME##_##B_NAME(          \
    const __grid_constant__ TensorMap a_map, const __grid_constant__ TensorMap b_map, int k_size,                      \
    u64 a_layout, u64 b_layout, Epilogue e, int n_tiles, int m_tiles, int groups)                                       \
    { grouped_gemm<T, MMA, KIND, TRANS_B>(&a_map, &b_map, k_size, a_layout, b_layout, e, n_tiles, m_tiles, groups); }

#define GROUPED_GEMM_KINDS(T, NAME, MMA)                                                                                \
    GROUPED_GEMM_ENTRY(T, NAME, MMA, PLAIN, plain, 1, mn)                                                              \
    GROUPED_GEMM_ENTRY(T, NAME, MMA, PLAIN, plain, 0, k)                                                               \
    GROUPED_GEMM_ENTRY(T, NAME, MMA, SWIGLU_FWD, swiglu_fwd, 1, mn)                                                    \
    GROUPED_GEMM_ENTRY(T, NAME, MMA, SWIGLU_BWD, swiglu_bwd, 0, k)

GROUPED_GEMM_KINDS(BF16, bf16, BF16Mma)
GROUPED_GEMM_KINDS(F16, f16, F16Mma)
