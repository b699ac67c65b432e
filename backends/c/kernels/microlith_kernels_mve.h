/* microlith_kernels_mve.h -- FULLY_CONNECTED, CONV_2D (one group) and DEPTHWISE_CONV_2D
 * (depth multiplier 1) for cores with integer Helium (MVE: the Cortex-M55), written with the
 * ACLE intrinsics of <arm_mve.h>. Compiled only where __ARM_FEATURE_MVE has bit 0 (integer
 * MVE) and the DSP kernels are on (MLK_DSP: MVE implies the DSP extension); -DMLK_NO_MVE
 * keeps the DSP kernels on an MVE core (for comparison), -DMLK_PORTABLE the portable ones.
 *
 * Same integer maths as the portable kernels: only the order in which the exact int32
 * products are summed changes (the renderer checks |bias| + 256 sum |w| < 2^31, so no
 * partial sum wraps, in any order).
 *
 * Dot products: VMLADAVA.S8 adds the 16 products of two int8x16 vectors to a 32-bit scalar;
 * a depth that is not a multiple of 16 ends with one predicated step (VCTP.8: lanes past the
 * depth are not loaded and add nothing). Four output units share each input vector.
 *
 * Requantization of four channels at once, from the renderer's table q = [m2, half, r] per
 * channel (mlk_rq in microlith_kernels_dsp.h, proof in render_nn.requant_table):
 *   h = a + half + (a >> 31) + VRMULH(a, m2),  y = h >> r
 * VRMULH.S32 is (a m2 + 2^31) >> 32 on the exact 64-bit product, so hi + VRMULH is mlk_rq's
 * SMMLAR (hi 2^32 + a m2 + 2^31) >> 32: adding hi 2^32 carries nothing into the low word.
 * VSHL by -r is the arithmetic right shift. So every lane is mlk_rq's integer. Then VMAX / VMIN with the
 * activation bounds (within [-128, 127], so the SSAT of mlk_rq_out changes nothing) and a
 * truncating byte store. Without the table (rq NULL) each lane takes the general MBQM.
 */
#ifndef MICROLITH_KERNELS_MVE_H
#define MICROLITH_KERNELS_MVE_H

#include "microlith_kernels_dsp.h"

#if MLK_DSP && defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1) && \
    !defined(MLK_PORTABLE) && !defined(MLK_NO_MVE)
#define MLK_MVE 1
#include <arm_mve.h>
#else
#define MLK_MVE 0
#endif

#if MLK_MVE

/* Lanes j < 4 of channels c + j: the requantized outputs, clamped to [lo, hi]; lanes off in
 * p are not read from the table. */
MLK_HOT int32x4_t mlk_mve_rq4(int32x4_t a, const int32_t *q, mve_pred16_t p, int32_t lo,
                              int32_t hi)
{
    const uint32x4_t off = vmulq_n_u32(vidupq_n_u32(0u, 1), 3u); /* 0, 3, 6, 9 (words) */
    const int32x4_t m2 = vldrwq_gather_shifted_offset_z_s32(q, off, p);
    const int32x4_t half = vldrwq_gather_shifted_offset_z_s32(q + 1, off, p);
    const int32x4_t r = vldrwq_gather_shifted_offset_z_s32(q + 2, off, p);
    int32x4_t h = vaddq_s32(vaddq_s32(a, half), vshrq_n_s32(a, 31));
    h = vaddq_s32(h, vrmulhq_s32(a, m2));
    h = vshlq_s32(h, vnegq_s32(r));
    return vminq_s32(vmaxq_s32(h, vdupq_n_s32(lo)), vdupq_n_s32(hi));
}

/* y[j] = out(acc lane j) for channels c + j, j < n (1..4). */
MLK_HOT void mlk_mve_out4(int32x4_t acc, const int32_t *rq, const int32_t *mult,
                          const int32_t *shift, int c, int n, int32_t zp, int32_t lo,
                          int32_t hi, int8_t *y)
{
    const mve_pred16_t p = vctp32q((uint32_t)n);
    if (rq != NULL) {
        vstrbq_p_s32(y, mlk_mve_rq4(acc, rq + 3 * (size_t)c, p, lo, hi), p);
    } else {
        int32_t a[4];
        int j;
        vst1q_s32(a, acc);
        for (j = 0; j < n; ++j) {
            y[j] = mlk_out_i8(mlk_mbqm_pos(a[j], mult[c + j], shift[c + j]), zp, lo, hi);
        }
    }
}

/* (x . w0, x . w1, x . w2, x . w3) over n int8 elements. */
MLK_HOT int32x4_t mlk_mve_dot1x4(const int8_t *x, const int8_t *w0, const int8_t *w1,
                                 const int8_t *w2, const int8_t *w3, int n)
{
    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    int k;
    for (k = 0; k + 16 <= n; k += 16) {
        const int8x16_t xv = vld1q_s8(x + k);
        a0 = vmladavaq_s8(a0, xv, vld1q_s8(w0 + k));
        a1 = vmladavaq_s8(a1, xv, vld1q_s8(w1 + k));
        a2 = vmladavaq_s8(a2, xv, vld1q_s8(w2 + k));
        a3 = vmladavaq_s8(a3, xv, vld1q_s8(w3 + k));
    }
    if (k < n) {
        const mve_pred16_t p = vctp8q((uint32_t)(n - k));
        const int8x16_t xv = vldrbq_z_s8(x + k, p);
        a0 = vmladavaq_p_s8(a0, xv, vldrbq_z_s8(w0 + k, p), p);
        a1 = vmladavaq_p_s8(a1, xv, vldrbq_z_s8(w1 + k, p), p);
        a2 = vmladavaq_p_s8(a2, xv, vldrbq_z_s8(w2 + k, p), p);
        a3 = vmladavaq_p_s8(a3, xv, vldrbq_z_s8(w3 + k, p), p);
    }
    {
        int32x4_t v = vdupq_n_s32(a0);
        v = vsetq_lane_s32(a1, v, 1);
        v = vsetq_lane_s32(a2, v, 2);
        return vsetq_lane_s32(a3, v, 3);
    }
}

/* y[r][o] = out(bias_folded[o] + x_r . w_o) for rows r < rows of depth int8 (x_r = x + r
 * depth, y_r = y + r units) and units o < units (w_o = w + o depth): four units per pass;
 * past the last unit the weight rows repeat the last one and their lanes are not stored. */
MLK_HOT void mlk_mve_fc_rows(const int8_t *x, int rows, int depth, const int8_t *w, int units,
                             const int32_t *bias_folded, const int32_t *rq,
                             const int32_t *mult, const int32_t *shift, int32_t zp,
                             int32_t lo, int32_t hi, int8_t *y)
{
    int o, r;
    for (o = 0; o < units; o += 4) {
        const int n = units - o < 4 ? units - o : 4;
        const int8_t *w0 = w + (size_t)o * depth;
        const int8_t *w1 = n > 1 ? w0 + depth : w0;
        const int8_t *w2 = n > 2 ? w1 + depth : w1;
        const int8_t *w3 = n > 3 ? w2 + depth : w2;
        const int32x4_t bias = vldrwq_z_s32(bias_folded + o, vctp32q((uint32_t)n));
        for (r = 0; r < rows; ++r) {
            const int32x4_t acc = mlk_mve_dot1x4(x + (size_t)r * depth, w0, w1, w2, w3, depth);
            mlk_mve_out4(vaddq_s32(acc, bias), rq, mult, shift, o, n, zp, lo, hi,
                         y + (size_t)r * units + o);
        }
    }
}

/* FULLY_CONNECTED (also every 1x1 convolution over its pixels). */
MLK_HOT void mlk_mve_fully_connected_i8(const mlk_fully_connected_params *p, const int8_t *x,
                                        int8_t *y)
{
    mlk_mve_fc_rows(x, p->batches, p->depth, p->w, p->units, p->bias_folded, p->rq, p->mult,
                    p->shift, p->y_zp, p->act_min, p->act_max, y);
}

/* dst[0..n) = src[0..n) (src NULL: the byte v), 16 bytes a step, the last step predicated. */
MLK_HOT void mlk_mve_copy8(int8_t *dst, const int8_t *src, int8_t v, int n)
{
    int k;
    for (k = 0; k < n; k += 16) {
        const mve_pred16_t p = vctp8q((uint32_t)(n - k));
        vstrbq_p_s8(dst + k, src != NULL ? vldrbq_z_s8(src + k, p) : vdupq_n_s8(v), p);
    }
}

/* The k_h x k_w x in_c window at (iy0, ix0) as int8 in natural order (the filter's), taps
 * outside the image holding x_zp (so the zero-point-folded bias is right for every window);
 * a row of taps inside the image with dil_w == 1 is one contiguous copy. */
MLK_HOT void mlk_mve_im2col_i8(const mlk_conv2d_params *p, const int8_t *xb, int8_t *col,
                               int iy0, int ix0)
{
    const int c_n = p->in_c, row_n = p->k_w * c_n;
    const int8_t zp = (int8_t)p->x_zp;
    const int row_inside = p->dil_w == 1 && ix0 >= 0 && ix0 + p->k_w <= p->in_w;
    int ky, kx;
    for (ky = 0; ky < p->k_h; ++ky, col += row_n) {
        const int iy = iy0 + ky * p->dil_h;
        const int8_t *xr = xb + (size_t)iy * p->in_w * c_n;
        if (iy < 0 || iy >= p->in_h) {
            mlk_mve_copy8(col, NULL, zp, row_n);
        } else if (row_inside) {
            mlk_mve_copy8(col, xr + (size_t)ix0 * c_n, 0, row_n);
        } else {
            for (kx = 0; kx < p->k_w; ++kx) {
                const int ix = ix0 + kx * p->dil_w;
                const int inside = ix >= 0 && ix < p->in_w;
                mlk_mve_copy8(col + kx * c_n, inside ? xr + (size_t)ix * c_n : NULL, zp, c_n);
            }
        }
    }
}

/* CONV_2D with groups == 1: the output pixels four at a time, their windows gathered into
 * four int8 columns of the planned scratch (4 k bytes <= MLK_CONV_SCRATCH_BYTES), then the
 * fully connected product of those columns with the filters. */
MLK_HOT void mlk_mve_conv2d_i8(const mlk_conv2d_params *p, const int8_t *x, int8_t *y)
{
    const int n = p->k_h * p->k_w * p->in_c;
    const int pixels = p->out_h * p->out_w;
    int8_t *col = (int8_t *)p->scratch;
    int b, i, j;
    for (b = 0; b < p->batches; ++b) {
        const int8_t *xb = x + (size_t)b * p->in_h * p->in_w * p->in_c;
        int8_t *yb = y + (size_t)b * pixels * p->out_c;
        for (i = 0; i < pixels; i += 4) {
            const int count = pixels - i < 4 ? pixels - i : 4;
            for (j = 0; j < count; ++j) {
                const int oy = (i + j) / p->out_w, ox = (i + j) % p->out_w;
                mlk_mve_im2col_i8(p, xb, col + (size_t)j * n, oy * p->stride_h - p->pad_top,
                                  ox * p->stride_w - p->pad_left);
            }
            mlk_mve_fc_rows(col, count, n, p->w, p->out_c, p->bias_folded, p->rq, p->mult,
                            p->shift, p->y_zp, p->act_min, p->act_max,
                            yb + (size_t)i * p->out_c);
        }
    }
}

/* Channels c..c+15 (lanes past c_n off) of one output pixel of a depthwise convolution with
 * depth multiplier 1: four int32x4 accumulators, each tap VLDRB.S32 (four int8 widened as
 * loaded) of input and weights, VMUL and VADD per four channels; a tap outside the image adds
 * x_zp w, so the zero-point-folded bias is right for every window. (MVE has no lane-wise
 * vector-by-vector multiply-accumulate: VMUL then VADD.) */
MLK_HOT void mlk_mve_dw16(const mlk_depthwise_conv2d_params *p, const int8_t *xb, int8_t *yp,
                          int iy0, int ix0, int full, int c)
{
    const int c_n = p->in_c, left = c_n - c;
    const ptrdiff_t row = (ptrdiff_t)p->in_w * c_n;
    const mve_pred16_t p0 = vctp32q((uint32_t)left);
    const mve_pred16_t p1 = vctp32q((uint32_t)(left > 4 ? left - 4 : 0));
    const mve_pred16_t p2 = vctp32q((uint32_t)(left > 8 ? left - 8 : 0));
    const mve_pred16_t p3 = vctp32q((uint32_t)(left > 12 ? left - 12 : 0));
    int32x4_t a0 = vdupq_n_s32(0), a1 = a0, a2 = a0, a3 = a0;
    int ky, kx;
    MLK_UNROLL
    for (ky = 0; ky < p->k_h; ++ky) {
        const int iy = iy0 + ky * p->dil_h;
        MLK_UNROLL
        for (kx = 0; kx < p->k_w; ++kx) {
            const int ix = ix0 + kx * p->dil_w;
            const int8_t *wp = p->w + (size_t)(ky * p->k_w + kx) * c_n + c;
            if (full || (iy >= 0 && iy < p->in_h && ix >= 0 && ix < p->in_w)) {
                const int8_t *xp = xb + iy * row + (ptrdiff_t)ix * c_n + c;
                if (left >= 16) {
                    a0 = vaddq_s32(a0, vmulq_s32(vldrbq_s32(xp), vldrbq_s32(wp)));
                    a1 = vaddq_s32(a1, vmulq_s32(vldrbq_s32(xp + 4), vldrbq_s32(wp + 4)));
                    a2 = vaddq_s32(a2, vmulq_s32(vldrbq_s32(xp + 8), vldrbq_s32(wp + 8)));
                    a3 = vaddq_s32(a3, vmulq_s32(vldrbq_s32(xp + 12), vldrbq_s32(wp + 12)));
                } else { /* the last block: vectors past c_n skipped, the last predicated */
                    a0 = vaddq_s32(a0, vmulq_s32(vldrbq_z_s32(xp, p0), vldrbq_z_s32(wp, p0)));
                    if (left > 4) {
                        a1 = vaddq_s32(a1, vmulq_s32(vldrbq_z_s32(xp + 4, p1),
                                                     vldrbq_z_s32(wp + 4, p1)));
                    }
                    if (left > 8) {
                        a2 = vaddq_s32(a2, vmulq_s32(vldrbq_z_s32(xp + 8, p2),
                                                     vldrbq_z_s32(wp + 8, p2)));
                    }
                    if (left > 12) {
                        a3 = vaddq_s32(a3, vmulq_s32(vldrbq_z_s32(xp + 12, p3),
                                                     vldrbq_z_s32(wp + 12, p3)));
                    }
                }
            } else {
                a0 = vmlaq_n_s32(a0, vldrbq_z_s32(wp, p0), p->x_zp);
                if (left > 4) {
                    a1 = vmlaq_n_s32(a1, vldrbq_z_s32(wp + 4, p1), p->x_zp);
                }
                if (left > 8) {
                    a2 = vmlaq_n_s32(a2, vldrbq_z_s32(wp + 8, p2), p->x_zp);
                }
                if (left > 12) {
                    a3 = vmlaq_n_s32(a3, vldrbq_z_s32(wp + 12, p3), p->x_zp);
                }
            }
        }
    }
    {
        const int32_t *bf = p->bias_folded + c;
        const int n = left < 16 ? left : 16;
        mlk_mve_out4(vaddq_s32(a0, vldrwq_z_s32(bf, p0)), p->rq, p->mult, p->shift, c,
                     n < 4 ? n : 4, p->y_zp, p->act_min, p->act_max, yp + c);
        if (n > 4) {
            mlk_mve_out4(vaddq_s32(a1, vldrwq_z_s32(bf + 4, p1)), p->rq, p->mult, p->shift,
                         c + 4, n < 8 ? n - 4 : 4, p->y_zp, p->act_min, p->act_max, yp + c + 4);
        }
        if (n > 8) {
            mlk_mve_out4(vaddq_s32(a2, vldrwq_z_s32(bf + 8, p2)), p->rq, p->mult, p->shift,
                         c + 8, n < 12 ? n - 8 : 4, p->y_zp, p->act_min, p->act_max,
                         yp + c + 8);
        }
        if (n > 12) {
            mlk_mve_out4(vaddq_s32(a3, vldrwq_z_s32(bf + 12, p3)), p->rq, p->mult, p->shift,
                         c + 12, n - 12, p->y_zp, p->act_min, p->act_max, yp + c + 12);
        }
    }
}

/* DEPTHWISE_CONV_2D with depth_mult == 1: per output pixel, 16 channels at a time. */
MLK_HOT void mlk_mve_depthwise_i8(const mlk_depthwise_conv2d_params *p, const int8_t *x,
                                  int8_t *y)
{
    const int c_n = p->in_c;
    int b, oy, ox, c;
    for (b = 0; b < p->batches; ++b) {
        const int8_t *xb = x + (size_t)b * p->in_h * p->in_w * c_n;
        for (oy = 0; oy < p->out_h; ++oy) {
            const int iy0 = oy * p->stride_h - p->pad_top;
            const int rows_in = iy0 >= 0 && iy0 + (p->k_h - 1) * p->dil_h < p->in_h;
            int8_t *yr = y + ((size_t)b * p->out_h + oy) * p->out_w * c_n;
            for (ox = 0; ox < p->out_w; ++ox) {
                const int ix0 = ox * p->stride_w - p->pad_left;
                const int full = rows_in && ix0 >= 0 &&
                                 ix0 + (p->k_w - 1) * p->dil_w < p->in_w;
                int8_t *yp = yr + (size_t)ox * c_n;
                for (c = 0; c < c_n; c += 16) {
                    if (full) {
                        mlk_mve_dw16(p, xb, yp, iy0, ix0, 1, c);
                    } else {
                        mlk_mve_dw16(p, xb, yp, iy0, ix0, 0, c);
                    }
                }
            }
        }
    }
}

#endif /* MLK_MVE */

#endif /* MICROLITH_KERNELS_MVE_H */
