/* microlith_kernels_dsp.h -- CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED for Cortex-M
 * cores with the DSP extension (M4, M7, M33/M35P with DSP, M55), written with the ACLE
 * intrinsics of <arm_acle.h>. Compiled only where __ARM_FEATURE_DSP is set and MLK_PORTABLE
 * is not defined; everywhere else MLK_DSP is 0 and the portable kernels run.
 *
 * Same integer maths as the portable kernels: only the order in which the exact int32
 * products are summed changes, so the outputs are byte-identical (the renderer checks that
 * |bias| + 256 sum |w| < 2^31, so no partial sum wraps).
 *
 * Operand pairs: for a 32-bit word v = [b0 b1 b2 b3] of int8, SXTB16(v) = (b0, b2) and
 * SXTB16(v ror 8) = (b1, b3) as two int16 lanes; SMLAD(a, b, acc) = acc + a.lo*b.lo +
 * a.hi*b.hi. Weights are widened this way as they are read; activations are widened once,
 * into the columns of two output pixels (im2col, int16, in the planned scratch), in the
 * same lane order and interleaved: group g of four filter elements e0..e3 is the 8 int16
 * at 8g: (e0, e2) of pixel 0, (e0, e2) of pixel 1, (e1, e3) of pixel 0, (e1, e3) of pixel 1;
 * the last n % 4 elements follow in order, pixel 0's then pixel 1's. One SMLAD of a weight
 * pair and a column word is two exact products. Padding taps hold the input zero point,
 * so the zero-point-folded bias is right for every window.
 */
#ifndef MICROLITH_KERNELS_DSP_H
#define MICROLITH_KERNELS_DSP_H

#include "microlith_kernels_common.h"

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP && !defined(MLK_PORTABLE)
#define MLK_DSP 1
#include <arm_acle.h>
#else
#define MLK_DSP 0
#endif

/* Scratch bytes of the DSP convolution for a filter of k = k_h * k_w * in_c elements: two
 * int16 columns, and when in_c is not a multiple of four one more, in natural order, that
 * the window is gathered into first (select-kernels computes the same figure). */
#define MLK_CONV_SCRATCH_BYTES(k, in_c) (((in_c) % 4 ? 6 : 4) * (size_t)(k))

/* MBQM(x, m, s) for m >= 0 (every multiplier QuantizeMultiplier gives): SRDHM's saturating
 * case needs m = -2^31, and for m >= 0 its two nudges are one: (a m + 2^30) / 2^31 truncated
 * equals floor((a m + 2^30) / 2^31) for either sign of a m (for a m < 0 the truncated
 * quotient of a m + 1 - 2^30 is the floor of a m + 2^30), so SRDHM is one 64-bit
 * multiply-accumulate (SMLAL) and a shift; RDBP as in mlk_rdbp. Shifts of negative values
 * here are GCC's arithmetic shifts (this header is compiled only by GCC-compatible Arm
 * compilers when MLK_DSP is set; the host tests compile it with gcc). */
/* The part of mlk_mbqm_pos after the per-channel shift split: left = max(s, 0), right =
 * max(-s, 0), mask = 2^right - 1. */
MLK_HOT int32_t mlk_mbqm_split(int32_t x, int32_t m, int left, int right, int32_t mask)
{
    const int32_t a = mlk_i32((uint32_t)x << left);
    const int32_t h = (int32_t)(((int64_t)a * m + ((int64_t)1 << 30)) >> 31);
    const int32_t threshold = (mask >> 1) + (int32_t)((uint32_t)h >> 31);
    return (h >> right) + ((h & mask) > threshold);
}

MLK_HOT int32_t mlk_mbqm_pos(int32_t x, int32_t m, int s)
{
    const int left = s & ~(s >> 31); /* max(s, 0) */
    const int right = left - s;      /* max(-s, 0) */
    return mlk_mbqm_split(x, m, left, right, (int32_t)(((uint32_t)1 << right) - 1u));
}

/* y0 = out(MBQM(a0)), y1 = out(MBQM(a1)) for two accumulators of one output channel. */
MLK_HOT void mlk_out2_i8(int32_t a0, int32_t a1, int32_t m, int s, int32_t zp, int32_t lo,
                         int32_t hi, int8_t *y0, int8_t *y1)
{
    const int left = s & ~(s >> 31);
    const int right = left - s;
    const int32_t mask = (int32_t)(((uint32_t)1 << right) - 1u);
    *y0 = mlk_out_i8(mlk_mbqm_split(a0, m, left, right, mask), zp, lo, hi);
    *y1 = mlk_out_i8(mlk_mbqm_split(a1, m, left, right, mask), zp, lo, hi);
}

#if MLK_DSP

MLK_HOT int32_t mlk_ld32(const void *p)
{
    int32_t v;
    memcpy(&v, p, sizeof v); /* one LDR: the M-profile cores allow unaligned words */
    return v;
}

MLK_HOT void mlk_st32(void *p, int32_t v) { memcpy(p, &v, sizeof v); }

/* SXTB16(v ror 8): one instruction (GCC's arm_acle.h has no rotating form, and writes
 * __sxtb16(__ror(v, 8)) as two). */
MLK_HOT int32_t mlk_sxtb16_ror8(int32_t v)
{
#if defined(__GNUC__)
    int32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(v));
    return r;
#else
    return __sxtb16(__ror((uint32_t)v, 8));
#endif
}

/* y_zp + MBQM(a, m, -r) from the renderer's constants q = [m2, half, r]
 * (render_nn.requant_table: m2 = 2m - 2^32, half = 2^(r-1) + y_zp 2^r, r >= 1): one SMMLAR,
 * the high word of (a + half + (a >> 31)) 2^32 + a m2 + 2^31 (the 64-bit sum of a SMLAL of
 * a * m2 onto hi = a + half + (a >> 31), lo = 2^31, in one instruction), then hi >> r. The
 * exact 64-bit sum is 2 a m + 2^31 + (half + (a >> 31)) 2^32, whose floor over 2^(32+r) is
 * SRDHM then round-half-away RDBP in one rounding, plus y_zp (proof in requant_table). */
MLK_HOT int32_t mlk_rq(int32_t a, const int32_t *q)
{
    int32_t hi = a + q[1] + (a >> 31);
#if defined(__GNUC__)
    __asm__("smmlar %0, %1, %2, %0" : "+r"(hi) : "r"(a), "r"(q[0]));
#else
    {
        const uint64_t v = ((uint64_t)(uint32_t)hi << 32) + 0x80000000u +
                           (uint64_t)((int64_t)a * q[0]);
        hi = (int32_t)(uint32_t)(v >> 32);
    }
#endif
    return hi >> q[2];
}

/* clamp(y_zp + MBQM(a), lo, hi) as int8, from the constants q (mlk_rq): SSAT to int8 first
 * (act_min >= -128, act_max <= 127, so the clamp is unchanged); the bounds tests fold away
 * at the call sites where the record gives the full int8 range. */
MLK_HOT int8_t mlk_rq_out(int32_t a, const int32_t *q, int32_t lo, int32_t hi)
{
    int32_t v = __ssat(mlk_rq(a, q), 8);
    if (lo > -128 && v < lo) {
        v = lo;
    }
    if (hi < 127 && v > hi) {
        v = hi;
    }
    return (int8_t)v;
}

/* Output channel c of one pixel: the renderer's SMMLAR constants when it wrote them (rq), else
 * the general MBQM (the test folds where the record is a constant). */
MLK_HOT int8_t mlk_dsp_out(const int32_t *rq, const int32_t *mult, const int32_t *shift, int c,
                           int32_t a, int32_t zp, int32_t lo, int32_t hi)
{
    if (rq != NULL) {
        return mlk_rq_out(a, rq + 3 * (size_t)c, lo, hi);
    }
    return mlk_out_i8(mlk_mbqm_pos(a, mult[c], shift[c]), zp, lo, hi);
}

/* Two accumulators of output channel c (two pixels or rows) to y0, y1 (mlk_dsp_out). */
MLK_HOT void mlk_dsp_out2(const int32_t *rq, const int32_t *mult, const int32_t *shift, int c,
                          int32_t a0, int32_t a1, int32_t zp, int32_t lo, int32_t hi, int8_t *y0,
                          int8_t *y1)
{
    if (rq != NULL) {
        *y0 = mlk_rq_out(a0, rq + 3 * (size_t)c, lo, hi);
        *y1 = mlk_rq_out(a1, rq + 3 * (size_t)c, lo, hi);
        return;
    }
    mlk_out2_i8(a0, a1, mult[c], shift[c], zp, lo, hi, y0, y1);
}

/* (b0, b2) and (b1, b3) of the int8 word at p. */
#define MLK_WIDEN(p, lo, hi)                     \
    do {                                         \
        const int32_t mlk_w_ = mlk_ld32(p);      \
        (lo) = __sxtb16(mlk_w_);                 \
        (hi) = mlk_sxtb16_ror8(mlk_w_);          \
    } while (0)

/* dst[0..n) = src[0..n), a word at a time (unaligned words are allowed on these cores). */
MLK_HOT void mlk_copy_i8(int8_t *dst, const int8_t *src, int n)
{
    for (; n >= 4; n -= 4, dst += 4, src += 4) {
        mlk_st32(dst, mlk_ld32(src));
    }
    for (; n > 0; --n) {
        *dst++ = *src++;
    }
}

/* The k_h x k_w x in_c window at (iy0, ix0) in natural order as int8 into t8 (n bytes),
 * taps outside the image holding x_zp; without dilation the taps of a filter row inside the
 * image are one contiguous run of the input row, copied a word at a time. */
MLK_HOT void mlk_window_i8(const int8_t *xb, int8_t *t8, int in_h, int in_w, int in_c,
                           int k_h, int k_w, int dil_h, int dil_w, int iy0, int ix0,
                           int32_t x_zp)
{
    const int rn = k_w * in_c;
    int ky, kx, kx0, kx1;
    mlk_window(ix0, k_w, dil_w, in_w, &kx0, &kx1);
    for (ky = 0; ky < k_h; ++ky, t8 += rn) {
        const int iy = iy0 + ky * dil_h;
        const int8_t *row;
        if (iy < 0 || iy >= in_h || kx1 == kx0) {
            memset(t8, x_zp, (size_t)rn);
            continue;
        }
        row = xb + (size_t)iy * in_w * in_c;
        if (kx0 > 0) {
            memset(t8, x_zp, (size_t)kx0 * in_c);
        }
        if (kx1 < k_w) {
            memset(t8 + kx1 * in_c, x_zp, (size_t)(k_w - kx1) * in_c);
        }
        if (dil_w == 1) {
            mlk_copy_i8(t8 + kx0 * in_c, row + (ix0 + kx0) * in_c, (kx1 - kx0) * in_c);
            continue;
        }
        for (kx = kx0; kx < kx1; ++kx) {
            mlk_copy_i8(t8 + kx * in_c, row + (ix0 + kx * dil_w) * in_c, in_c);
        }
    }
}

/* Column j (0 or 1) of the interleaved pair: the k_h x k_w x in_c window at (iy0, ix0),
 * int16, taps outside the image holding x_zp. With in_c a multiple of four each group of
 * four is one input word, widened straight into place; otherwise the window is gathered in
 * natural order as int8 into tmp (n bytes of its n int16, mlk_window_i8) and then widened
 * four at a time (one word, two SXTB16) into place. */
MLK_HOT void mlk_im2col_i8(const int8_t *xb, int16_t *col, int16_t *tmp, int j, int in_h,
                           int in_w, int in_c, int k_h, int k_w, int dil_h, int dil_w, int iy0,
                           int ix0, int32_t x_zp)
{
    const int n = k_h * k_w * in_c, n4 = n & ~3;
    const int32_t zz = (int32_t)(((uint32_t)(uint16_t)x_zp << 16) | (uint16_t)x_zp);
    int ky, kx, c, k;
    int16_t *out = col + 2 * j;
    if ((in_c & 3) != 0) {
        const int8_t *t8 = (const int8_t *)tmp;
        mlk_window_i8(xb, (int8_t *)tmp, in_h, in_w, in_c, k_h, k_w, dil_h, dil_w, iy0, ix0,
                      x_zp);
        for (k = 0; k < n4; k += 4, out += 8) {
            int32_t lo, hi;
            MLK_WIDEN(t8 + k, lo, hi);
            mlk_st32(out, lo);
            mlk_st32(out + 4, hi);
        }
        for (k = n4; k < n; ++k) {
            col[2 * n4 + j * (n - n4) + (k - n4)] = t8[k];
        }
        return;
    }
    for (ky = 0; ky < k_h; ++ky) {
        const int iy = iy0 + ky * dil_h;
        for (kx = 0; kx < k_w; ++kx) {
            const int ix = ix0 + kx * dil_w;
            const int inside = iy >= 0 && iy < in_h && ix >= 0 && ix < in_w;
            const int8_t *xp = xb + ((size_t)iy * in_w + ix) * in_c;
            for (c = 0; c < in_c; c += 4, out += 8) { /* two words a group, 8 int16 apart */
                int32_t lo = zz, hi = zz;
                if (inside) {
                    MLK_WIDEN(xp + c, lo, hi);
                }
                mlk_st32(out, lo);
                mlk_st32(out + 4, hi);
            }
        }
    }
}

/* Unroll the next loop completely when its trip count is a constant of the record (GCC at
 * -O2 does not peel a 3x3 tap nest by itself); nothing elsewhere. */
#if defined(__GNUC__) && !defined(__clang__)
#define MLK_UNROLL _Pragma("GCC unroll 16")
#else
#define MLK_UNROLL
#endif

/* The 2x2 dot products are written once (always inlined, ..._body) and also called out of
 * line: long loops run out of line, where they have every register to themselves (no
 * accumulator spills); dot products of at most MLK_DSP_INLINE_N elements are inlined at the
 * call site, where the element count is a constant and the loop unrolls. */
#if defined(__GNUC__)
#define MLK_DSP_LOOP static __attribute__((noinline))
#else
#define MLK_DSP_LOOP static
#endif
#ifndef MLK_DSP_INLINE_N
#define MLK_DSP_INLINE_N 32
#endif

MLK_HOT void mlk_dsp_dot2x2_body(const int8_t *w0, const int8_t *w1, const int16_t *col,
                                 int n, int32_t *acc)
{
    const int n4 = n & ~3, tail = n - n4;
    const ptrdiff_t wd = w1 - w0;
    const int8_t *wp = w0;
    const int16_t *cp = col;
    int32_t a00 = acc[0], a10 = acc[1], a01 = acc[2], a11 = acc[3];
    int k;
    for (k = n4 >> 2; k > 0; --k, wp += 4, cp += 8) {
        const int32_t v0 = mlk_ld32(wp), v1 = mlk_ld32(wp + wd);
        int32_t t0 = __sxtb16(v0), t1 = __sxtb16(v1);
        int32_t x = mlk_ld32(cp);
        a00 = __smlad(t0, x, a00);
        a10 = __smlad(t1, x, a10);
        x = mlk_ld32(cp + 2);
        a01 = __smlad(t0, x, a01);
        a11 = __smlad(t1, x, a11);
        t0 = mlk_sxtb16_ror8(v0);
        t1 = mlk_sxtb16_ror8(v1);
        x = mlk_ld32(cp + 4);
        a00 = __smlad(t0, x, a00);
        a10 = __smlad(t1, x, a10);
        x = mlk_ld32(cp + 6);
        a01 = __smlad(t0, x, a01);
        a11 = __smlad(t1, x, a11);
    }
    for (k = 0; k < tail; ++k) {
        const int32_t x0 = cp[k], x1 = cp[tail + k];
        a00 += (int32_t)wp[k] * x0;
        a10 += (int32_t)wp[wd + k] * x0;
        a01 += (int32_t)wp[k] * x1;
        a11 += (int32_t)wp[wd + k] * x1;
    }
    acc[0] = a00;
    acc[1] = a10;
    acc[2] = a01;
    acc[3] = a11;
}

MLK_DSP_LOOP void mlk_dsp_dot2x2_call(const int8_t *w0, const int8_t *w1, const int16_t *col,
                                      int n, int32_t *acc)
{
    mlk_dsp_dot2x2_body(w0, w1, col, n, acc);
}

MLK_HOT void mlk_dsp_dot2x2(const int8_t *w0, const int8_t *w1, const int16_t *col, int n,
                            int32_t *acc)
{
    if (n <= MLK_DSP_INLINE_N) {
        mlk_dsp_dot2x2_body(w0, w1, col, n, acc);
    } else {
        mlk_dsp_dot2x2_call(w0, w1, col, n, acc);
    }
}

/* w0 . column j of the interleaved pair, over n elements. */
MLK_INLINE int32_t mlk_dsp_dot1x1(const int8_t *w0, const int16_t *col, int j, int n,
                                  int32_t acc)
{
    const int n4 = n & ~3;
    const int16_t *cp = col + 2 * j;
    int k;
    for (k = 0; k < n4; k += 4, cp += 8) {
        int32_t wl, wh;
        MLK_WIDEN(w0 + k, wl, wh);
        acc = __smlad(wl, mlk_ld32(cp), acc);
        acc = __smlad(wh, mlk_ld32(cp + 4), acc);
    }
    for (k = n4; k < n; ++k) {
        acc += (int32_t)w0[k] * col[2 * n4 + j * (n - n4) + (k - n4)];
    }
    return acc;
}

/* Output channels of `pixels` (1 or 2) output pixels from their columns. */
MLK_HOT void mlk_dsp_conv_pixels(const int16_t *col, int pixels, const int8_t *w,
                                    const int32_t *bias_folded, const int32_t *mult,
                                    const int32_t *shift, const int32_t *rq, int8_t *y0, int8_t *y1, int n,
                                    int out_c, int32_t y_zp, int32_t act_min, int32_t act_max)
{
    const int pairs = pixels == 2 ? out_c >> 1 : 0;
    const int8_t *w0 = w;
    int oc, i;
    for (i = 0; i < pairs; ++i, w0 += 2 * (size_t)n) {
        int32_t acc[4];
        oc = 2 * i;
        acc[0] = acc[2] = bias_folded[oc];
        acc[1] = acc[3] = bias_folded[oc + 1];
        mlk_dsp_dot2x2(w0, w0 + n, col, n, acc);
        mlk_dsp_out2(rq, mult, shift, oc, acc[0], acc[2], y_zp, act_min, act_max, y0 + oc,
                     y1 + oc);
        mlk_dsp_out2(rq, mult, shift, oc + 1, acc[1], acc[3], y_zp, act_min, act_max,
                     y0 + oc + 1, y1 + oc + 1);
    }
    for (oc = 2 * pairs; oc < out_c; ++oc, w0 += n) {
        y0[oc] = mlk_dsp_out(rq, mult, shift, oc, mlk_dsp_dot1x1(w0, col, 0, n, bias_folded[oc]),
                             y_zp, act_min, act_max);
        if (pixels == 2) {
            y1[oc] = mlk_dsp_out(rq, mult, shift, oc,
                                 mlk_dsp_dot1x1(w0, col, 1, n, bias_folded[oc]), y_zp, act_min,
                                 act_max);
        }
    }
}

/* CONV_2D with groups == 1 (any kernel, stride, dilation, padding): the output pixels in
 * pairs, each pair's two columns built in scratch (MLK_CONV_SCRATCH_BYTES), then a 2x2
 * blocked matrix product over the filter rows. */
MLK_HOT void mlk_dsp_conv2d_i8(const mlk_conv2d_params *p, const int8_t *x, int8_t *y)
{
    const int n = p->k_h * p->k_w * p->in_c;
    const int pixels = p->out_h * p->out_w;
    int16_t *col = p->scratch;
    int16_t *tmp = col + 2 * (size_t)n; /* used when in_c % 4 != 0 */
    int b, i, j;
    for (b = 0; b < p->batches; ++b) {
        const int8_t *xb = x + (size_t)b * p->in_h * p->in_w * p->in_c;
        int8_t *yb = y + (size_t)b * pixels * p->out_c;
        for (i = 0; i < pixels; i += 2) {
            const int count = pixels - i < 2 ? pixels - i : 2;
            for (j = 0; j < count; ++j) {
                const int oy = (i + j) / p->out_w, ox = (i + j) % p->out_w;
                mlk_im2col_i8(xb, col, tmp, j, p->in_h, p->in_w, p->in_c, p->k_h,
                              p->k_w, p->dil_h, p->dil_w, oy * p->stride_h - p->pad_top,
                              ox * p->stride_w - p->pad_left, p->x_zp);
            }
            mlk_dsp_conv_pixels(col, count, p->w, p->bias_folded, p->mult, p->shift, p->rq,
                                yb + (size_t)i * p->out_c, yb + (size_t)(i + 1) * p->out_c, n,
                                p->out_c, p->y_zp, p->act_min, p->act_max);
        }
    }
}

#endif /* MLK_DSP */

#include "microlith_kernels_dsp_fc.h" /* fully connected and depthwise */
#include "microlith_kernels_dsp_dw3.h" /* depthwise, 3 wide, through transposed rows */

#endif /* MICROLITH_KERNELS_DSP_H */
