"""Times variants of the fused SwiGLU activation kernels on a GPU with CuPy (no .NET needed).

Prepends src/Kernels/Cuda/swiglu.cu (types and the shipped kernels) and adds variants that differ in
work per thread (U chunks of 16 bytes per operand per loop iteration), index width and math. Prints a
table of GB/s (bytes read + written) against a device-to-device copy measured in the same run.

    python3 deploy/gpu/experiments/swiglu_variants.py [rows] [H]
"""
import sys, statistics, pathlib
import cupy as cp

rows = int(sys.argv[1]) if len(sys.argv) > 1 else 30720
H = int(sys.argv[2]) if len(sys.argv) > 2 else 3072
root = pathlib.Path(__file__).resolve().parents[3]
shipped = (root / "src/Kernels/Cuda/swiglu.cu").read_text()

variants = r'''
template <class T, int V, int U, bool FAST, typename I>
__device__ void bwd_variant(const typename T::S* __restrict__ gate_up, const typename T::S* __restrict__ d_hidden,
                            typename T::S* __restrict__ d_gate_up, I rows, I H)
{
    typedef Pack<T, V> P;
    const I chunks = H / V, total = rows * chunks, stride = (I)gridDim.x * blockDim.x;
    for (I base = (I)blockIdx.x * blockDim.x + threadIdx.x; base < total; base += stride * U) {
        P g[U], u[U], dh[U]; I off[U], hoff[U];
        #pragma unroll
        for (int k = 0; k < U; k++) {
            const I i = base + k * stride;
            if (i < total) {
                const I row = i / chunks, col = (i - row * chunks) * V;
                off[k] = row * 2 * H + col; hoff[k] = row * H + col;
                g[k] = *reinterpret_cast<const P*>(gate_up + off[k]);
                u[k] = *reinterpret_cast<const P*>(gate_up + off[k] + H);
                dh[k] = *reinterpret_cast<const P*>(d_hidden + hoff[k]);
            }
        }
        #pragma unroll
        for (int k = 0; k < U; k++) {
            if (base + k * stride < total) {
                P dg, du;
                #pragma unroll
                for (int j = 0; j < V; j++) {
                    const float gf = T::load(g[k].v[j]), uf = T::load(u[k].v[j]), dhf = T::load(dh[k].v[j]);
                    const float s = FAST ? __fdividef(1.0f, 1.0f + __expf(-gf)) : 1.0f / (1.0f + expf(-gf));
                    dg.v[j] = T::store(dhf * uf * s * (1.0f + gf * (1.0f - s)));
                    du.v[j] = T::store(dhf * gf * s);
                }
                *reinterpret_cast<P*>(d_gate_up + off[k]) = dg;
                *reinterpret_cast<P*>(d_gate_up + off[k] + H) = du;
            }
        }
    }
}
#define BWD(U, FAST, I, TAG) extern "C" __global__ void bwd_u##U##_f##FAST##_##TAG(const u16* gu, const u16* dh, u16* dgu, I rows, I H) \
    { bwd_variant<BF16, 8, U, FAST, I>(gu, dh, dgu, rows, H); }
BWD(1, 0, i64, i64) BWD(2, 0, i64, i64) BWD(4, 0, i64, i64)
BWD(1, 1, i64, i64) BWD(2, 1, i64, i64)
BWD(1, 0, unsigned, u32) BWD(2, 0, unsigned, u32) BWD(4, 0, unsigned, u32)
BWD(1, 1, unsigned, u32) BWD(2, 1, unsigned, u32) BWD(4, 1, unsigned, u32)
'''
module = cp.RawModule(code=shipped + variants, options=("--std=c++17",))
dev = cp.cuda.Device()
sms = dev.attributes["MultiProcessorCount"]

def bench(fn, reps=50, warmup=5):
    for i in range(warmup): fn(i)
    times = []
    for i in range(reps):
        a, b = cp.cuda.Event(), cp.cuda.Event()
        a.record(); fn(i); b.record(); b.synchronize()
        times.append(cp.cuda.get_elapsed_time(a, b))
    return statistics.median(times)

sets = 4
gus = [cp.random.standard_normal((rows, 2 * H), dtype=cp.float32).astype(cp.float32) * 2 for _ in range(sets)]
def to_bf16(a):  # round-to-nearest-even float32 -> bf16 bits
    u = a.view(cp.uint32)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(cp.uint16)
gus = [to_bf16(g) for g in gus]
dhs = [to_bf16(cp.random.standard_normal((rows, H), dtype=cp.float32)) for _ in range(sets)]
out = cp.empty((rows, 2 * H), dtype=cp.uint16)
hid = cp.empty((rows, H), dtype=cp.uint16)

src = cp.random.standard_normal(1 << 28, dtype=cp.float32)
dst = cp.empty_like(src)
copy_ms = bench(lambda i: dst.__setitem__(slice(None), src))
copy_gbps = 2 * src.nbytes / copy_ms / 1e6
print(f"device {dev.id} SMs {sms}; copy {copy_gbps:.0f} GB/s; rows {rows} H {H}")

def reference(gu, dh):
    g = cp.left_shift(gu[:, :H].astype(cp.uint32), 16).view(cp.float32)
    u = cp.left_shift(gu[:, H:].astype(cp.uint32), 16).view(cp.float32)
    d = cp.left_shift(dh.astype(cp.uint32), 16).view(cp.float32)
    s = 1 / (1 + cp.exp(-g))
    return cp.concatenate([d * u * s * (1 + g * (1 - s)), d * g * s], axis=1)

def as_float(bits):
    return cp.left_shift(bits.astype(cp.uint32), 16).view(cp.float32)

bwd_bytes = 5 * rows * H * 2
fwd_bytes = 3 * rows * H * 2
results = []
threads = 256
chunks = rows * H // 8

fwd = module.get_function("swiglu_forward_bf16_v8")
grid = min((chunks + threads - 1) // threads, sms * 64)
ms = bench(lambda i: fwd((grid,), (threads,), (gus[i % sets], hid, cp.int64(rows), cp.int64(H))))
results.append(("shipped forward (grid cap 64/SM)", ms, fwd_bytes))

shipped_bwd = module.get_function("swiglu_backward_bf16_v8")
for cap in (64, 16, None):
    grid = (chunks + threads - 1) // threads if cap is None else min((chunks + threads - 1) // threads, sms * cap)
    ms = bench(lambda i: shipped_bwd((grid,), (threads,), (gus[i % sets], dhs[i % sets], out, cp.int64(rows), cp.int64(H))))
    results.append((f"shipped backward, grid cap {cap}/SM", ms, bwd_bytes))

ref = reference(gus[0], dhs[0])
for name in ["bwd_u1_f0_i64", "bwd_u2_f0_i64", "bwd_u4_f0_i64", "bwd_u1_f1_i64", "bwd_u2_f1_i64",
             "bwd_u1_f0_u32", "bwd_u2_f0_u32", "bwd_u4_f0_u32", "bwd_u1_f1_u32", "bwd_u2_f1_u32", "bwd_u4_f1_u32"]:
    fn = module.get_function(name)
    u = int(name.split("_")[1][1:])
    wide = name.endswith("i64")
    scalar = cp.int64 if wide else cp.uint32
    for cap in (16, None):
        full = (chunks + threads * u - 1) // (threads * u)
        grid = full if cap is None else min(full, sms * cap)
        out.fill(0xFFFF)   # NaN poison
        fn((grid,), (threads,), (gus[0], dhs[0], out, scalar(rows), scalar(H)))
        err = float(cp.linalg.norm(as_float(out) - ref) / cp.linalg.norm(ref))
        ms = bench(lambda i: fn((grid,), (threads,), (gus[i % sets], dhs[i % sets], out, scalar(rows), scalar(H))))
        results.append((f"{name}, grid cap {cap}/SM (err {err:.1e})", ms, bwd_bytes))

print("| variant | ms | GB/s | % of copy |")
print("| --- | ---: | ---: | ---: |")
for name, ms, nbytes in results:
    gbps = nbytes / ms / 1e6
    print(f"| {name} | {ms:.3f} | {gbps:.0f} | {100 * gbps / copy_gbps:.1f}% |")
