// Fused multi-tensor AdamW, compiled at run time by NVRTC after dtypes.cuh. One launch updates every tensor of an
// optimizer (a tower shard's two weights, the trunk's weight and bias) with torch.optim.AdamW's formula in float:
//   p  = p * (1 - lr * wd)
//   m  = b1 * m + (1 - b1) * g
//   v  = b2 * v + (1 - b2) * g²
//   p -= step_size * m / (sqrt(v) / bc2_sqrt + eps)      step_size = lr / (1 - b1^t), bc2_sqrt = sqrt(1 - b2^t)
// p (the float32 master), m and v are read and written once, g is read once, and for half-precision jobs the
// working copy the GEMMs read (g's type) is written once with p's new value rounded: 28 bytes per parameter.
// Each thread updates 4 consecutive elements of one tensor: 16-byte accesses of p, m and v, 8 bytes of g and the copy.

#define MAX_TENSORS 8
#define CHUNK 4

// Laid out as AdamWTensors in FusedAdamW.cs; passed by value and read in place (__grid_constant__).
struct AdamWTensors {
    float* master[MAX_TENSORS];
    float* exp_avg[MAX_TENSORS];
    float* exp_avg_sq[MAX_TENSORS];
    const void* grad[MAX_TENSORS];
    void* working[MAX_TENSORS];          // null: no working copy (float32 jobs)
    i64 numel[MAX_TENSORS];
    i64 first_chunk[MAX_TENSORS + 1];    // chunks of CHUNK elements before tensor k; first_chunk[count] is the total
    int count;
};

// 1 - beta1 and 1 - beta2 come from the host in float64: 1 - 0.999f in float is 4.7e-5 off 0.001, a constant error in v.
struct AdamWStep { float decay, beta1, one_minus_beta1, beta2, one_minus_beta2, eps, step_size, bias_correction2_sqrt; };

__device__ inline void adamw_element(float& p, float& m, float& v, float g, const AdamWStep& s)
{
    p *= s.decay;
    m = s.beta1 * m + s.one_minus_beta1 * g;
    v = s.beta2 * v + s.one_minus_beta2 * g * g;
    p -= s.step_size * m / (sqrtf(v) / s.bias_correction2_sqrt + s.eps);
}

template <class T>
__device__ void adamw(const AdamWTensors& t, const AdamWStep& s)
{
    typedef typename T::S S;
    typedef Pack<T, CHUNK> P;
    FOR_EACH_ITEM(c, t.first_chunk[t.count]) {
        int k = 0;
        while (c >= t.first_chunk[k + 1]) k++;
        const i64 begin = (c - t.first_chunk[k]) * CHUNK, n = t.numel[k];
        float* p = t.master[k] + begin;
        float* m = t.exp_avg[k] + begin;
        float* v = t.exp_avg_sq[k] + begin;
        const S* g = static_cast<const S*>(t.grad[k]) + begin;
        S* w = t.working[k] ? static_cast<S*>(t.working[k]) + begin : nullptr;
        if (begin + CHUNK <= n) {
            float4 pv = *reinterpret_cast<float4*>(p), mv = *reinterpret_cast<float4*>(m), vv = *reinterpret_cast<float4*>(v);
            const P gv = *reinterpret_cast<const P*>(g);
            adamw_element(pv.x, mv.x, vv.x, T::load(gv.v[0]), s);
            adamw_element(pv.y, mv.y, vv.y, T::load(gv.v[1]), s);
            adamw_element(pv.z, mv.z, vv.z, T::load(gv.v[2]), s);
            adamw_element(pv.w, mv.w, vv.w, T::load(gv.v[3]), s);
            *reinterpret_cast<float4*>(p) = pv;
            *reinterpret_cast<float4*>(m) = mv;
            *reinterpret_cast<float4*>(v) = vv;
            if (w) {
                P wv;
                wv.v[0] = T::store(pv.x); wv.v[1] = T::store(pv.y); wv.v[2] = T::store(pv.z); wv.v[3] = T::store(pv.w);
                *reinterpret_cast<P*>(w) = wv;
            }
        } else {
            for (i64 j = 0; begin + j < n; j++) {   // the tail of a tensor whose size is not a multiple of CHUNK
                float pj = p[j], mj = m[j], vj = v[j];
                adamw_element(pj, mj, vj, T::load(g[j]), s);
                p[j] = pj; m[j] = mj; v[j] = vj;
                if (w) w[j] = T::store(pj);
            }
        }
    }
}

#define ADAMW_ENTRY_POINT(T, NAME) \
extern "C" __global__ void adamw_##NAME(const __grid_constant__ AdamWTensors t, const AdamWStep s) { adamw<T>(t, s); }

ADAMW_ENTRY_POINT(F32, f32)
ADAMW_ENTRY_POINT(BF16, bf16)
ADAMW_ENTRY_POINT(F16, f16)
