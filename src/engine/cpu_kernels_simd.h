// The SIMD bodies of the CPU kernels, written once against a vector traits type `S` and compiled
// once per instruction set: cpu_kernels.cpp includes this file several times (no include guard,
// on purpose), each time inside its own namespace and `#pragma GCC target` region, after
// defining `S`:
//   S::V, S::kWidth                 vector type and its float lanes
//   S::zero(), S::load(p)           unaligned load of kWidth floats
//   S::load_part(p, n)              the first n < kWidth floats, zeros after
//   S::fma(a, b, c)                 a * b + c
//   S::splat(f), S::store(p, v), S::store_part(p, v, n)
//   S::sum(v)                       lanes added in a fixed order
//
// Invariant that makes results batch-invariant: every output element of gemm() is computed by
// the same sequence of operations (one accumulator over k in steps of kWidth, the tail through
// load_part, then S::sum) whichever block, tile or thread it falls in, so a sequence's logits do
// not depend on how many other sequences share its step.

// Tokens x weight rows per register block; the largest block that stays in registers.
inline constexpr int kTokBlock = S::kTokBlock;
inline constexpr int kRowBlock = S::kRowBlock;

// y[t * ldy + r] = x_t . w_r for t < TB, r < RB: x rows are `k` apart, w rows `ldw`. The small
// loops are unrolled fully so that the accumulators live in registers.
template <int TB, int RB>
__attribute__((always_inline)) inline void block(const float* x, int64_t k, const float* w,
                                                 int64_t ldw, float* y, int64_t ldy) {
  typename S::V acc[TB][RB];
#pragma GCC unroll 8
  for (int t = 0; t < TB; ++t) {
#pragma GCC unroll 8
    for (int r = 0; r < RB; ++r) acc[t][r] = S::zero();
  }
  int64_t i = 0;
  for (; i + S::kWidth <= k; i += S::kWidth) {
    typename S::V xv[TB];
#pragma GCC unroll 8
    for (int t = 0; t < TB; ++t) xv[t] = S::load(x + t * k + i);
#pragma GCC unroll 8
    for (int r = 0; r < RB; ++r) {
      const typename S::V wv = S::load(w + r * ldw + i);
#pragma GCC unroll 8
      for (int t = 0; t < TB; ++t) acc[t][r] = S::fma(xv[t], wv, acc[t][r]);
    }
  }
  if (i < k) {
    const int n = static_cast<int>(k - i);
    typename S::V xv[TB];
#pragma GCC unroll 8
    for (int t = 0; t < TB; ++t) xv[t] = S::load_part(x + t * k + i, n);
#pragma GCC unroll 8
    for (int r = 0; r < RB; ++r) {
      const typename S::V wv = S::load_part(w + r * ldw + i, n);
#pragma GCC unroll 8
      for (int t = 0; t < TB; ++t) acc[t][r] = S::fma(xv[t], wv, acc[t][r]);
    }
  }
#pragma GCC unroll 8
  for (int t = 0; t < TB; ++t) {
#pragma GCC unroll 8
    for (int r = 0; r < RB; ++r) y[t * ldy + r] = S::sum(acc[t][r]);
  }
}

// `TB` tokens against all `n` weight rows. The token block stays in L1 while the rows stream
// past it (from L2 when the caller tiles them), so per k step only the kRowBlock weight loads
// miss L1.
template <int TB>
__attribute__((always_inline)) inline void tokens_times_all_rows(const float* x, int64_t k,
                                                                 const float* w, int64_t ldw,
                                                                 int64_t n, float* y, int64_t ldy) {
  int64_t r = 0;
  for (; r + kRowBlock <= n; r += kRowBlock)
    block<TB, kRowBlock>(x, k, w + r * ldw, ldw, y + r, ldy);
  switch (n - r) {
    case 1: block<TB, 1>(x, k, w + r * ldw, ldw, y + r, ldy); break;
    case 2: block<TB, 2>(x, k, w + r * ldw, ldw, y + r, ldy); break;
    case 3: block<TB, 3>(x, k, w + r * ldw, ldw, y + r, ldy); break;
    default: break;
  }
}

// Tokens in blocks of TB (the rest in one smaller block) against all rows.
template <int TB>
__attribute__((always_inline)) inline void gemm_blocks(const float* x, int m, int64_t k,
                                                       const float* w, int64_t ldw, int64_t n,
                                                       float* y, int64_t ldy) {
  int t = 0;
  for (; t + TB <= m; t += TB) tokens_times_all_rows<TB>(x + t * k, k, w, ldw, n, y + t * ldy, ldy);
  // The last few tokens, one block shape per count (templates need constants).
  const float* xt = x + t * k;
  float* yt = y + t * ldy;
  switch (m - t) {
    case 1: tokens_times_all_rows<1>(xt, k, w, ldw, n, yt, ldy); break;
    case 2:
      if constexpr (TB > 2) tokens_times_all_rows<2>(xt, k, w, ldw, n, yt, ldy);
      break;
    case 3:
      if constexpr (TB > 3) tokens_times_all_rows<3>(xt, k, w, ldw, n, yt, ldy);
      break;
    case 4:
      if constexpr (TB > 4) tokens_times_all_rows<4>(xt, k, w, ldw, n, yt, ldy);
      break;
    case 5:
      if constexpr (TB > 5) tokens_times_all_rows<5>(xt, k, w, ldw, n, yt, ldy);
      break;
    default: break;
  }
}

// y[t * ldy + r] = x_t . w_r for t < m, r < n (x rows are k floats apart, w rows ldw).
void gemm(const float* x, int m, int64_t k, const float* w, int64_t ldw, int64_t n, float* y,
          int64_t ldy) {
  static_assert(kTokBlock >= 1 && kTokBlock <= 6 && kRowBlock == 4);
  gemm_blocks<kTokBlock>(x, m, k, w, ldw, n, y, ldy);
}

float dot(const float* a, const float* b, int64_t n) {
  float y;
  block<1, 1>(a, n, b, n, &y, 1);
  return y;
}

// y += a * x over n floats.
void axpy(float a, const float* x, float* y, int64_t n) {
  const typename S::V av = S::splat(a);
  int64_t i = 0;
  for (; i + S::kWidth <= n; i += S::kWidth)
    S::store(y + i, S::fma(av, S::load(x + i), S::load(y + i)));
  if (i < n) {
    const int r = static_cast<int>(n - i);
    S::store_part(y + i, S::fma(av, S::load_part(x + i, r), S::load_part(y + i, r)), r);
  }
}

// out[0, hd) = sum_p a_p * v_rows[p][0, hd) over p < n, accumulated in position order (the same
// operations as n axpy calls into a zeroed out), each kWidth-wide slice of out in a register.
void weighted_sum(const float* a, const float* const* v_rows, int n, int64_t hd, float* out) {
  for (int64_t c = 0; c < hd; c += S::kWidth) {
    const int w = hd - c < S::kWidth ? static_cast<int>(hd - c) : S::kWidth;
    typename S::V acc = S::zero();
    if (w == S::kWidth) {
      for (int p = 0; p < n; ++p) acc = S::fma(S::splat(a[p]), S::load(v_rows[p] + c), acc);
      S::store(out + c, acc);
    } else {
      for (int p = 0; p < n; ++p) acc = S::fma(S::splat(a[p]), S::load_part(v_rows[p] + c, w), acc);
      S::store_part(out + c, acc, w);
    }
  }
}
