#!/usr/bin/env python3
"""The training step of `orchestrator bench-step`, written in eager PyTorch, to compare on the same GPU in the same run.

Same model and sizes: a trunk x = silu(features @ W + b) reshaped to (B, N, D_in), N grouped SwiGLU towers
D_in -> H -> D_out as strided batched matmuls with a fused Triton SwiGLU (forward and backward), MSE loss, AdamW on
every parameter; data resident on the GPU (2B random samples, each batch gathered by a seeded permutation).
Three optimizer variants:
  bf16-fused      bf16 parameters, torch.optim.AdamW(fused=True) with bf16 state
  fp32-master     bf16 parameters for compute, float32 master weights and moments (fused AdamW on the masters),
                  the bf16 copies refreshed after each step (what Megatron-style mixed precision does)
  fp32-autocast   float32 parameters, the forward under torch.autocast(bfloat16), fused AdamW in float32
Each step is timed by the host wall clock over many steps with no per-step synchronisation (PyTorch's best case).

  python3 deploy/gpu/step_reference.py [--steps 50] [--warmup 20] [--batch-size 2560] ...
"""
import argparse
import time

import torch
import torch.nn.functional as F

try:
    import triton
    import triton.language as tl
except ImportError:  # eager SwiGLU then
    triton = None

if triton is not None:
    @triton.jit
    def _swiglu_fwd(gu, h, total, H, BLOCK: tl.constexpr):
        i = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        mask = i < total
        row, col = i // H, i % H
        g = tl.load(gu + row * 2 * H + col, mask=mask).to(tl.float32)
        u = tl.load(gu + row * 2 * H + H + col, mask=mask).to(tl.float32)
        tl.store(h + i, (g * tl.sigmoid(g) * u).to(h.dtype.element_ty), mask=mask)

    @triton.jit
    def _swiglu_bwd(gu, dh, dgu, total, H, BLOCK: tl.constexpr):
        i = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        mask = i < total
        row, col = i // H, i % H
        g = tl.load(gu + row * 2 * H + col, mask=mask).to(tl.float32)
        u = tl.load(gu + row * 2 * H + H + col, mask=mask).to(tl.float32)
        d = tl.load(dh + i, mask=mask).to(tl.float32)
        s = tl.sigmoid(g)
        tl.store(dgu + row * 2 * H + col, (d * u * s * (1 + g * (1 - s))).to(dgu.dtype.element_ty), mask=mask)
        tl.store(dgu + row * 2 * H + H + col, (d * g * s).to(dgu.dtype.element_ty), mask=mask)


class SwiGlu(torch.autograd.Function):
    """h = silu(g) * u on gate_up (..., 2H) = [g | u]."""

    @staticmethod
    def forward(ctx, gate_up):
        H = gate_up.shape[-1] // 2
        h = torch.empty(*gate_up.shape[:-1], H, dtype=gate_up.dtype, device=gate_up.device)
        total = h.numel()
        _swiglu_fwd[(triton.cdiv(total, 1024),)](gate_up, h, total, H, BLOCK=1024)
        ctx.save_for_backward(gate_up)
        return h

    @staticmethod
    def backward(ctx, dh):
        (gate_up,) = ctx.saved_tensors
        H = gate_up.shape[-1] // 2
        dgu = torch.empty_like(gate_up)
        total = dh.numel()
        _swiglu_bwd[(triton.cdiv(total, 1024),)](gate_up, dh.contiguous(), dgu, total, H, BLOCK=1024)
        return dgu


def swiglu(gate_up):
    if triton is not None:
        return SwiGlu.apply(gate_up)
    g, u = gate_up.chunk(2, dim=-1)
    return F.silu(g) * u


def model_step(params, features, targets, a):
    w, b, wgu, wd = params
    B = features.shape[0]
    x = F.silu(torch.addmm(b, features, w)).view(B, a.groups, a.input)        # (B, N, D_in)
    gate_up = torch.bmm(x.transpose(0, 1), wgu)                               # (N, B, 2H): strided read of x
    out = torch.bmm(swiglu(gate_up), wd)                                      # (N, B, D_out)
    return F.mse_loss(out.transpose(0, 1), targets)                           # y (B, N, D_out) as a view


def run(variant, a, device):
    gen = torch.Generator(device=device).manual_seed(1)
    N, Fd, d, h, m = a.groups, a.features, a.input, a.hidden, a.output
    shapes = [(Fd, N * d), (N * d,), (N, d, 2 * h), (N, h, m)]
    scales = [Fd ** -0.5, 0.1, d ** -0.5, h ** -0.5]
    init = [torch.randn(s, device=device, generator=gen) * c for s, c in zip(shapes, scales)]
    samples = 2 * a.batch_size
    features = torch.randn(samples, Fd, device=device, generator=gen, dtype=torch.bfloat16)
    targets = torch.randn(samples, N, m, device=device, generator=gen, dtype=torch.bfloat16)
    order = [torch.randperm(samples, device=device, generator=gen)[: a.batch_size] for _ in range(8)]
    adam = dict(lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01, fused=True)

    if variant == "bf16-fused":
        params = [t.to(torch.bfloat16).requires_grad_() for t in init]
        opt = torch.optim.AdamW(params, **adam)

        def step(i):
            loss = model_step(params, features[order[i % 8]], targets[order[i % 8]], a)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            return loss
    elif variant == "fp32-master":
        params = [t.to(torch.bfloat16).requires_grad_() for t in init]
        masters = [t.clone().requires_grad_() for t in init]
        opt = torch.optim.AdamW(masters, **adam)

        def step(i):
            loss = model_step(params, features[order[i % 8]], targets[order[i % 8]], a)
            loss.backward()
            for p, mst in zip(params, masters):
                mst.grad = p.grad.float()
                p.grad = None
            opt.step()
            opt.zero_grad(set_to_none=True)
            with torch.no_grad():
                torch._foreach_copy_(params, masters)
            return loss
    elif variant == "fp32-autocast":
        params = [t.clone().requires_grad_() for t in init]
        opt = torch.optim.AdamW(params, **adam)

        def step(i):
            with torch.autocast("cuda", dtype=torch.bfloat16):
                loss = model_step(params, features[order[i % 8]], targets[order[i % 8]], a)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            return loss
    else:
        raise ValueError(variant)

    for i in range(a.warmup):
        loss = step(i)
    torch.cuda.synchronize()
    first = loss.item()
    start = time.perf_counter()
    for i in range(a.steps):
        loss = step(a.warmup + i)
    torch.cuda.synchronize()
    ms = (time.perf_counter() - start) * 1e3 / a.steps
    if not torch.isfinite(loss):
        raise RuntimeError(f"{variant}: the loss is {loss.item()}")
    return ms, first, loss.item()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch-size", type=int, default=2560)
    p.add_argument("--groups", type=int, default=12)
    p.add_argument("--features", type=int, default=1024)
    p.add_argument("--input", type=int, default=1024)
    p.add_argument("--hidden", type=int, default=3072)
    p.add_argument("--output", type=int, default=1024)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--repeats", type=int, default=3, help="timed runs per variant; the median is reported")
    p.add_argument("--variants", default="bf16-fused,fp32-master,fp32-autocast")
    a = p.parse_args()
    device = torch.device("cuda")
    print(f"PyTorch {torch.__version__}, {torch.cuda.get_device_name()}, triton {'yes' if triton else 'no'}; "
          f"B={a.batch_size}, N={a.groups}, D_feat={a.features}, {a.input}->{a.hidden}->{a.output}, bf16 compute; "
          f"host wall clock over {a.steps} steps after {a.warmup}, median of {a.repeats} runs")
    print()
    print("| PyTorch variant | ms/step | samples/s | loss first -> last |")
    print("| --- | ---: | ---: | --- |")
    for variant in a.variants.split(","):
        runs = sorted(run(variant, a, device) for _ in range(a.repeats))
        ms, first, last = runs[len(runs) // 2]
        print(f"| {variant} | {ms:.2f} | {a.batch_size * 1000 / ms:,.0f} | {first:.4f} -> {last:.4f} |", flush=True)
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
