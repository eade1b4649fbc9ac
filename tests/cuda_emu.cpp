// Runs symbench's CUDA kernels (symbench/kernels/direct_conv.cu) on a CPU, for the tests.
//
// A shim maps the CUDA constructs the kernels use onto C++20: each block of a
// launch runs in turn, each of its threads is a std::thread with its own
// threadIdx, __shared__ arrays are function statics (shared by the threads of
// the one block that runs), and __syncthreads() is a std::barrier. This checks
// the kernels' indexing, tiling and boundary handling -- not their speed, nor
// anything about the real GPU memory model.
//
// The test puts `typedef <type> T;` and the kernel source at the marker line
// below (between the shim and main) and compiles the result with g++.
//
// usage: emu KERNEL GX GY GZ BX BY BZ NINTS INT... XFILE HFILE YFILE NY
//   raw native-endian T arrays in and out; y starts as NaN so unwritten outputs show.

#include <barrier>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <string>
#include <thread>
#include <vector>
#include <algorithm>

struct EmuDim3 { unsigned x = 0, y = 0, z = 0; };
static thread_local EmuDim3 threadIdx;
static EmuDim3 blockIdx;
static std::barrier<>* emu_barrier = nullptr;

#define __global__
#define __shared__ static
#define __syncthreads() emu_barrier->arrive_and_wait()
using std::max;
using std::min;

// @@KERNEL@@

template <typename V>
static std::vector<V> read_file(const char* path) {
    std::vector<V> out;
    FILE* f = std::fopen(path, "rb");
    if (!f) { std::perror(path); std::exit(2); }
    V v;
    while (std::fread(&v, sizeof(V), 1, f) == 1) out.push_back(v);
    std::fclose(f);
    return out;
}

int main(int argc, char** argv) {
    if (argc < 10) { std::fprintf(stderr, "usage: see the header\n"); return 2; }
    int a = 1;
    const std::string name = argv[a++];
    const unsigned gx = std::atoi(argv[a++]), gy = std::atoi(argv[a++]), gz = std::atoi(argv[a++]);
    const unsigned bx = std::atoi(argv[a++]), by = std::atoi(argv[a++]), bz = std::atoi(argv[a++]);
    const int nints = std::atoi(argv[a++]);
    std::vector<int> iv;
    for (int i = 0; i < nints; ++i) iv.push_back(std::atoi(argv[a++]));
    std::vector<T> x = read_file<T>(argv[a++]);
    std::vector<T> h = read_file<T>(argv[a++]);
    const char* yfile = argv[a++];
    const long ny = std::atol(argv[a++]);
    std::vector<T> y(ny, std::numeric_limits<T>::quiet_NaN());

    const unsigned nthreads = bx * by * bz;
    for (unsigned z = 0; z < gz; ++z)
        for (unsigned yb = 0; yb < gy; ++yb)
            for (unsigned xb = 0; xb < gx; ++xb) {
                blockIdx = {xb, yb, z};
                std::barrier<> bar(nthreads);
                emu_barrier = &bar;
                std::vector<std::thread> threads;
                for (unsigned tz = 0; tz < bz; ++tz)
                    for (unsigned ty = 0; ty < by; ++ty)
                        for (unsigned tx = 0; tx < bx; ++tx)
                            threads.emplace_back([&, tx, ty, tz] {
                                threadIdx = {tx, ty, tz};
                                if (name == "conv1d")
                                    conv1d(x.data(), h.data(), y.data(), iv[0], iv[1], iv[2], iv[3], iv[4],
                                           iv[5], iv[6]);
                                else
                                    conv2d(x.data(), h.data(), y.data(), iv[0], iv[1], iv[2], iv[3], iv[4],
                                           iv[5], iv[6], iv[7], iv[8], iv[9], iv[10], iv[11]);
                            });
                for (auto& t : threads) t.join();
            }
    FILE* f = std::fopen(yfile, "wb");
    if (!f) { std::perror(yfile); return 2; }
    std::fwrite(y.data(), sizeof(T), y.size(), f);
    std::fclose(f);
    return 0;
}
