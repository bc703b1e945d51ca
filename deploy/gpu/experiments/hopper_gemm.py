"""Experiment harness for grouped_gemm_sm90.cu (beside this file) on a Hopper GPU, without .NET.

Compiles the kernel as the C# host compiles its kernels (NVRTC, src/Kernels/Cuda/dtypes.cuh first, here for sm_90a),
encodes its TMA tensor maps through the driver, checks every kernel kind against PyTorch in float32 on random data (tile multiples, tails, N=1,
odd batch) and times it against PyTorch's cuBLAS on the seed shape. Prints tables; see docs/kernel-notes.md.

    python3 deploy/gpu/experiments/hopper_gemm.py [--quick] [--lbo-sbo-swap] [--profile]

--lbo-sbo-swap tries the other assignment of the MN-major descriptor's byte offsets (wrong: it was the check that
the right one is right); --profile launches each kernel once on the seed shape, for ncu.
"""
import ctypes, os, sys, time
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
CUDA_DIR = os.path.join(HERE, "..", "..", "..", "src", "Kernels", "Cuda")
SITE = os.path.dirname(os.path.dirname(torch.__file__))
nvrtc = ctypes.CDLL(os.path.join(SITE, "nvidia", "cu13", "lib", "libnvrtc.so.13"))
cuda = ctypes.CDLL("libcuda.so.1")
c_void_p, c_int, c_uint, c_u64 = ctypes.c_void_p, ctypes.c_int, ctypes.c_uint, ctypes.c_uint64


def check(result, what):
    if result != 0:
        name = ctypes.c_char_p()
        cuda.cuGetErrorName(result, ctypes.byref(name))
        raise RuntimeError(f"{what} failed: {result} {name.value}")


def compile_module():
    source = open(os.path.join(CUDA_DIR, "dtypes.cuh")).read() + "\n" + open(os.path.join(HERE, "grouped_gemm_sm90.cu")).read()
    prog = c_void_p()
    assert nvrtc.nvrtcCreateProgram(ctypes.byref(prog), source.encode(), b"grouped_gemm_sm90.cu", 0, None, None) == 0
    opts = [b"--gpu-architecture=sm_90a", b"--std=c++17", b"-default-device", b"--ptxas-options=-v"]
    arr = (ctypes.c_char_p * len(opts))(*opts)
    rc = nvrtc.nvrtcCompileProgram(prog, len(opts), arr)
    size = ctypes.c_size_t()
    nvrtc.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
    log = ctypes.create_string_buffer(size.value)
    nvrtc.nvrtcGetProgramLog(prog, log)
    text = log.value.decode(errors="replace")
    print("=== NVRTC log (registers, spills, warnings)")
    print("\n".join(l for l in text.splitlines() if "bf16" in l or "error" in l or "warning" in l or "spill" in l or "Used" in l) or "(empty)")
    if rc != 0:
        print(text)
        raise SystemExit("compile failed")
    nvrtc.nvrtcGetCUBINSize(prog, ctypes.byref(size))
    cubin = ctypes.create_string_buffer(size.value)
    nvrtc.nvrtcGetCUBIN(prog, cubin)
    module = c_void_p()
    check(cuda.cuModuleLoadData(ctypes.byref(module), cubin), "cuModuleLoadData")
    return module


SMEM = 3 * (128 * 64 * 2 + 2 * 128 * 64 * 2) + 2 * 64 * 528 + 64 + 1024
SMS = 132
DTYPE_CODE = {torch.bfloat16: 9, torch.float16: 6}


def tensor_map(t, dims, strides_elems, box):
    """dims/strides innermost first, in elements; strides has rank-1 entries (the inner stride is 1)."""
    raw = ctypes.create_string_buffer(128 + 64)          # a CUtensorMap must be 64-byte aligned
    tm = (ctypes.c_uint64 * 16).from_address((ctypes.addressof(raw) + 63) & ~63)
    tm._raw = raw
    es = t.element_size()
    gd = (c_u64 * 3)(*dims)
    gs = (c_u64 * 2)(*[s * es for s in strides_elems])
    bd = (c_uint * 3)(*box)
    el = (c_uint * 3)(1, 1, 1)
    check(cuda.cuTensorMapEncodeTiled(tm, c_int(DTYPE_CODE[t.dtype]), c_uint(3), c_void_p(t.data_ptr()), gd, gs, bd, el,
                                      c_int(0), c_int(3), c_int(2), c_int(0)), "cuTensorMapEncodeTiled")
    return tm


def layout(lbo, sbo):
    return ((lbo & 0x3FFFF) >> 4) << 16 | ((sbo & 0x3FFFF) >> 4) << 32 | 1 << 62


SWAP = "--lbo-sbo-swap" in sys.argv
K_LAYOUT = layout(16, 1024)
MN_LAYOUT = layout(1024, 8192) if SWAP else layout(8192, 1024)


class Epilogue(ctypes.Structure):
    _fields_ = [("out", c_u64), ("out_row", ctypes.c_int64), ("out_group", ctypes.c_int64),
                ("aux", c_u64), ("aux_row", ctypes.c_int64), ("aux_group", ctypes.c_int64),
                ("rows", c_int), ("cols", c_int), ("hidden", c_int)]


class Kernels:
    def __init__(self, module):
        self.module, self.functions = module, {}

    def function(self, name):
        if name not in self.functions:
            f = c_void_p()
            check(cuda.cuModuleGetFunction(ctypes.byref(f), self.module, name.encode()), name)
            check(cuda.cuFuncSetAttribute(f, c_int(8), c_int(SMEM)), "cuFuncSetAttribute")   # MAX_DYNAMIC_SHARED_SIZE_BYTES
            self.functions[name] = f
        return self.functions[name]

    def launch(self, name, grid, a_map, b_map, k, b_layout, epi):
        f = self.function(name)
        kk, al, bl = c_int(k), c_u64(K_LAYOUT), c_u64(b_layout)
        nt, mt, gt = c_int(grid[0]), c_int(grid[1]), c_int(grid[2])
        args = (c_void_p * 9)(ctypes.addressof(a_map), ctypes.addressof(b_map), ctypes.addressof(kk),
                              ctypes.addressof(al), ctypes.addressof(bl), ctypes.addressof(epi),
                              ctypes.addressof(nt), ctypes.addressof(mt), ctypes.addressof(gt))
        self._keep = (a_map, b_map, kk, al, bl, epi, nt, mt, gt, args)
        ctas = min(grid[0] * grid[1] * grid[2], SMS)
        check(cuda.cuLaunchKernel(f, c_uint(ctas), c_uint(1), c_uint(1), c_uint(384), c_uint(1), c_uint(1),
                                  c_uint(SMEM), c_void_p(0), args, None), name)


def cdiv(a, b): return (a + b - 1) // b


def suffix(dtype): return "bf16" if dtype == torch.bfloat16 else "f16"


def a_map(x):                      # x (M, G, K)
    M, G, K = x.shape
    return tensor_map(x, (K, G, M), (K, G * K), (64, 1, 128))


def w_mn_map(w):                   # w (G, K, cols): MN-major B
    G, K, C = w.shape
    return tensor_map(w, (C, K, G), (C, K * C), (64, 64, 1))


def w_k_map(w):                    # w (G, cols, K): K-major B (the weight's transpose is read)
    G, C, K = w.shape
    return tensor_map(w, (K, C, G), (K, C * K), (64, 128, 1))


def plain_mn(ks, x, w):            # y = x @ w[g];  x (M, G, K), w (G, K, C) -> (M, G, C)
    M, G, K = x.shape; C = w.shape[2]
    y = torch.empty(M, G, C, dtype=x.dtype, device=x.device)
    e = Epilogue(y.data_ptr(), G * C, C, 0, 0, 0, M, C, 0)
    ks.launch(f"grouped_gemm_sm90_{suffix(x.dtype)}_plain_mn", (cdiv(C, 256), cdiv(M, 128), G), a_map(x), w_mn_map(w), K, MN_LAYOUT, e)
    return y


def plain_k(ks, x, w):             # y = x @ w[g]ᵀ;  x (M, G, K), w (G, C, K) -> (M, G, C)
    M, G, K = x.shape; C = w.shape[1]
    y = torch.empty(M, G, C, dtype=x.dtype, device=x.device)
    e = Epilogue(y.data_ptr(), G * C, C, 0, 0, 0, M, C, 0)
    ks.launch(f"grouped_gemm_sm90_{suffix(x.dtype)}_plain_k", (cdiv(C, 256), cdiv(M, 128), G), a_map(x), w_k_map(w), K, K_LAYOUT, e)
    return y


def swiglu_fwd(ks, x, wgu):        # x (M, G, K), wgu (G, K, 2H) -> gate_up (M, G, 2H), h (M, G, H)
    M, G, K = x.shape; H = wgu.shape[2] // 2
    gu = torch.empty(M, G, 2 * H, dtype=x.dtype, device=x.device)
    h = torch.empty(M, G, H, dtype=x.dtype, device=x.device)
    e = Epilogue(gu.data_ptr(), G * 2 * H, 2 * H, h.data_ptr(), G * H, H, M, H, H)
    ks.launch(f"grouped_gemm_sm90_{suffix(x.dtype)}_swiglu_fwd_mn", (cdiv(H, 128), cdiv(M, 128), G), a_map(x), w_mn_map(wgu), K, MN_LAYOUT, e)
    return gu, h


def swiglu_bwd(ks, dout, wd, gu):  # dout (M, G, D), wd (G, H, D), gu (M, G, 2H) -> dgu (M, G, 2H)
    M, G, D = dout.shape; H = wd.shape[1]
    dgu = torch.empty_like(gu)
    e = Epilogue(dgu.data_ptr(), G * 2 * H, 2 * H, gu.data_ptr(), G * 2 * H, 2 * H, M, H, H)
    ks.launch(f"grouped_gemm_sm90_{suffix(dout.dtype)}_swiglu_bwd_k", (cdiv(H, 256), cdiv(M, 128), G), a_map(dout), w_k_map(wd), D, K_LAYOUT, e)
    return dgu


def ref_mm(x, w):                  # float32 reference of the grouped product, (M, G, K) @ (G, K, C)
    return torch.einsum("mgk,gkc->mgc", x.float(), w.float())


def rel(a, b):
    a, b = a.float(), b.float()
    return ((a - b).norm() / b.norm().clamp_min(1e-30)).item(), ((a - b).abs().max() / b.abs().max().clamp_min(1e-30)).item()


def correctness(ks, dtype, M, G, K, H, D):
    torch.manual_seed(M * 7 + G * 13 + K + H + D)
    dev = "cuda"
    x = torch.randn(M, G, K, device=dev).to(dtype)
    wgu = (torch.randn(G, K, 2 * H, device=dev) / K ** 0.5).to(dtype)
    wd = (torch.randn(G, H, D, device=dev) / H ** 0.5).to(dtype)
    dout = torch.randn(M, G, D, device=dev).to(dtype)
    rows = []
    gu, h = swiglu_fwd(ks, x, wgu)
    gu_ref = ref_mm(x, wgu)
    rows.append(("swiglu_fwd gate_up", *rel(gu, gu_ref)))
    g, u = gu.float()[..., :H], gu.float()[..., H:]
    rows.append(("swiglu_fwd h", *rel(h, (torch.nn.functional.silu(g) * u).to(dtype))))
    y = plain_mn(ks, h, wd)
    rows.append(("plain_mn (down)", *rel(y, ref_mm(h, wd))))
    dgu = swiglu_bwd(ks, dout, wd, gu)
    dh = ref_mm(dout, wd.transpose(1, 2)).to(dtype).float()
    s = torch.sigmoid(g)
    dg_ref, du_ref = dh * u * s * (1 + g * (1 - s)), dh * g * s
    rows.append(("swiglu_bwd dgate", *rel(dgu[..., :H], dg_ref)))
    rows.append(("swiglu_bwd dup", *rel(dgu[..., H:], du_ref)))
    dx = plain_k(ks, dgu, wgu)
    rows.append(("plain_k (dX)", *rel(dx, ref_mm(dgu, wgu.transpose(1, 2)))))
    torch.cuda.synchronize()
    return rows


def bench(fn, reps=50, warm=5):
    for _ in range(warm): fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    times = []
    for _ in range(reps):
        start.record(); fn(); end.record(); end.synchronize()
        times.append(start.elapsed_time(end))
    times.sort()
    return times[len(times) // 2]


def speed(ks, dtype, M=2560, G=12, K=1024, H=3072, D=1024):
    dev = "cuda"
    x = torch.randn(M, G, K, device=dev).to(dtype)
    wgu = (torch.randn(G, K, 2 * H, device=dev) / K ** 0.5).to(dtype)
    wd = (torch.randn(G, H, D, device=dev) / H ** 0.5).to(dtype)
    dout = torch.randn(M, G, D, device=dev).to(dtype)
    gu, h = swiglu_fwd(ks, x, wgu)
    a = torch.randn(8192, 8192, device=dev).to(dtype); b = torch.randn(8192, 8192, device=dev).to(dtype)
    t_sq = bench(lambda: a @ b)
    ceiling = 2 * 8192 ** 3 / t_sq / 1e9
    xg, hg, dg = x.transpose(0, 1), h.transpose(0, 1), dout.transpose(0, 1)
    gug = gu.transpose(0, 1)
    rows = [("8192^3 matmul (torch)", t_sq, 2 * 8192 ** 3)]
    f_gu = 2 * M * G * K * 2 * H; f_d = 2 * M * G * H * D
    rows.append(("gate_up GEMM, torch bmm (cuBLAS)", bench(lambda: torch.bmm(xg, wgu)), f_gu))
    rows.append(("gate_up + SwiGLU fused (ours)", bench(lambda: swiglu_fwd(ks, x, wgu)), f_gu))
    rows.append(("down GEMM, torch bmm", bench(lambda: torch.bmm(hg, wd)), f_d))
    rows.append(("down GEMM plain_mn (ours)", bench(lambda: plain_mn(ks, h, wd)), f_d))
    rows.append(("dHidden GEMM, torch bmm", bench(lambda: torch.bmm(dg, wd.transpose(1, 2))), f_d))
    rows.append(("dHidden + swiglu' fused (ours)", bench(lambda: swiglu_bwd(ks, dout, wd, gu)), f_d))
    rows.append(("dX GEMM, torch bmm", bench(lambda: torch.bmm(gug, wgu.transpose(1, 2))), f_gu))
    rows.append(("dX GEMM plain_k (ours)", bench(lambda: plain_k(ks, gu, wgu)), f_gu))
    print(f"\n=== speed, {dtype}, M={M} G={G} K={K} H={H} D={D} (median of 50 after 5 warm-ups, CUDA events)")
    print(f"| kernel | ms | TFLOP/s | % of square |\n| --- | --- | --- | --- |")
    for name, t, flops in rows:
        rate = flops / t / 1e9
        print(f"| {name} | {t:.3f} | {rate:.0f} | {100 * rate / ceiling:.1f} |")


def main():
    global SMS
    torch.zeros(1, device="cuda")
    SMS = torch.cuda.get_device_properties(0).multi_processor_count
    check(cuda.cuInit(0), "cuInit")
    print(torch.cuda.get_device_name(), "torch", torch.__version__, "MN layout", "swapped" if SWAP else "lbo=8192,sbo=1024")
    ks = Kernels(compile_module())
    if "--profile" in sys.argv:                       # one launch of each on the seed shape, for ncu
        dtype, (M, G, K, H, D) = torch.bfloat16, (2560, 12, 1024, 3072, 1024)
        x = torch.randn(M, G, K, device="cuda").to(dtype)
        wgu = (torch.randn(G, K, 2 * H, device="cuda") / K ** 0.5).to(dtype)
        wd = (torch.randn(G, H, D, device="cuda") / H ** 0.5).to(dtype)
        gu, h = swiglu_fwd(ks, x, wgu)
        plain_mn(ks, h, wd)
        swiglu_bwd(ks, torch.randn(M, G, D, device="cuda").to(dtype), wd, gu)
        torch.bmm(x.transpose(0, 1), wgu)
        torch.cuda.synchronize()
        return
    shapes = [(2560, 12, 1024, 3072, 1024), (256, 2, 128, 256, 256), (300, 3, 200, 136, 72), (129, 1, 64, 128, 264),
              (1, 1, 8, 8, 8), (77, 5, 1032, 520, 40), (64, 3, 72, 200, 136)]
    print("\n=== correctness against float32 PyTorch (relative Frobenius error, max error / max |ref|)")
    print("| dtype | M G K H D | output | rel fro | rel max |\n| --- | --- | --- | --- | --- |")
    worst = 0.0
    for dtype in (torch.bfloat16, torch.float16):
        for shape in (shapes[:2] if "--quick" in sys.argv else shapes):
            try:
                for name, fro, mx in correctness(ks, dtype, *shape):
                    worst = max(worst, fro)
                    print(f"| {suffix(dtype)} | {' '.join(map(str, shape))} | {name} | {fro:.2e} | {mx:.2e} |")
            except Exception as ex:
                print(f"| {suffix(dtype)} | {' '.join(map(str, shape))} | FAILED | {ex} | |")
                worst = 1.0
    print("worst relative error", worst)
    speed(ks, torch.bfloat16)
    if '--quick' not in sys.argv:
        speed(ks, torch.bfloat16, M=8192, G=4, K=1024, H=4096, D=1024)


if __name__ == "__main__":
    main()
