// Fused SwiGLU activation kernels, compiled at run time by NVRTC after dtypes.cuh.
//
// gate_up is (rows, 2H): gate g in columns [0, H), up u in [H, 2H). hidden and d_hidden are (rows, H).
//   forward:  h  = silu(g) * u
//   backward: dg = dh * u * s * (1 + g * (1 - s)),  du = dh * g * s,   s = sigmoid(g)
// One read of every input and one write of every output. Each thread moves 16 bytes per operand
// (V elements) when H and the pointers allow it, otherwise one element (V = 1). Math is in float.

template <class T, int V>
__device__ void swiglu_forward(const typename T::S* __restrict__ gate_up, typename T::S* __restrict__ hidden, i64 rows, i64 H)
{
    typedef Pack<T, V> P;
    const i64 chunks = H / V, total = rows * chunks;
    FOR_EACH_ITEM(i, total) {
        const i64 row = i / chunks, col = (i - row * chunks) * V;
        const P g = *reinterpret_cast<const P*>(gate_up + row * 2 * H + col);
        const P u = *reinterpret_cast<const P*>(gate_up + row * 2 * H + H + col);
        P h;
        #pragma unroll
        for (int j = 0; j < V; j++) {
            const float gf = T::load(g.v[j]);
            h.v[j] = T::store(gf * sigmoidf(gf) * T::load(u.v[j]));
        }
        *reinterpret_cast<P*>(hidden + row * H + col) = h;
    }
}

template <class T, int V>
__device__ void swiglu_backward(const typename T::S* __restrict__ gate_up, const typename T::S* __restrict__ d_hidden,
                                typename T::S* __restrict__ d_gate_up, i64 rows, i64 H)
{
    typedef Pack<T, V> P;
    const i64 chunks = H / V, total = rows * chunks;
    FOR_EACH_ITEM(i, total) {
        const i64 row = i / chunks, col = (i - row * chunks) * V;
        const P g = *reinterpret_cast<const P*>(gate_up + row * 2 * H + col);
        const P u = *reinterpret_cast<const P*>(gate_up + row * 2 * H + H + col);
        const P dh = *reinterpret_cast<const P*>(d_hidden + row * H + col);
        P dg, du;
        #pragma unroll
        for (int j = 0; j < V; j++) {
            const float gf = T::load(g.v[j]), uf = T::load(u.v[j]), dhf = T::load(dh.v[j]);
            const float s = sigmoidf(gf);
            dg.v[j] = T::store(dhf * uf * s * (1.0f + gf * (1.0f - s)));
            du.v[j] = T::store(dhf * gf * s);
        }
        *reinterpret_cast<P*>(d_gate_up + row * 2 * H + col) = dg;
        *reinterpret_cast<P*>(d_gate_up + row * 2 * H + H + col) = du;
    }
}

#define SWIGLU_ENTRY_POINTS(T, NAME, V)                                                                    \
extern "C" __global__ void swiglu_forward_##NAME##_v##V(const T::S* gu, T::S* h, i64 rows, i64 H)          \
    { swiglu_forward<T, V>(gu, h, rows, H); }                                                              \
extern "C" __global__ void swiglu_backward_##NAME##_v##V(const T::S* gu, const T::S* dh, T::S* dgu, i64 rows, i64 H) \
    { swiglu_backward<T, V>(gu, dh, dgu, rows, H); }

FOR_EACH_VARIANT(SWIGLU_ENTRY_POINTS)
