// Mean squared error and its gradient in one pass, compiled at run time by NVRTC after dtypes.cuh:
//   loss += sum over the block of (y - t)² / n      (float64, one atomic add per block; loss starts at 0)
//   dy    = (2 / n) * (y - t)
// y, t and dy are read or written once (V elements of 16 bytes per thread when n and the pointers allow it).

template <class T, int V>
__device__ void mse(const typename T::S* __restrict__ y, const typename T::S* __restrict__ t, typename T::S* __restrict__ dy,
                    double* __restrict__ loss, i64 n, float scale, double inv_n)
{
    typedef Pack<T, V> P;
    float sum = 0.0f;
    FOR_EACH_ITEM(i, n / V) {
        const P yv = reinterpret_cast<const P*>(y)[i], tv = reinterpret_cast<const P*>(t)[i];
        P dv;
        #pragma unroll
        for (int j = 0; j < V; j++) {
            const float d = T::load(yv.v[j]) - T::load(tv.v[j]);
            sum += d * d;
            dv.v[j] = T::store(scale * d);
        }
        reinterpret_cast<P*>(dy)[i] = dv;
    }
    block_sum_into(sum, loss, inv_n);
}

#define MSE_ENTRY_POINTS(T, NAME, V) \
extern "C" __global__ void mse_##NAME##_v##V(const T::S* y, const T::S* t, T::S* dy, double* loss, i64 n, float scale, double inv_n) \
    { mse<T, V>(y, t, dy, loss, n, scale, inv_n); }

FOR_EACH_VARIANT(MSE_ENTRY_POINTS)
