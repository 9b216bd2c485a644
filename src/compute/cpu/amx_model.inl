// Private to src/compute/cpu: a software model of the five AMX instructions the AMX compact
// kernels use (TILELOADD, TILESTORED, TILEZERO, TDPBF16PS, TDPBSUD), written from the pseudocode
// of Intel's SDM for eight tiles of 16 rows x 64 bytes. amx_driver.inl runs over it in
// kernels_compact_amx_model.cpp, so the kernels' tile logic (the query packing, the tile walk,
// the row tails, the decoding of the sums) runs and is tested on CPUs without AMX; the real
// instructions run where the CPU has them (kernels_compact_amx.cpp). Plain C++, no intrinsics;
// included inside the unit's anonymous namespace (internal linkage, as every kernel .inl).

struct AmxModel {
  static constexpr int kRows = 16;
  static constexpr int kRowBytes = 64;

  struct State {
    alignas(64) unsigned char tile[8][kRows][kRowBytes];
    bool configured = false;
  };
  // Tile state is per thread, as the hardware's is.
  static State& state() {
    thread_local State s;
    return s;
  }
  static void configure() { state().configured = true; }
  static void release() { state().configured = false; }

  template <int T>
  static unsigned char (&tile())[kRows][kRowBytes] {
    static_assert(T >= 0 && T < 8, "AMX has tiles 0..7");
    State& s = state();
    // A tile instruction without a loaded configuration raises #UD on the hardware.
    if (!s.configured) __builtin_trap();
    return s.tile[T];
  }
  template <int T>
  static void zero() {
    std::memset(tile<T>(), 0, sizeof(State::tile[0]));
  }
  template <int T>
  static void load(const void* p, std::size_t stride) {
    auto& t = tile<T>();
    for (int r = 0; r < kRows; ++r) std::memcpy(t[r], static_cast<const char*>(p) + r * stride, 64);
  }
  template <int T>
  static void store(void* p, std::size_t stride) {
    auto& t = tile<T>();
    for (int r = 0; r < kRows; ++r) std::memcpy(static_cast<char*>(p) + r * stride, t[r], 64);
  }

  // C += A . B for K = Bf16 (TDPBF16PS: A rows of 32 bf16, B rows of 16 bf16 pairs; each product
  // added in f32 with one rounding to nearest even, inputs under 2^-126 read as zero and results
  // under it flushed) or K = I8 (TDPBSUD: A rows of 64 signed bytes, B rows of 16 groups of 4
  // unsigned bytes; int32 sums, wrapping).
  template <ElementKind K, int C, int A, int B>
  static void dot() {
    auto& c = tile<C>();
    const auto& a = tile<A>();
    const auto& b = tile<B>();
    for (int m = 0; m < kRows; ++m) {
      if constexpr (K == ElementKind::Bf16) {
        float acc[16];
        std::memcpy(acc, c[m], sizeof acc);
        for (int k = 0; k < 16; ++k) {
          for (int n = 0; n < 16; ++n) {
            for (int i = 0; i < 2; ++i) {
              const double prod = static_cast<double>(bf16_at(a[m], 2 * k + i)) *
                                  static_cast<double>(bf16_at(b[k], 2 * n + i));
              acc[n] = flush(static_cast<float>(static_cast<double>(acc[n]) + prod));
            }
          }
        }
        std::memcpy(c[m], acc, sizeof acc);
      } else {
        static_assert(K == ElementKind::I8, "AMX dot products: Bf16 or I8");
        std::uint32_t acc[16];
        std::memcpy(acc, c[m], sizeof acc);
        for (int k = 0; k < 16; ++k) {
          for (int n = 0; n < 16; ++n) {
            std::int32_t sum = 0;
            for (int i = 0; i < 4; ++i) {
              sum += static_cast<signed char>(a[m][4 * k + i]) * b[k][4 * n + i];
            }
            acc[n] += static_cast<std::uint32_t>(sum);
          }
        }
        std::memcpy(c[m], acc, sizeof acc);
      }
    }
  }

 private:
  // The f32 value of bf16 element i of a 64-byte row, a subnormal read as a signed zero.
  static float bf16_at(const unsigned char* row, int i) {
    std::uint16_t h;
    std::memcpy(&h, row + 2 * i, sizeof h);
    if ((h & 0x7F80u) == 0) h &= 0x8000u;
    return float_from_bf16(h);
  }
  static float flush(float x) {
    std::uint32_t bits;
    std::memcpy(&bits, &x, sizeof bits);
    if ((bits & 0x7F800000u) == 0) bits &= 0x80000000u;
    return float_from_bits(bits);
  }
};
