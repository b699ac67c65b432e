/* microlith_kernels_dsp_pool.h -- MAX_POOL_2D and AVERAGE_POOL_2D, int8 and int16, for
 * Cortex-M cores with the DSP extension (see microlith_kernels_dsp.h: compiled only where
 * MLK_DSP is 1 and MLK_PORTABLE_POOL is not defined). Included by microlith_kernels_pool.h
 * after the records and the window helper (mlk_pool_window), before the portable kernels,
 * which call these.
 *
 * Max, int8: four channels per 32-bit word. SSUB8(v, best) sets the GE flag of each byte
 * lane where v >= best and SEL(v, best) then takes v in those lanes and best in the others:
 * four exact int8 maxima in two instructions. The clamp to [act_min, act_max] is the same
 * pair against words of act_min and act_max. Max, int16: the same with SSUB16, two
 * channels per word.
 *
 * Average, int8: eight channels per pass, two words per tap. SXTAB16(a, v) adds bytes 0 and
 * 2 of v, sign-extended, to the two int16 lanes of a; SXTAB16(a, v ror 8) bytes 1 and 3.
 * A lane holds the sum of at most 256 taps: |sum| <= 256 * 128 = 2^15 and the sum is
 * >= -2^15 and <= 256 * 127 < 2^15, so the int16 lane is the exact integer (the lanes wrap
 * mod 2^16, but never reach the wrap). Windows of more than 256 taps are summed in chunks
 * of at most 256 (whole window rows, or 256 taps of a row) and each chunk's lanes are
 * added to int32 sums. A window that spans the whole image width is one run of
 * rows * in_w taps ch bytes apart (a global pool is one run). Average, int16: int32 sums,
 * SXTAH for the low channel of a word, ADD with ASR #16 for the high one.
 *
 * The division is TFLite's (acc +- n/2) / n (C division, round half away from zero),
 * one SDIV per channel: under the instruction count it is one instruction, fewer than any
 * multiply by a reciprocal with the sign handling around it. n and n/2 are computed once
 * per window. The same integers as the portable kernels: the same bytes.
 * Channels past the last block run one channel at a time.
 */
#ifndef MICROLITH_KERNELS_DSP_POOL_H
#define MICROLITH_KERNELS_DSP_POOL_H

#include "microlith_kernels_dsp.h"

#if MLK_DSP && !defined(MLK_PORTABLE_POOL)
#define MLK_DSP_POOL 1

/* Taps a 16-bit lane may sum exactly (int8 inputs, see above). */
#define MLK_DSP_POOL_LANE_TAPS 256

/* The four lanes of a (v, w) lane-wise maximum. */
MLK_HOT int32_t mlk_dsp_max4(int32_t v, int32_t w)
{
    (void)__ssub8(v, w); /* GE[i] = v[i] >= w[i] */
    return (int32_t)__sel((uint32_t)v, (uint32_t)w);
}

/* The four lanes of a (v, w) lane-wise minimum. */
MLK_HOT int32_t mlk_dsp_min4(int32_t v, int32_t w)
{
    (void)__ssub8(v, w); /* GE[i] = v[i] >= w[i] */
    return (int32_t)__sel((uint32_t)w, (uint32_t)v);
}

/* The two lanes of a (v, w) lane-wise int16 maximum / minimum. */
MLK_HOT int32_t mlk_dsp_max2(int32_t v, int32_t w)
{
    (void)__ssub16(v, w); /* GE[2i..2i+1] = v[i] >= w[i] */
    return (int32_t)__sel((uint32_t)v, (uint32_t)w);
}

MLK_HOT int32_t mlk_dsp_min2(int32_t v, int32_t w)
{
    (void)__ssub16(v, w);
    return (int32_t)__sel((uint32_t)w, (uint32_t)v);
}

MLK_HOT int32_t mlk_dsp_splat8(int32_t v)
{
    return (int32_t)((uint32_t)(uint8_t)v * 0x01010101u);
}

MLK_HOT int32_t mlk_dsp_splat16(int32_t v)
{
    return (int32_t)((uint32_t)(uint16_t)v * 0x00010001u);
}

/* SXTAB16(a, v ror 8): a's int16 lanes plus bytes 1 and 3 of v (one instruction; the ACLE
 * intrinsic has no rotation). */
MLK_HOT int32_t mlk_dsp_sxtab16_ror8(int32_t a, int32_t v)
{
#if defined(__GNUC__)
    int32_t r;
    __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(a), "r"(v));
    return r;
#else
    return (int32_t)__sxtab16(a, __ror((uint32_t)v, 8));
#endif
}

/* ========================================================================== max, int8 */

MLK_HOT void mlk_dsp_max_pool2d_i8(const mlk_max_pool2d_params *rec, const int8_t *x,
                                   int8_t *y)
{
    const mlk_max_pool2d_params g = *rec, *p = &g; /* see MLK_DEFINE_POOL */
    const int32_t lo = mlk_dsp_splat8(p->act_min), hi = mlk_dsp_splat8(p->act_max);
    const size_t ch = (size_t)p->ch, row = (size_t)p->in_w * ch;
    const int ch4 = p->ch & ~3;
    int b, oy, ox, c, r, k;
    for (b = 0; b < p->batches; ++b) {
        for (oy = 0; oy < p->out_h; ++oy) {
            for (ox = 0; ox < p->out_w; ++ox) {
                const mlk_pool_win w = MLK_POOL_WINDOW(p, b, oy, ox);
                const int8_t *xw = x + w.offset;
                for (c = 0; c < ch4; c += 4) {
                    int32_t best = lo; /* max(-128, ...) then clamp below: max with act_min */
                    for (r = 0; r < w.rows; ++r) {
                        const int8_t *xr = xw + (size_t)r * row + (size_t)c;
                        for (k = 0; k < w.cols; ++k, xr += ch) {
                            best = mlk_dsp_max4(mlk_ld32(xr), best);
                        }
                    }
                    mlk_st32(y + c, mlk_dsp_min4(best, hi));
                }
                for (c = ch4; c < p->ch; ++c) {
                    int32_t best = -128;
                    for (r = 0; r < w.rows; ++r) {
                        const int8_t *xr = xw + (size_t)r * row + (size_t)c;
                        for (k = 0; k < w.cols; ++k, xr += ch) {
                            best = *xr > best ? *xr : best;
                        }
                    }
                    y[c] = (int8_t)mlk_clamp32(best, p->act_min, p->act_max);
                }
                y += ch;
            }
        }
    }
}

/* ====================================================================== average, int8 */

/* s[0..4*words) += the sums of 4*words channels (words = 1 or 2) at xw over rows x cols
 * taps (step bytes apart in a row, row bytes apart down the window), chunked so that no
 * int16 lane sums more than MLK_DSP_POOL_LANE_TAPS taps. Lane order: s = (c0, c2, c1, c3,
 * c4, c6, c5, c7). */
MLK_HOT void mlk_dsp_avg_sum_i8(const int8_t *xw, int rows, int cols, size_t step, size_t row,
                                int words, int32_t *s)
{
    const int cc = cols < MLK_DSP_POOL_LANE_TAPS ? cols : MLK_DSP_POOL_LANE_TAPS;
    const int rc = cc ? MLK_DSP_POOL_LANE_TAPS / cc : 1;
    int r0, k0, r, k;
    for (r0 = 0; r0 < rows; r0 += rc) {
        const int nr = rows - r0 < rc ? rows - r0 : rc;
        for (k0 = 0; k0 < cols; k0 += cc) {
            const int nk = cols - k0 < cc ? cols - k0 : cc;
            int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
            for (r = 0; r < nr; ++r) {
                const int8_t *xr = xw + (size_t)(r0 + r) * row + (size_t)k0 * step;
                for (k = 0; k < nk; ++k, xr += step) {
                    const int32_t v = mlk_ld32(xr);
                    a0 = (int32_t)__sxtab16(a0, v);
                    a1 = mlk_dsp_sxtab16_ror8(a1, v);
                    if (words == 2) {
                        const int32_t u = mlk_ld32(xr + 4);
                        a2 = (int32_t)__sxtab16(a2, u);
                        a3 = mlk_dsp_sxtab16_ror8(a3, u);
                    }
                }
            }
            s[0] += (int16_t)a0;
            s[1] += a0 >> 16;
            s[2] += (int16_t)a1;
            s[3] += a1 >> 16;
            if (words == 2) {
                s[4] += (int16_t)a2;
                s[5] += a2 >> 16;
                s[6] += (int16_t)a3;
                s[7] += a3 >> 16;
            }
        }
    }
}

/* (acc +- h) / n, h = n / 2: mlk_pool_average with n >= 1. */
MLK_HOT int32_t mlk_dsp_pool_div(int32_t acc, int32_t n, int32_t h)
{
    return (acc > 0 ? acc + h : acc - h) / n;
}

/* Four averages (each in [-128, 127]: a mean of int8 values) packed into a word of bytes
 * in channel order from the lane-ordered sums s = (c0, c2, c1, c3). */
MLK_HOT int32_t mlk_dsp_avg_pack4(const int32_t *s, int32_t n, int32_t h)
{
    const uint32_t q0 = (uint8_t)mlk_dsp_pool_div(s[0], n, h);
    const uint32_t q2 = (uint8_t)mlk_dsp_pool_div(s[1], n, h);
    const uint32_t q1 = (uint8_t)mlk_dsp_pool_div(s[2], n, h);
    const uint32_t q3 = (uint8_t)mlk_dsp_pool_div(s[3], n, h);
    return (int32_t)(q0 | (q1 << 8) | (q2 << 16) | (q3 << 24));
}

MLK_HOT void mlk_dsp_avg_pool2d_i8(const mlk_avg_pool2d_params *rec, const int8_t *x,
                                   int8_t *y)
{
    const mlk_avg_pool2d_params g = *rec, *p = &g; /* see MLK_DEFINE_POOL */
    const int32_t lo = mlk_dsp_splat8(p->act_min), hi = mlk_dsp_splat8(p->act_max);
    const size_t ch = (size_t)p->ch, row = (size_t)p->in_w * ch;
    const int ch8 = p->ch & ~7, ch4 = p->ch & ~3;
    int b, oy, ox, c, r, k;
    for (b = 0; b < p->batches; ++b) {
        for (oy = 0; oy < p->out_h; ++oy) {
            for (ox = 0; ox < p->out_w; ++ox) {
                const mlk_pool_win w = MLK_POOL_WINDOW(p, b, oy, ox);
                const int8_t *xw = x + w.offset;
                const int32_t n0 = MLK_POOL_COUNT(p, w), border = MLK_POOL_BORDER(p, w);
                /* n = 0 only with no tap at all (acc = 0): 0 / 1 is mlk_pool_average's 0 */
                const int32_t n = n0 ? n0 : 1, h = n / 2;
                /* a window spanning the image width is one run of rows * in_w taps */
                const int full = w.cols == p->in_w;
                const int rows = full ? 1 : w.rows, cols = full ? w.rows * w.cols : w.cols;
                for (c = 0; c < ch8; c += 8) {
                    int32_t s[8];
                    for (k = 0; k < 8; ++k) {
                        s[k] = border;
                    }
                    mlk_dsp_avg_sum_i8(xw + c, rows, cols, ch, row, 2, s);
                    mlk_st32(y + c, mlk_dsp_min4(mlk_dsp_max4(mlk_dsp_avg_pack4(s, n, h), lo),
                                                 hi));
                    mlk_st32(y + c + 4,
                             mlk_dsp_min4(mlk_dsp_max4(mlk_dsp_avg_pack4(s + 4, n, h), lo), hi));
                }
                for (; c < ch4; c += 4) {
                    int32_t s[4];
                    for (k = 0; k < 4; ++k) {
                        s[k] = border;
                    }
                    mlk_dsp_avg_sum_i8(xw + c, rows, cols, ch, row, 1, s);
                    mlk_st32(y + c, mlk_dsp_min4(mlk_dsp_max4(mlk_dsp_avg_pack4(s, n, h), lo),
                                                 hi));
                }
                for (; c < p->ch; ++c) {
                    int32_t acc = border;
                    for (r = 0; r < w.rows; ++r) {
                        const int8_t *xr = xw + (size_t)r * row + (size_t)c;
                        for (k = 0; k < w.cols; ++k, xr += ch) {
                            acc += *xr;
                        }
                    }
                    y[c] = (int8_t)mlk_clamp32(mlk_dsp_pool_div(acc, n, h), p->act_min,
                                               p->act_max);
                }
                y += ch;
            }
        }
    }
}

/* ========================================================================== int16 */

/* 16x8 MAX_POOL_2D: two channels per word (SSUB16 + SEL), four per pass. */
MLK_HOT void mlk_dsp_max_pool2d_i16(const mlk_max_pool2d_params *rec, const int16_t *x,
                                    int16_t *y)
{
    const mlk_max_pool2d_params g = *rec, *p = &g; /* see MLK_DEFINE_POOL */
    const int32_t lo = mlk_dsp_splat16(p->act_min), hi = mlk_dsp_splat16(p->act_max);
    const size_t ch = (size_t)p->ch, row = (size_t)p->in_w * ch;
    const int ch4 = p->ch & ~3, ch2 = p->ch & ~1;
    int b, oy, ox, c, r, k;
    for (b = 0; b < p->batches; ++b) {
        for (oy = 0; oy < p->out_h; ++oy) {
            for (ox = 0; ox < p->out_w; ++ox) {
                const mlk_pool_win w = MLK_POOL_WINDOW(p, b, oy, ox);
                const int16_t *xw = x + w.offset;
                for (c = 0; c < ch4; c += 4) {
                    int32_t b01 = lo, b23 = lo;
                    for (r = 0; r < w.rows; ++r) {
                        const int16_t *xr = xw + (size_t)r * row + (size_t)c;
                        for (k = 0; k < w.cols; ++k, xr += ch) {
                            b01 = mlk_dsp_max2(mlk_ld32(xr), b01);
                            b23 = mlk_dsp_max2(mlk_ld32(xr + 2), b23);
                        }
                    }
                    mlk_st32(y + c, mlk_dsp_min2(b01, hi));
                    mlk_st32(y + c + 2, mlk_dsp_min2(b23, hi));
                }
                for (; c < ch2; c += 2) {
                    int32_t b01 = lo;
                    for (r = 0; r < w.rows; ++r) {
                        const int16_t *xr = xw + (size_t)r * row + (size_t)c;
                        for (k = 0; k < w.cols; ++k, xr += ch) {
                            b01 = mlk_dsp_max2(mlk_ld32(xr), b01);
                        }
                    }
                    mlk_st32(y + c, mlk_dsp_min2(b01, hi));
                }
                for (; c < p->ch; ++c) {
                    int32_t best = -32768;
                    for (r = 0; r < w.rows; ++r) {
                        const int16_t *xr = xw + (size_t)r * row + (size_t)c;
                        for (k = 0; k < w.cols; ++k, xr += ch) {
                            best = *xr > best ? *xr : best;
                        }
                    }
                    y[c] = (int16_t)mlk_clamp32(best, p->act_min, p->act_max);
                }
                y += ch;
            }
        }
    }
}

/* Two int16 averages (each in [-32768, 32767]: a mean of int16 values) packed into a word,
 * clamped lane-wise to [lo, hi] (words of act_min / act_max). */
MLK_HOT int32_t mlk_dsp_avg_pack2(int32_t s0, int32_t s1, int32_t n, int32_t h, int32_t lo,
                                  int32_t hi)
{
    const uint32_t q0 = (uint16_t)mlk_dsp_pool_div(s0, n, h);
    const uint32_t q1 = (uint16_t)mlk_dsp_pool_div(s1, n, h);
    return mlk_dsp_min2(mlk_dsp_max2((int32_t)(q0 | (q1 << 16)), lo), hi);
}

/* s[0..2*words) += the int32 sums of 2*words int16 channels (words = 1 or 2) at xw over
 * rows x cols taps: the low channel of a word sign-extended and added (SXTAH), the high one
 * ADD ..., ASR #16. */
MLK_HOT void mlk_dsp_avg_sum_i16(const int16_t *xw, int rows, int cols, size_t step,
                                 size_t row, int words, int32_t *s)
{
    int32_t s0 = s[0], s1 = s[1], s2 = 0, s3 = 0;
    int r, k;
    if (words == 2) {
        s2 = s[2];
        s3 = s[3];
    }
    for (r = 0; r < rows; ++r) {
        const int16_t *xr = xw + (size_t)r * row;
        for (k = 0; k < cols; ++k, xr += step) {
            const int32_t v = mlk_ld32(xr);
            s0 += (int16_t)v;
            s1 += v >> 16;
            if (words == 2) {
                const int32_t u = mlk_ld32(xr + 2);
                s2 += (int16_t)u;
                s3 += u >> 16;
            }
        }
    }
    s[0] = s0;
    s[1] = s1;
    if (words == 2) {
        s[2] = s2;
        s[3] = s3;
    }
}

/* 16x8 AVERAGE_POOL_2D: four channels a pass, then two, then one. */
MLK_HOT void mlk_dsp_avg_pool2d_i16(const mlk_avg_pool2d_params *rec, const int16_t *x,
                                    int16_t *y)
{
    const mlk_avg_pool2d_params g = *rec, *p = &g; /* see MLK_DEFINE_POOL */
    const int32_t lo = mlk_dsp_splat16(p->act_min), hi = mlk_dsp_splat16(p->act_max);
    const size_t ch = (size_t)p->ch, row = (size_t)p->in_w * ch;
    const int ch4 = p->ch & ~3, ch2 = p->ch & ~1;
    int b, oy, ox, c, r, k;
    for (b = 0; b < p->batches; ++b) {
        for (oy = 0; oy < p->out_h; ++oy) {
            for (ox = 0; ox < p->out_w; ++ox) {
                const mlk_pool_win w = MLK_POOL_WINDOW(p, b, oy, ox);
                const int16_t *xw = x + w.offset;
                const int32_t n0 = MLK_POOL_COUNT(p, w), border = MLK_POOL_BORDER(p, w);
                const int32_t n = n0 ? n0 : 1, h = n / 2;
                const int full = w.cols == p->in_w;
                const int rows = full ? 1 : w.rows, cols = full ? w.rows * w.cols : w.cols;
                for (c = 0; c < ch4; c += 4) {
                    int32_t s[4] = {border, border, border, border};
                    mlk_dsp_avg_sum_i16(xw + c, rows, cols, ch, row, 2, s);
                    mlk_st32(y + c, mlk_dsp_avg_pack2(s[0], s[1], n, h, lo, hi));
                    mlk_st32(y + c + 2, mlk_dsp_avg_pack2(s[2], s[3], n, h, lo, hi));
                }
                for (; c < ch2; c += 2) {
                    int32_t s[2] = {border, border};
                    mlk_dsp_avg_sum_i16(xw + c, rows, cols, ch, row, 1, s);
                    mlk_st32(y + c, mlk_dsp_avg_pack2(s[0], s[1], n, h, lo, hi));
                }
                for (; c < p->ch; ++c) {
                    int32_t acc = border;
                    for (r = 0; r < w.rows; ++r) {
                        const int16_t *xr = xw + (size_t)r * row + (size_t)c;
                        for (k = 0; k < w.cols; ++k, xr += ch) {
                            acc += *xr;
                        }
                    }
                    y[c] = (int16_t)mlk_clamp32(mlk_dsp_pool_div(acc, n, h), p->act_min,
                                                p->act_max);
                }
                y += ch;
            }
        }
    }
}

#else
#define MLK_DSP_POOL 0
#endif /* MLK_DSP */

#endif /* MICROLITH_KERNELS_DSP_POOL_H */
