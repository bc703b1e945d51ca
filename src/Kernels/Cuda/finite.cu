// The count of NaN and infinite elements of a tensor, compiled at run time by NVRTC after dtypes.cuh: added to *count
// (float64, zero before the launch), so the step's input checks cost one read of each input and no host sync.

template <class T, int V>
__device__ void count_nonfinite(const typename T::S* __restrict__ x, i64 n, double* __restrict__ count)
{
    typedef Pack<T, V> P;
    float bad = 0.0f;
    FOR_EACH_ITEM(i, n / V) {
        const P v = reinterpret_cast<const P*>(x)[i];
        #pragma unroll
        for (int j = 0; j < V; j++) bad += is_finite_value(T::load(v.v[j])) ? 0.0f : 1.0f;
    }
    block_sum_into(bad, count, 1.0);
}

#define COUNT_ENTRY_POINTS(T, NAME, V) \
extern "C" __global__ void count_nonfinite_##NAME##_v##V(const T::S* x, i64 n, double* count) { count_nonfinite<T, V>(x, n, count); }

FOR_EACH_VARIANT(COUNT_ENTRY_POINTS)
