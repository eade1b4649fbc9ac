// Direct convolution on the GPU with shared-memory tiling (symbench's `direct-cupy`).
//
// The host (symbench/kernels/cupy_conv.py) prepends `typedef float T;` or
// `typedef double T;` and compiles this with NVRTC through cupy.RawModule,
// passing the tile sizes as -D macros (symbench.kernels.xp_conv.DirectTiles).
// The tests also compile it with g++ and a tiny CUDA shim (threads as
// std::threads, __syncthreads() as a barrier) to check the indexing on a CPU.
//
// Layouts (C-contiguous):
//   x (B, Ci, n) or (B, Ci, H, W);  h (Co, Ci, k) or (Co, Ci, kh, kw);
//   y (B, Co, nout) or (B, Co, oh, ow),  y[b, o] = sum_i conv(x[b, i], h[o, i]).
// Output m of the mode is index m + start of the full convolution, so the
// modes full / same / valid (and SciPy's swap in valid) differ only in
// `start` and the output size: full[f] = sum_t h[t] * x[f - t], 0 <= f - t < n.

#ifndef TILE1
#define TILE1 256  // threads per block, 1-D
#endif
#ifndef RPT1
#define RPT1 4     // outputs per thread, TILE1 apart (conflict-free shared reads)
#endif
#ifndef KC1
#define KC1 256    // filter taps per shared-memory chunk, 1-D
#endif
#ifndef TX2
#define TX2 16     // threads per block along x (columns), 2-D
#endif
#ifndef TY2
#define TY2 16     // threads per block along y (rows), 2-D
#endif
#ifndef RX2
#define RX2 2      // outputs per thread along x, TX2 apart
#endif
#ifndef RY2
#define RY2 2      // outputs per thread along y, TY2 apart
#endif
#ifndef KC2
#define KC2 16     // filter chunk side, 2-D
#endif

#define OUT1 (TILE1 * RPT1)
#define OTX (TX2 * RX2)
#define OTY (TY2 * RY2)
#define XSW (OTX + KC2 - 1)  // row stride of the 2-D input patch in shared memory

// grid (ceil(nout / OUT1), Co, B), block (TILE1)
extern "C" __global__ void conv1d(const T* __restrict__ x, const T* __restrict__ h, T* __restrict__ y,
                                  int B, int Ci, int Co, int n, int k, int nout, int start)
{
    __shared__ T xs[OUT1 + KC1 - 1];
    __shared__ T hs[KC1];
    const int tid = threadIdx.x;
    const int o = blockIdx.y;
    const int b = blockIdx.z;
    const long long m0 = (long long)blockIdx.x * OUT1;  // first output of this block
    const long long f0 = m0 + start;                    // its full-convolution index
    T acc[RPT1];
#pragma unroll
    for (int r = 0; r < RPT1; ++r) acc[r] = T(0);

    for (int i = 0; i < Ci; ++i) {
        const T* xi = x + ((long long)b * Ci + i) * n;
        const T* hi = h + ((long long)o * Ci + i) * k;
        for (int t0 = 0; t0 < k; t0 += KC1) {
            const int kc = min(KC1, k - t0);
            // Taps t0 .. t0+kc-1 applied to outputs f0 .. f0+OUT1-1 read
            // x[f0 - t0 - (kc-1)] .. x[f0 - t0 + OUT1 - 1]: a segment of OUT1 + kc - 1.
            const long long xbase = f0 - t0 - (kc - 1);
            const int seg = OUT1 + kc - 1;
            __syncthreads();  // the previous chunk is no longer read
            for (int j = tid; j < seg; j += TILE1) {
                const long long idx = xbase + j;
                xs[j] = (idx >= 0 && idx < n) ? xi[idx] : T(0);
            }
            for (int j = tid; j < kc; j += TILE1) hs[j] = hi[t0 + j];
            __syncthreads();
            // Output l = tid + r*TILE1 (full index f0 + l) needs x[f0 + l - (t0 + t)] = xs[l + kc-1 - t].
            for (int t = 0; t < kc; ++t) {
                const T hv = hs[t];
                const int base = tid + (kc - 1) - t;
#pragma unroll
                for (int r = 0; r < RPT1; ++r) acc[r] += hv * xs[base + r * TILE1];
            }
        }
    }
    T* yo = y + ((long long)b * Co + o) * nout;
#pragma unroll
    for (int r = 0; r < RPT1; ++r) {
        const long long m = m0 + tid + r * TILE1;
        if (m < nout) yo[m] = acc[r];
    }
}

// grid (tiles_y * tiles_x, Co, B), block (TX2, TY2)
extern "C" __global__ void conv2d(const T* __restrict__ x, const T* __restrict__ h, T* __restrict__ y,
                                  int B, int Ci, int Co, int H, int W, int kh, int kw,
                                  int oh, int ow, int sy, int sx, int tiles_x)
{
    __shared__ T xs[(OTY + KC2 - 1) * XSW];
    __shared__ T hs[KC2 * KC2];
    const int tx = threadIdx.x;
    const int ty = threadIdx.y;
    const int tid = ty * TX2 + tx;
    const int o = blockIdx.y;
    const int b = blockIdx.z;
    const int my0 = (blockIdx.x / tiles_x) * OTY;  // first output row / column of this tile
    const int mx0 = (blockIdx.x % tiles_x) * OTX;
    const int fy0 = my0 + sy;                      // in full-convolution coordinates
    const int fx0 = mx0 + sx;
    T acc[RY2][RX2];
#pragma unroll
    for (int ry = 0; ry < RY2; ++ry)
#pragma unroll
        for (int rx = 0; rx < RX2; ++rx) acc[ry][rx] = T(0);

    for (int i = 0; i < Ci; ++i) {
        const T* xi = x + ((long long)b * Ci + i) * H * W;
        const T* hi = h + ((long long)o * Ci + i) * kh * kw;
        for (int u0 = 0; u0 < kh; u0 += KC2) {
            const int kch = min(KC2, kh - u0);
            const int ybase = fy0 - u0 - (kch - 1);
            const int segh = OTY + kch - 1;
            for (int v0 = 0; v0 < kw; v0 += KC2) {
                const int kcw = min(KC2, kw - v0);
                const int xbase = fx0 - v0 - (kcw - 1);
                const int segw = OTX + kcw - 1;
                __syncthreads();  // the previous chunk is no longer read
                for (int j = tid; j < segh * segw; j += TX2 * TY2) {
                    const int r = j / segw, c = j - (j / segw) * segw;
                    const int yy = ybase + r, xx = xbase + c;
                    xs[r * XSW + c] = (yy >= 0 && yy < H && xx >= 0 && xx < W)
                                          ? xi[(long long)yy * W + xx] : T(0);
                }
                for (int j = tid; j < kch * kcw; j += TX2 * TY2) {
                    const int r = j / kcw, c = j - (j / kcw) * kcw;
                    hs[r * KC2 + c] = hi[(long long)(u0 + r) * kw + v0 + c];
                }
                __syncthreads();
                // Output (ly, lx) needs x[fy0+ly - (u0+u)][fx0+lx - (v0+v)] = xs[ly + kch-1 - u][lx + kcw-1 - v].
                for (int u = 0; u < kch; ++u) {
                    for (int v = 0; v < kcw; ++v) {
                        const T hv = hs[u * KC2 + v];
                        const int base = (ty + kch - 1 - u) * XSW + tx + kcw - 1 - v;
#pragma unroll
                        for (int ry = 0; ry < RY2; ++ry)
#pragma unroll
                            for (int rx = 0; rx < RX2; ++rx)
                                acc[ry][rx] += hv * xs[base + ry * TY2 * XSW + rx * TX2];
                    }
                }
            }
        }
    }
    T* yo = y + ((long long)b * Co + o) * oh * ow;
#pragma unroll
    for (int ry = 0; ry < RY2; ++ry) {
        const int m_y = my0 + ty + ry * TY2;
#pragma unroll
        for (int rx = 0; rx < RX2; ++rx) {
            const int m_x = mx0 + tx + rx * TX2;
            if (m_y < oh && m_x < ow) yo[(long long)m_y * ow + m_x] = acc[ry][rx];
        }
    }
}
