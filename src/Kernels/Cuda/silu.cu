// The trunk's activation gradient in one pass, compiled at run time by NVRTC after dtypes.cuh:
//   d_pre = dx * silu'(pre),   silu'(z) = s * (1 + z * (1 - s)),  s = sigmoid(z)
// dx and pre are read once and d_pre written once (V elements of 16 bytes per thread when n and the pointers allow it).

template <class T, int V>
__device__ void silu_backward(const typename T::S* __restrict__ dx, const typename T::S* __restrict__ pre,
                              typename T::S* __restrict__ d_pre, i64 n)
{
    typedef Pack<T, V> P;
    FOR_EACH_ITEM(i, n / V) {
        const P dv = reinterpret_cast<const P*>(dx)[i], zv = reinterpret_cast<const P*>(pre)[i];
        P out;
        #pragma unroll
        for (int j = 0; j < V; j++) {
            const float z = T::load(zv.v[j]), s = sigmoidf(z);
            out.v[j] = T::store(T::load(dv.v[j]) * s * (1.0f + z * (1.0f - s)));
        }
        reinterpret_cast<P*>(d_pre)[i] = out;
    }
}

#define SILU_ENTRY_POINTS(T, NAME, V) \
extern "C" __global__ void silu_backward_##NAME##_v##V(const T::S* dx, const T::S* pre, T::S* d_pre, i64 n) \
    { silu_backward<T, V>(dx, pre, d_pre, n); }

FOR_EACH_VARIANT(SILU_ENTRY_POINTS)
