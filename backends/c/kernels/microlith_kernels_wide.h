/* microlith_kernels_wide.h -- 16x8 kernels: int16 activations, int8 weights, int64 biases
 * (see microlith_kernels.h; the numpy oracle is microlith.quant.wide).
 *
 * CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED accumulate sum x * w + bias in int64 (the
 * activations' zero point is 0) and requantize with MBQM64, TFLite's int64 overload of
 * MultiplyByQuantizedMultiplier: a 16-bit multiplier m16 = (m + 2^15) >> 16 (0x7FFF when
 * m >= 0x7FFF0000) and one rounding shift, y = (acc * m16 + 2^(14 - s)) >> (15 - s).
 * ADD / SUB use the int8 formula with a headroom shift of 15 instead of 20; MUL, the pools,
 * MEAN, LEAKY_RELU and the data-movement kernels are the int8 ones on int16 values with the
 * int16 range; they take the int8 kernels' parameter records.
 */
#ifndef MICROLITH_KERNELS_WIDE_H
#define MICROLITH_KERNELS_WIDE_H

#include "microlith_kernels_common.h"
#include "microlith_kernels_conv.h"
#include "microlith_kernels_pool.h"
#include "microlith_kernels_elementwise.h"
#include "microlith_kernels_activation.h"
#include "microlith_kernels_quantize.h"
#include "microlith_kernels_data.h"

typedef struct {
    const int8_t *w;
    const int64_t *bias;
    const int32_t *mult;
    const int32_t *shift;
    int batches;
    int in_h;
    int in_w;
    int in_c;
    int out_h;
    int out_w;
    int out_c;
    int k_h;
    int k_w;
    int stride_h;
    int stride_w;
    int dil_h;
    int dil_w;
    int pad_top;
    int pad_left;
    int groups;       /* CONV_2D: C_in / filter depth */
    int depth_mult;   /* DEPTHWISE_CONV_2D: M (0 for CONV_2D) */
    int32_t act_min;
    int32_t act_max;
} mlk_conv2d_i16_params;

typedef struct {
    const int8_t *w;
    const int64_t *bias;
    const int32_t *mult;
    const int32_t *shift;
    int batches;
    int depth;
    int units;
    int32_t y_zp;
    int32_t act_min;
    int32_t act_max;
} mlk_fully_connected_i16_params;

typedef struct {
    int d0;
    int d1;
    int d2;
    int d3;
    int b0;
    int b1;
    int b2;
    int b3;
    int o0;
    int o1;
    int o2;
    int o3;
    int16_t value;
} mlk_pad_i16_params;

/* int64 >> s (0 < s < 64) rounding toward minus infinity, without implementation-defined
 * shifts of negative values. */
MLK_HOT int64_t mlk_asr64(int64_t v, int s)
{
    return v < 0 ? ~(~v >> s) : v >> s;
}

/* MBQM64 for t = 15 - s >= 32 (shifts right by 32 or more, rare): the plain int64 form. */
MLK_COLD int32_t mlk_mbqm64_long(int64_t x, int32_t reduced, int total)
{
    return (int32_t)mlk_asr64(x * reduced + ((int64_t)1 << (total - 1)), total);
}

/* MBQM64(x, m, s) = (x r + 2^(t-1)) >> t, r = round(m / 2^16) (at most 2^15 - 1), t = 15 - s:
 * |x| < 2^47, m >= 0, -31 <= s < 8 (so 8 <= t <= 46); the result fits int32. For t < 32 (the
 * usual shifts) its bits are bits t..t+31 of the 64-bit two's complement sum, |x r| < 2^62:
 * one 32x32->64 multiply (UMULL + MLA on Arm), a 32-bit carry-in and a funnel shift. */
MLK_HOT int32_t mlk_mbqm64(int64_t x, int32_t m, int s)
{
    const int32_t reduced = m < 0x7FFF0000 ? (m + (1 << 15)) >> 16 : 0x7FFF;
    const int total = 15 - s;
    if (total < 32) {
        const uint64_t q = (uint64_t)x * (uint32_t)reduced + ((uint32_t)1 << (total - 1));
        return mlk_i32(((uint32_t)q >> total) | ((uint32_t)(q >> 32) << (32 - total)));
    }
    return mlk_mbqm64_long(x, reduced, total);
}

MLK_HOT int16_t mlk_out_i16(int32_t v, int32_t lo, int32_t hi)
{
    return (int16_t)mlk_clamp32(v, lo, hi);
}

/* The Cortex-M DSP forms of CONV_2D (one group) and FULLY_CONNECTED (MLK_DSP only). */
#include "microlith_kernels_dsp_wide.h"

/* ==================================================================== convolutions */

/* CONV_2D (grouped) and, with depth_mult > 0, DEPTHWISE_CONV_2D (filters [KH][KW][C*M]):
 * taps outside the image are skipped (a zero border). */
MLK_HOT void mlk_conv2d_i16(const mlk_conv2d_i16_params *p, const int16_t *x, int16_t *y)
{
    int b, oy, ox, oc, ky, kx, ic;
    const int cg = p->depth_mult ? 1 : p->in_c / p->groups;
    const int per_group = p->depth_mult ? 1 : p->out_c / p->groups;
#if MLK_DSP
    if (!p->depth_mult && p->groups == 1) {
        mlk_dsp_conv2d_i16(p, x, y);
        return;
    }
    if (p->depth_mult == 1 && p->k_w <= MLK_DSP16_CHUNK) {
        mlk_dsp_depthwise_i16(p, x, y);
        return;
    }
#endif
    for (b = 0; b < p->batches; ++b) {
        for (oy = 0; oy < p->out_h; ++oy) {
            const int iy0 = oy * p->stride_h - p->pad_top;
            for (ox = 0; ox < p->out_w; ++ox) {
                const int ix0 = ox * p->stride_w - p->pad_left;
                int16_t *yp = y + (((size_t)b * p->out_h + oy) * p->out_w + ox) * p->out_c;
                for (oc = 0; oc < p->out_c; ++oc) {
                    const int c0 = p->depth_mult ? oc / p->depth_mult : (oc / per_group) * cg;
                    int64_t acc = p->bias ? p->bias[oc] : 0;
                    for (ky = 0; ky < p->k_h; ++ky) {
                        const int iy = iy0 + ky * p->dil_h;
                        if (iy < 0 || iy >= p->in_h) {
                            continue;
                        }
                        for (kx = 0; kx < p->k_w; ++kx) {
                            const int ix = ix0 + kx * p->dil_w;
                            const int16_t *xp;
                            if (ix < 0 || ix >= p->in_w) {
                                continue;
                            }
                            xp = x + (((size_t)b * p->in_h + iy) * p->in_w + ix) * p->in_c + c0;
                            if (p->depth_mult) {
                                acc += (int32_t)xp[0] *
                                       (int32_t)p->w[((size_t)ky * p->k_w + kx) * p->out_c + oc];
                                continue;
                            }
                            for (ic = 0; ic < cg; ++ic) {
                                acc += (int32_t)xp[ic] *
                                       (int32_t)p->w[(((size_t)oc * p->k_h + ky) * p->k_w + kx) *
                                                     cg + ic];
                            }
                        }
                    }
                    yp[oc] = mlk_out_i16(mlk_mbqm64(acc, p->mult[oc], p->shift[oc]),
                                         p->act_min, p->act_max);
                }
            }
        }
    }
}

MLK_HOT void mlk_fully_connected_i16(const mlk_fully_connected_i16_params *p, const int16_t *x,
                                     int16_t *y)
{
    int b, u, d;
#if MLK_DSP
    mlk_dsp_fully_connected_i16(p, x, y);
    return;
#endif
    for (b = 0; b < p->batches; ++b) {
        const int16_t *xr = x + (size_t)b * p->depth;
        for (u = 0; u < p->units; ++u) {
            const int8_t *wr = p->w + (size_t)u * p->depth;
            int64_t acc = p->bias ? p->bias[u] : 0;
            for (d = 0; d < p->depth; ++d) {
                acc += (int32_t)xr[d] * (int32_t)wr[d];
            }
            y[(size_t)b * p->units + u] = mlk_out_i16(
                mlk_wrap_add(mlk_mbqm64(acc, p->mult[u], p->shift[u]), p->y_zp), p->act_min,
                p->act_max);
        }
    }
}

/* ======================================================= element-wise (broadcasting) */

MLK_HOT void mlk_add_sub_i16(const mlk_add_sub_params *p, const int16_t *a, const int16_t *b,
                             int16_t *y)
{
    int i0, i1, i2, i3;
    for (i0 = 0; i0 < p->n0; ++i0) {
        for (i1 = 0; i1 < p->n1; ++i1) {
            for (i2 = 0; i2 < p->n2; ++i2) {
                const int16_t *ar = a + (size_t)i0 * p->as0 + (size_t)i1 * p->as1 +
                                    (size_t)i2 * p->as2;
                const int16_t *br = b + (size_t)i0 * p->bs0 + (size_t)i1 * p->bs1 +
                                    (size_t)i2 * p->bs2;
                for (i3 = 0; i3 < p->n3; ++i3) {
                    const int32_t a1 = mlk_mbqm(((int32_t)ar[(size_t)i3 * p->as3] - p->a_zp) *
                                                (1 << 15), p->a_mult, p->a_shift);
                    const int32_t b1 = mlk_mbqm(((int32_t)br[(size_t)i3 * p->bs3] - p->b_zp) *
                                                (1 << 15), p->b_mult, p->b_shift);
                    const int32_t raw = p->sign > 0 ? mlk_wrap_add(a1, b1) : mlk_wrap_sub(a1, b1);
                    *y++ = mlk_out_i16(mlk_wrap_add(mlk_mbqm(raw, p->y_mult, p->y_shift),
                                                    p->y_zp), p->act_min, p->act_max);
                }
            }
        }
    }
}

MLK_HOT void mlk_mul_i16(const mlk_mul_params *p, const int16_t *a, const int16_t *b, int16_t *y)
{
    int i0, i1, i2, i3;
    for (i0 = 0; i0 < p->n0; ++i0) {
        for (i1 = 0; i1 < p->n1; ++i1) {
            for (i2 = 0; i2 < p->n2; ++i2) {
                const int16_t *ar = a + (size_t)i0 * p->as0 + (size_t)i1 * p->as1 +
                                    (size_t)i2 * p->as2;
                const int16_t *br = b + (size_t)i0 * p->bs0 + (size_t)i1 * p->bs1 +
                                    (size_t)i2 * p->bs2;
                for (i3 = 0; i3 < p->n3; ++i3) {
                    const int32_t prod = ((int32_t)ar[(size_t)i3 * p->as3] - p->a_zp) *
                                         ((int32_t)br[(size_t)i3 * p->bs3] - p->b_zp);
                    *y++ = mlk_out_i16(mlk_wrap_add(mlk_mbqm(prod, p->mult, p->shift), p->y_zp),
                                       p->act_min, p->act_max);
                }
            }
        }
    }
}

MLK_HOT void mlk_leaky_relu_i16(const mlk_leaky_relu_params *p, const int16_t *x, int16_t *y)
{
    int i;
    for (i = 0; i < p->n; ++i) {
        const int32_t d = (int32_t)x[i] - p->x_zp;
        int64_t v;
        if (d >= 0) {
            v = mlk_mbqm(d, p->id_mult, p->id_shift);
        } else {
            v = mlk_mbqm(d, p->alpha_mult, p->alpha_shift);
            v = p->alpha_negative ? -v : v;
        }
        v += p->y_zp;
        y[i] = (int16_t)(v < -32768 ? -32768 : (v > 32767 ? 32767 : v));
    }
}

/* ============================================================== pooling and mean */

/* The int16 pools: the int8 kernels' loop nests (microlith_kernels_pool.h), -32768 the
 * lowest value; DSP kernels in microlith_kernels_dsp_pool.h. */
MLK_DEFINE_MAX_POOL(mlk_max_pool2d_i16_core, int16_t, -32768)
MLK_DEFINE_AVG_POOL(mlk_avg_pool2d_i16_core, int16_t)

MLK_HOT void mlk_max_pool2d_i16(const mlk_max_pool2d_params *p, const int16_t *x, int16_t *y)
{
#if MLK_DSP_POOL
    mlk_dsp_max_pool2d_i16(p, x, y);
#else
    mlk_max_pool2d_i16_core(p, x, y);
#endif
}

/* The DSP average from MLK_DSP_POOL_I16_AVG_TAPS taps a window up: below, GCC unrolls the
 * portable kernel's constant windows and its packing of the outputs costs more than the
 * sums save (2x2: 2,228 vs 2,062 instructions, 3x3: 5,531 vs 6,613). The record is a
 * constant, so only one kernel is compiled per layer. */
#ifndef MLK_DSP_POOL_I16_AVG_TAPS
#define MLK_DSP_POOL_I16_AVG_TAPS 8
#endif

MLK_HOT void mlk_avg_pool2d_i16(const mlk_avg_pool2d_params *p, const int16_t *x, int16_t *y)
{
#if MLK_DSP_POOL
    if (p->k_h * p->k_w >= MLK_DSP_POOL_I16_AVG_TAPS) {
        mlk_dsp_avg_pool2d_i16(p, x, y);
        return;
    }
#endif
    mlk_avg_pool2d_i16_core(p, x, y);
}

MLK_HOT void mlk_mean_i16(const mlk_mean_params *p, const int16_t *x, int16_t *y)
{
    int a, b, c, d;
    for (a = 0; a < p->k0; ++a) {
        for (b = 0; b < p->k1; ++b) {
            const int16_t *xp = x + (size_t)a * p->ks0 + (size_t)b * p->ks1;
            uint32_t sum = 0u;
            for (c = 0; c < p->r0; ++c) {
                for (d = 0; d < p->r1; ++d) {
                    sum += (uint32_t)(int32_t)xp[(size_t)c * p->rs0 + (size_t)d * p->rs1];
                }
            }
            y[(size_t)a * p->k1 + b] = mlk_out_i16(
                mlk_wrap_add(mlk_mbqm(mlk_wrap_sub(mlk_i32(sum), p->zp_times_count), p->mult,
                                      p->shift), p->y_zp), -32768, 32767);
        }
    }
}

/* =================================================================== data movement */

MLK_HOT void mlk_pad_i16(const mlk_pad_i16_params *p, const int16_t *x, int16_t *y)
{
    int i0, i1, i2, i3;
    for (i0 = 0; i0 < p->o0; ++i0) {
        for (i1 = 0; i1 < p->o1; ++i1) {
            for (i2 = 0; i2 < p->o2; ++i2) {
                int16_t *row = y + (((size_t)i0 * p->o1 + i1) * p->o2 + i2) * p->o3;
                const int s0 = i0 - p->b0, s1 = i1 - p->b1, s2 = i2 - p->b2;
                const int inside = s0 >= 0 && s0 < p->d0 && s1 >= 0 && s1 < p->d1 && s2 >= 0 &&
                                   s2 < p->d2;
                const int16_t *src = inside ? x + (((size_t)s0 * p->d1 + s1) * p->d2 + s2) *
                                                  p->d3 : x;
                for (i3 = 0; i3 < p->o3; ++i3) {
                    const int s3 = i3 - p->b3;
                    row[i3] = inside && s3 >= 0 && s3 < p->d3 ? src[s3] : p->value;
                }
            }
        }
    }
}

MLK_HOT void mlk_concat_i16(const mlk_concat_params *p, const int16_t *x, int16_t *y)
{
    int o;
    for (o = 0; o < p->outer; ++o) {
        memcpy(y + (size_t)o * p->out_inner + p->offset, x + (size_t)o * p->in_inner,
               (size_t)p->in_inner * sizeof(int16_t));
    }
}

MLK_HOT void mlk_transpose_i16(const mlk_transpose_params *p, const int16_t *x, int16_t *y)
{
    int i0, i1, i2, i3, i4, i5;
    for (i0 = 0; i0 < p->n0; ++i0) {
        for (i1 = 0; i1 < p->n1; ++i1) {
            for (i2 = 0; i2 < p->n2; ++i2) {
                for (i3 = 0; i3 < p->n3; ++i3) {
                    for (i4 = 0; i4 < p->n4; ++i4) {
                        const int16_t *xp = x + (size_t)i0 * p->s0 + (size_t)i1 * p->s1 +
                                            (size_t)i2 * p->s2 + (size_t)i3 * p->s3 +
                                            (size_t)i4 * p->s4;
                        for (i5 = 0; i5 < p->n5; ++i5) {
                            *y++ = xp[(size_t)i5 * p->s5];
                        }
                    }
                }
            }
        }
    }
}

/* ======================================================== quantize / dequantize */

MLK_HOT void mlk_quantize_f32_i16(const mlk_quantize_params *p, const float *x, int16_t *y)
{
    int i;
    for (i = 0; i < p->n; ++i) {
        y[i] = (int16_t)mlk_clamp32(mlk_wrap_add(mlk_round_f32(x[i] / p->scale), p->zp), -32768,
                                    32767);
    }
}

MLK_HOT void mlk_dequantize_i16_f32(const mlk_dequantize_params *p, const int16_t *x, float *y)
{
    int i;
    for (i = 0; i < p->n; ++i) {
        y[i] = (float)((int32_t)x[i] - p->zp) * p->scale;
    }
}

#define MLK_REQUANTIZE(NAME, TX, TY, LO, HI)                                                    \
    MLK_HOT void NAME(const mlk_requantize_params *p, const TX *x, TY *y)                       \
    {                                                                                           \
        int i;                                                                                  \
        for (i = 0; i < p->n; ++i) {                                                            \
            y[i] = (TY)mlk_requantize_value(x[i], p->x_zp, p->mult, p->shift, p->y_zp, LO, HI); \
        }                                                                                       \
    }
MLK_REQUANTIZE(mlk_requantize_i8_i16, int8_t, int16_t, -32768, 32767)
MLK_REQUANTIZE(mlk_requantize_u8_i16, uint8_t, int16_t, -32768, 32767)
MLK_REQUANTIZE(mlk_requantize_i16_i8, int16_t, int8_t, -128, 127)
MLK_REQUANTIZE(mlk_requantize_i16_u8, int16_t, uint8_t, 0, 255)
MLK_REQUANTIZE(mlk_requantize_i16_i16, int16_t, int16_t, -32768, 32767)
#undef MLK_REQUANTIZE

#endif /* MICROLITH_KERNELS_WIDE_H */
