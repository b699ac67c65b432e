/* microlith_kernels_common.h -- portability macros and TFLite's fixed-point arithmetic
 * (see microlith_kernels.h). */
#ifndef MICROLITH_KERNELS_COMMON_H
#define MICROLITH_KERNELS_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifndef MICROLITH_ALIGN
#if defined(__GNUC__) || defined(__clang__)
#define MICROLITH_ALIGN(n) __attribute__((aligned(n)))
#else
#define MICROLITH_ALIGN(n)
#endif
#endif

/* Override (e.g. with always_inline) to force per-layer specialization. */
#ifndef MLK_INLINE
#define MLK_INLINE static inline
#endif

/* Small arithmetic helpers and inner loops are always inlined: at -Os gcc would
   otherwise call them per element (the requantization alone was 17% of resnet8).
   The dot-product loops stay plain inline: forcing them hurts -O2 vectorization. */
#ifndef MLK_HOT
#if defined(__GNUC__)
#define MLK_HOT static inline __attribute__((always_inline))
#else
#define MLK_HOT static inline
#endif
#endif

/* Rare paths called from hot inlined code: one out-of-line copy instead of one per site. */
#if defined(__GNUC__)
#define MLK_COLD static __attribute__((noinline, cold, unused))
#else
#define MLK_COLD static
#endif


/* ======================================================================== fixed point */

/* Two's-complement reinterpretation of a uint32_t as int32_t (no implementation-defined
 * conversion). */
MLK_HOT int32_t mlk_i32(uint32_t u)
{
    return u <= 0x7FFFFFFFu ? (int32_t)u : (int32_t)(u - 0x80000000u) - INT32_MAX - 1;
}

/* a + b, a - b, -a modulo 2^32 (int32 wrap-around as the C++ kernels' arithmetic). */
MLK_HOT int32_t mlk_wrap_add(int32_t a, int32_t b)
{
    return mlk_i32((uint32_t)a + (uint32_t)b);
}

MLK_HOT int32_t mlk_wrap_sub(int32_t a, int32_t b)
{
    return mlk_i32((uint32_t)a - (uint32_t)b);
}

MLK_HOT int32_t mlk_wrap_neg(int32_t a)
{
    return mlk_i32(0u - (uint32_t)a);
}

/* Arithmetic shift right (floor(x / 2^s)), 0 <= s <= 31. */
MLK_HOT int32_t mlk_asr(int32_t x, int s) { return x >= 0 ? x >> s : ~(~x >> s); }

/* SRDHM(a, b) = (a*b + (a*b >= 0 ? 2^30 : 1 - 2^30)) / 2^31 truncated; -2^31 * -2^31
 * saturates to 2^31 - 1. */
MLK_HOT int32_t mlk_srdhm(int32_t a, int32_t b)
{
    int64_t ab, nudge;
    if (a == b && a == INT32_MIN) {
        return INT32_MAX;
    }
    ab = (int64_t)a * (int64_t)b;
    nudge = ab >= 0 ? ((int64_t)1 << 30) : (1 - ((int64_t)1 << 30));
    return (int32_t)((ab + nudge) / ((int64_t)1 << 31));
}

/* RDBP(x, e) = x / 2^e rounded half away from zero, 0 <= e <= 31:
 * (x >> e) + ((x & mask) > (mask >> 1) + (x < 0)), mask = 2^e - 1. */
MLK_HOT int32_t mlk_rdbp(int32_t x, int e)
{
    const int32_t mask = (int32_t)(((uint32_t)1 << e) - 1u);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return mlk_asr(x, e) + (remainder > threshold ? 1 : 0);
}

/* MBQM(x, m, s) = RDBP(SRDHM(int32(x * 2^max(s,0)), m), max(-s,0)); -31 <= s <= 31. */
MLK_HOT int32_t mlk_mbqm(int32_t x, int32_t m, int s)
{
    const int left = s > 0 ? s : 0;
    const int right = s > 0 ? 0 : -s;
    return mlk_rdbp(mlk_srdhm(mlk_i32((uint32_t)x << left), m), right);
}

/* SaturatingRoundingMultiplyByPOT(x, e): x * 2^e saturated for e > 0, RDBP(x, -e) else. */
MLK_HOT int32_t mlk_srmpot(int32_t x, int e)
{
    int32_t threshold;
    if (e == 0) {
        return x;
    }
    if (e < 0) {
        return mlk_rdbp(x, -e);
    }
    threshold = (int32_t)(((uint32_t)1 << (31 - e)) - 1u);
    if (x > threshold) {
        return INT32_MAX;
    }
    if (x < -threshold) {
        return INT32_MIN;
    }
    return mlk_i32((uint32_t)x << e);
}

/* clamp(v + zp, lo, hi) as int8, computed as clamp(v, lo - zp, hi - zp) + zp so that
 * v + zp cannot overflow. */
MLK_HOT int8_t mlk_out_i8(int32_t v, int32_t zp, int32_t lo, int32_t hi)
{
    const int32_t lo_c = lo - zp;
    const int32_t hi_c = hi - zp;
    if (v < lo_c) {
        v = lo_c;
    }
    if (v > hi_c) {
        v = hi_c;
    }
    return (int8_t)(v + zp);
}

MLK_HOT int32_t mlk_clamp32(int32_t v, int32_t lo, int32_t hi)
{
    if (v < lo) {
        v = lo;
    }
    return v > hi ? hi : v;
}

/* Leading zero bits of x (32 for 0). */
MLK_INLINE int mlk_clz32(uint32_t x)
{
    int n = 0;
    if (x == 0u) {
        return 32;
    }
    if ((x & 0xFFFF0000u) == 0u) { n += 16; x <<= 16; }
    if ((x & 0xFF000000u) == 0u) { n += 8; x <<= 8; }
    if ((x & 0xF0000000u) == 0u) { n += 4; x <<= 4; }
    if ((x & 0xC0000000u) == 0u) { n += 2; x <<= 2; }
    if ((x & 0x80000000u) == 0u) { n += 1; }
    return n;
}

/* ------------------------------------------------ gemmlowp FixedPoint<int32, I> functions */

/* exp(a) for Q0.31 a in [-1/4, 0): Taylor series around -1/8 (result Q0.31). */
MLK_INLINE int32_t mlk_exp_on_interval_m025_0(int32_t a)
{
    const int32_t constant_term = 1895147668; /* exp(-1/8) */
    const int32_t constant_1_over_3 = 715827883;
    const int32_t x = mlk_wrap_add(a, 1 << 28); /* a + 1/8 */
    const int32_t x2 = mlk_srdhm(x, x);
    const int32_t x3 = mlk_srdhm(x2, x);
    const int32_t x4 = mlk_srdhm(x2, x2);
    const int32_t x4_over_4 = mlk_rdbp(x4, 2);
    const int32_t poly = mlk_rdbp(
        mlk_wrap_add(mlk_srdhm(mlk_wrap_add(x4_over_4, x3), constant_1_over_3), x2), 1);
    return mlk_wrap_add(constant_term, mlk_srdhm(constant_term, mlk_wrap_add(x, poly)));
}

/* exp(a) (Q0.31) of a FixedPoint<int32, integer_bits> a <= 0: exp of the residue modulo
 * 1/4 by Taylor series, times exp(-2^k) for every bit k set in the rest. */
MLK_INLINE int32_t mlk_exp_on_negative_values(int32_t a, int integer_bits)
{
    static const int32_t barrel[7] = {1672461947, 1302514674, 790015084, 290630308,
                                      39332535,   720401,     242}; /* exp(-2^k), k=-2..4 */
    const int frac_bits = 31 - integer_bits;
    const int32_t one_quarter = (int32_t)1 << (frac_bits - 2);
    const int32_t a_mod = mlk_wrap_sub(a & (one_quarter - 1), one_quarter);
    const int32_t remainder = mlk_wrap_sub(a_mod, a);
    int32_t result = mlk_exp_on_interval_m025_0(mlk_srmpot(a_mod, integer_bits));
    int k;
    for (k = -2; k <= 4; ++k) {
        if (integer_bits > k && (((uint32_t)remainder >> (frac_bits + k)) & 1u)) {
            result = mlk_srdhm(result, barrel[k + 2]);
        }
    }
    if (integer_bits > 5) {
        const int32_t clamp = -((int32_t)1 << (36 - integer_bits)); /* -32.0 */
        if (a < clamp) {
            result = 0;
        }
    }
    return a == 0 ? INT32_MAX : result;
}

/* RoundingHalfSum(a, b) = (a + b + sign(a + b)) / 2, truncated. */
MLK_INLINE int32_t mlk_rounding_half_sum(int32_t a, int32_t b)
{
    const int64_t sum = (int64_t)a + (int64_t)b;
    return (int32_t)((sum + (sum >= 0 ? 1 : -1)) / 2);
}

/* 1 / half_denominator as Q2.29: 48/17 - 32/17 d, then three Newton-Raphson steps. */
MLK_INLINE int32_t mlk_newton_reciprocal_half(int32_t half_denominator)
{
    const int32_t one_f2 = (int32_t)1 << 29;
    int32_t x = mlk_wrap_add(1515870810, mlk_srdhm(half_denominator, -1010580540));
    int i;
    for (i = 0; i < 3; ++i) {
        const int32_t one_minus = mlk_wrap_sub(one_f2, mlk_srdhm(half_denominator, x));
        x = mlk_wrap_add(x, mlk_srmpot(mlk_srdhm(x, one_minus), 2));
    }
    return x;
}

/* 1 / (1 + a) for Q0.31 a in [0, 1), as Q0.31. */
MLK_INLINE int32_t mlk_one_over_one_plus_x(int32_t a)
{
    return mlk_srmpot(mlk_newton_reciprocal_half(mlk_rounding_half_sum(a, INT32_MAX)), 1);
}

/* (1 - a) / (1 + a) for Q0.31 a in [0, 1), as Q0.31. */
MLK_INLINE int32_t mlk_one_minus_x_over_one_plus_x(int32_t a)
{
    const int32_t x = mlk_newton_reciprocal_half(mlk_rounding_half_sum(a, INT32_MAX));
    return mlk_srmpot(mlk_wrap_sub(x, (int32_t)1 << 29), 2);
}

/* logistic(a) = 1 / (1 + exp(-a)) of a FixedPoint<int32, integer_bits>, as Q0.31. */
MLK_INLINE int32_t mlk_logistic_q31(int32_t a, int integer_bits)
{
    int32_t abs_a, if_positive;
    if (a == 0) {
        return (int32_t)1 << 30;
    }
    abs_a = a > 0 ? a : mlk_wrap_neg(a);
    if_positive =
        mlk_one_over_one_plus_x(mlk_exp_on_negative_values(mlk_wrap_neg(abs_a), integer_bits));
    return a > 0 ? if_positive : mlk_wrap_sub(INT32_MAX, if_positive);
}

/* tanh(a) of a FixedPoint<int32, integer_bits>, as Q0.31. */
MLK_INLINE int32_t mlk_tanh_q31(int32_t a, int integer_bits)
{
    int32_t t;
    if (a == 0) {
        return 0;
    }
    t = mlk_one_minus_x_over_one_plus_x(
        mlk_exp_on_negative_values(a < 0 ? a : mlk_wrap_neg(a), integer_bits + 1));
    return a < 0 ? mlk_wrap_neg(t) : t;
}

/* GetReciprocal: 1/x ~= result * 2^-(31 + *bits) for a positive FixedPoint<int32, digits>. */
MLK_INLINE int32_t mlk_get_reciprocal(int32_t x, int digits, int *bits)
{
    const int headroom_plus_one = mlk_clz32((uint32_t)x);
    const uint32_t shifted = headroom_plus_one >= 32 ? 0u : (uint32_t)x << headroom_plus_one;
    *bits = digits - headroom_plus_one;
    return mlk_one_over_one_plus_x(mlk_i32(shifted - 0x80000000u));
}

/* ---------------------------------------------------------------- int16 fixed point */

MLK_INLINE int32_t mlk_wrap16(int32_t v)
{
    return (int32_t)(((uint32_t)v + 32768u) & 0xFFFFu) - 32768;
}

/* int16 SRDHM: (a*b + (a*b >= 0 ? 2^14 : 1 - 2^14)) / 2^15, -2^15 * -2^15 saturates. */
MLK_INLINE int32_t mlk_srdhm16(int32_t a, int32_t b)
{
    const int32_t ab = a * b;
    if (a == b && a == INT16_MIN) {
        return INT16_MAX;
    }
    return (ab + (ab >= 0 ? (1 << 14) : (1 - (1 << 14)))) / (1 << 15);
}

/* int16 SaturatingDoublingHighMul: a*b / 2^15 truncated, -2^15 * -2^15 saturates. */
MLK_INLINE int32_t mlk_sdhm16(int32_t a, int32_t b)
{
    if (a == b && a == INT16_MIN) {
        return INT16_MAX;
    }
    return (a * b) / (1 << 15);
}

/* int16 RDBP: the 2^e - 1 mask truncates to int16 for e >= 16 (result +-1). */
MLK_INLINE int32_t mlk_rdbp16(int32_t x, int e)
{
    if (e >= 16) {
        return x >= 0 ? 1 : -1;
    }
    return mlk_rdbp(x, e);
}

MLK_INLINE int32_t mlk_sat_lshift16(int32_t v, int amount)
{
    return mlk_clamp32(v * (1 << amount), INT16_MIN, INT16_MAX);
}

#endif /* MICROLITH_KERNELS_COMMON_H */
