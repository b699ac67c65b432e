/* microlith_kernels_wide_activation.h -- 16x8 LOGISTIC, TANH and SOFTMAX (int16 in and
 * out, output scale 2^-15, zero points 0), bit-exact with TFLite-Micro (see
 * microlith_kernels.h; the numpy oracle is microlith.quant.wide_activation). The tables are
 * parameters, written by the C backend from microlith.quant.wide_tables (generated there
 * from the functions' definitions):
 *
 * LOGISTIC / TANH: v = (x * mult + round) >> shift puts 2^17 at 10.67; T is the Q0.16 table
 * of sigmoid(i / 24), 256 entries, read at |v| >> 9 (LOGISTIC) or |v| >> 8 (TANH: tanh(x) =
 * 2 sigmoid(2x) - 1) with linear interpolation on the low bits, mirrored for v < 0.
 * SOFTMAX: e = exp(d) from a 513-entry Q0.15 table on [-10, 0] (d = x - max, rescaled so that
 * -65535 is -10 and recentred by 32767), S = sum e, 1/S from a table of 1/(1 + x) on [0, 1]
 * after normalising S by its leading zeros, y = e / S in Q0.15.
 */
#ifndef MICROLITH_KERNELS_WIDE_ACTIVATION_H
#define MICROLITH_KERNELS_WIDE_ACTIVATION_H

#include "microlith_kernels_common.h"

typedef struct {
    const uint16_t *table; /* 256 entries, Q0.16 */
    int n;
    int32_t mult;          /* <= 32767 */
    int32_t shift;         /* >= 0 */
} mlk_sigmoid_i16_params;

typedef struct {
    const int16_t *exp_table;   /* 513 entries, Q0.15 */
    const int16_t *recip_table; /* 513 entries, Q0.15 */
    int rows;
    int depth;
    int32_t mult;
    int32_t shift;
} mlk_softmax_i16_params;

/* v = (x * mult + 2^(shift-1)) >> shift, the input on the table's scale (2^17 = 10.67). */
MLK_INLINE int32_t mlk_sigmoid_i16_input(int16_t x, int32_t mult, int32_t shift)
{
    const int32_t rounding = shift > 0 ? (int32_t)1 << (shift - 1) : 0;
    return mlk_asr((int32_t)x * mult + rounding, shift);
}

/* The table at a = |v| with `bits` fractional bits: (T[k] << bits) + frac (T[k+1] - T[k]),
 * k = a >> bits; `top` when k >= 255. */
MLK_INLINE uint32_t mlk_sigmoid_i16_interp(const uint16_t *t, uint32_t a, int bits, uint32_t top)
{
    const uint32_t k = a >> bits;
    if (k >= 255u) {
        return top;
    }
    return ((uint32_t)t[k] << bits) + (a & ((1u << bits) - 1u)) * (uint32_t)(t[k + 1] - t[k]);
}

MLK_HOT void mlk_logistic_i16(const mlk_sigmoid_i16_params *p, const int16_t *x, int16_t *y)
{
    int i;
    for (i = 0; i < p->n; ++i) {
        const int32_t v = mlk_sigmoid_i16_input(x[i], p->mult, p->shift);
        const uint32_t a = (uint32_t)(v < 0 ? -v : v);
        const uint32_t r = mlk_sigmoid_i16_interp(p->table, a, 9, 0x7FFFu << 10);
        const uint32_t out = v >= 0 ? r + (1u << 9) : (1u << 25) - r + (1u << 9) - 1u;
        y[i] = (int16_t)(out >> 10);
    }
}

MLK_HOT void mlk_tanh_i16(const mlk_sigmoid_i16_params *p, const int16_t *x, int16_t *y)
{
    int i;
    for (i = 0; i < p->n; ++i) {
        const int32_t v = mlk_sigmoid_i16_input(x[i], p->mult, p->shift);
        const uint32_t a = (uint32_t)(v < 0 ? -v : v);
        const int32_t r = (int32_t)mlk_sigmoid_i16_interp(p->table, a, 8, 0xFFFFu << 8);
        const int32_t out = v >= 0 ? r - (1 << 23) + (1 << 7) : (1 << 23) - r + (1 << 7) - 1;
        y[i] = (int16_t)mlk_asr(out, 8);
    }
}

/* A 513-entry Q0.15 table at an int16 value: entry 256 + (v >> 7), interpolated on v & 127. */
MLK_INLINE int32_t mlk_lut_i16_interp(const int16_t *t, int32_t v)
{
    const int32_t k = 256 + mlk_asr(v, 7);
    const int32_t slope = (int32_t)t[k + 1] - (int32_t)t[k];
    return mlk_wrap16((int32_t)t[k] + mlk_asr(slope * (v & 0x7F) + 64, 7));
}

MLK_HOT void mlk_softmax_i16(const mlk_softmax_i16_params *p, const int16_t *x, int16_t *y)
{
    int r, c;
    for (r = 0; r < p->rows; ++r) {
        const int16_t *row = x + (long)r * p->depth;
        int16_t *out = y + (long)r * p->depth;
        int16_t top = -32768;
        int32_t sum = 0;
        int clz, right;
        int64_t shifted;
        int32_t recip;
        for (c = 0; c < p->depth; ++c) {
            top = row[c] > top ? row[c] : top;
        }
        /* the exps go to the output first (TFLite-Micro caches them there too) */
        for (c = 0; c < p->depth; ++c) {
            const int32_t d = mlk_mbqm((int32_t)row[c] - top, p->mult, p->shift);
            const int32_t e = mlk_lut_i16_interp(p->exp_table, mlk_clamp32(d + 32767, -32768,
                                                                            32767));
            out[c] = (int16_t)e;
            sum = mlk_wrap_add(sum, e);
        }
        clz = mlk_clz32((uint32_t)sum);
        shifted = (((int64_t)(uint32_t)sum << (clz - 1)) + (1 << 13)) >> 14;
        recip = mlk_lut_i16_interp(p->recip_table, mlk_clamp32(
            (int32_t)(shifted - ((1 << 15) + (1 << 16))), -32768, 32767));
        right = 31 - clz;
        for (c = 0; c < p->depth; ++c) {
            const int64_t v = ((int64_t)out[c] * recip + ((int64_t)1 << (right - 1))) >> right;
            out[c] = (int16_t)(v < 0 ? 0 : v > 32767 ? 32767 : v);
        }
    }
}

#endif /* MICROLITH_KERNELS_WIDE_ACTIVATION_H */
