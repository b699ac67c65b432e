/* microlith_kernels_conv.h -- convolutions and fully connected (see microlith_kernels.h). */
#ifndef MICROLITH_KERNELS_CONV_H
#define MICROLITH_KERNELS_CONV_H

#include "microlith_kernels_common.h"

/* Parameter records, written by the C backend as static const structs. */
typedef struct {
    const int8_t *w;
    const int32_t *bias;
    const int32_t *bias_folded;
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
    int groups;
    int32_t x_zp;
    int32_t y_zp;
    int32_t act_min;
    int32_t act_max;
    int16_t *scratch; /* MLK_CONV_SCRATCH_BYTES planned in the arena, or NULL (portable) */
    const int32_t *rq; /* DSP requantization [m2, half, r] per channel, or NULL */
} mlk_conv2d_params;

typedef struct {
    const int8_t *w;
    const int32_t *bias;
    const int32_t *bias_folded;
    const int32_t *mult;
    const int32_t *shift;
    int batches;
    int in_h;
    int in_w;
    int in_c;
    int out_h;
    int out_w;
    int depth_mult;
    int k_h;
    int k_w;
    int stride_h;
    int stride_w;
    int dil_h;
    int dil_w;
    int pad_top;
    int pad_left;
    int32_t x_zp;
    int32_t y_zp;
    int32_t act_min;
    int32_t act_max;
    const int32_t *rq; /* DSP requantization [m2, half, r] per channel, or NULL */
    int16_t *scratch; /* DSP 3-wide rows (microlith_kernels_dsp_dw3.h) in the arena, or NULL */
} mlk_depthwise_conv2d_params;

typedef struct {
    const int8_t *w;
    const int32_t *bias_folded;
    const int32_t *mult;
    const int32_t *shift;
    int batches;
    int depth;
    int units;
    int32_t y_zp;
    int32_t act_min;
    int32_t act_max;
    const int32_t *rq; /* DSP requantization [m2, half, r] per channel, or NULL */
} mlk_fully_connected_params;

/* ==================================================================== convolutions */

/* The taps [*lo, *hi) of the k taps i0 + t*d (0 <= t < k) that fall inside [0, size). */
MLK_INLINE void mlk_window(int i0, int k, int d, int size, int *lo, int *hi)
{
    *lo = i0 < 0 ? (-i0 + d - 1) / d : 0;
    *hi = size - i0 <= 0 ? 0 : (size - i0 + d - 1) / d;
    if (*hi > k) {
        *hi = k;
    }
    if (*hi < *lo) {
        *hi = *lo;
    }
}

#include "microlith_kernels_dsp.h"
#include "microlith_kernels_mve.h" /* MLK_MVE: Helium, tried before the DSP kernels
                                    * (but the 3-wide depthwise one) */

/* Dot-product loops run over a multiple of 16 elements, then one block of 8, then the
 * rest: compilers vectorize the first two without epilogues (GCC does at -O2); scalar
 * targets lose nothing. */

/* sum (x[i] + x_offset) * w[i], i < n */
MLK_INLINE int32_t mlk_dot_i8(const int8_t *x, const int8_t *w, int n, int32_t x_offset)
{
    const int n16 = n & ~15;
    int32_t acc = 0;
    int i;
    for (i = 0; i < n16; ++i) {
        acc += ((int32_t)x[i] + x_offset) * (int32_t)w[i];
    }
    if (n & 8) {
        const int8_t *xs = x + n16;
        const int8_t *ws = w + n16;
        for (i = 0; i < 8; ++i) {
            acc += ((int32_t)xs[i] + x_offset) * (int32_t)ws[i];
        }
    }
    for (i = n16 + (n & 8); i < n; ++i) {
        acc += ((int32_t)x[i] + x_offset) * (int32_t)w[i];
    }
    return acc;
}

/* acc[j] += sum (x[i] + x_offset) * w[j * w_stride + i], i < n, j < 4: each input byte is
 * loaded once for four output channels. */
MLK_INLINE void mlk_dot4_i8(const int8_t *x, const int8_t *w, int w_stride, int n,
                            int32_t x_offset, int32_t *acc)
{
    const int8_t *w0 = w;
    const int8_t *w1 = w0 + w_stride;
    const int8_t *w2 = w1 + w_stride;
    const int8_t *w3 = w2 + w_stride;
    const int n16 = n & ~15;
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    int i;
    for (i = 0; i < n16; ++i) {
        const int32_t v = (int32_t)x[i] + x_offset;
        a0 += v * (int32_t)w0[i];
        a1 += v * (int32_t)w1[i];
        a2 += v * (int32_t)w2[i];
        a3 += v * (int32_t)w3[i];
    }
    if (n & 8) {
        const int8_t *xs = x + n16;
        const int8_t *v0 = w0 + n16, *v1 = w1 + n16, *v2 = w2 + n16, *v3 = w3 + n16;
        for (i = 0; i < 8; ++i) {
            const int32_t v = (int32_t)xs[i] + x_offset;
            a0 += v * (int32_t)v0[i];
            a1 += v * (int32_t)v1[i];
            a2 += v * (int32_t)v2[i];
            a3 += v * (int32_t)v3[i];
        }
    }
    for (i = n16 + (n & 8); i < n; ++i) {
        const int32_t v = (int32_t)x[i] + x_offset;
        a0 += v * (int32_t)w0[i];
        a1 += v * (int32_t)w1[i];
        a2 += v * (int32_t)w2[i];
        a3 += v * (int32_t)w3[i];
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

/* acc[j] += sum (x[i] + x_offset) * w[j * w_stride + i] for the first `block` (<= 4) rows. */
MLK_INLINE void mlk_dot_block_i8(const int8_t *x, const int8_t *w, int w_stride, int n,
                                 int block, int32_t x_offset, int32_t *acc)
{
    int j;
    if (block == 4) {
        mlk_dot4_i8(x, w, w_stride, n, x_offset, acc);
        return;
    }
    for (j = 0; j < block; ++j) {
        acc[j] += mlk_dot_i8(x, w + (size_t)j * w_stride, n, x_offset);
    }
}

/* One output pixel of CONV_2D from the in-image taps [ky0, ky1) x [kx0, kx1) of the window
 * at (iy0, ix0), the input offset by x_offset, accumulators starting from bias[]. */
MLK_INLINE void mlk_conv2d_pixel_i8(const int8_t *xb, const int8_t *w, const int32_t *bias,
                                    const int32_t *mult, const int32_t *shift, int8_t *yp,
                                    int in_w, int in_c, int out_c, int k_h, int k_w,
                                    int dil_h, int dil_w, int groups, int iy0, int ix0,
                                    int ky0, int ky1, int kx0, int kx1, int32_t x_offset,
                                    int32_t y_zp, int32_t act_min, int32_t act_max)
{
    const int cg = in_c / groups;
    const int out_per_group = out_c / groups;
    const int filter_size = k_h * k_w * cg;
    const int contiguous = groups == 1 && dil_w == 1;
    int g, oc, ky, kx, j;
    for (g = 0; g < groups; ++g) {
        const int oc_end = (g + 1) * out_per_group;
        for (oc = g * out_per_group; oc < oc_end; oc += 4) {
            const int block = oc_end - oc < 4 ? oc_end - oc : 4;
            const int8_t *wb = w + (size_t)oc * filter_size;
            int32_t acc[4] = {0, 0, 0, 0};
            for (j = 0; j < block; ++j) {
                acc[j] = bias[oc + j];
            }
            for (ky = ky0; ky < ky1; ++ky) {
                /* x at the first in-image tap (ky, kx0) of this row, weights at (ky, kx0) */
                const int8_t *xr = xb + ((size_t)(iy0 + ky * dil_h) * in_w +
                                         (size_t)(ix0 + kx0 * dil_w)) * in_c + g * cg;
                const int8_t *wr = wb + ((size_t)ky * k_w + kx0) * cg;
                if (contiguous) { /* (kx1 - kx0) * in_c bytes in a row of x and of w */
                    mlk_dot_block_i8(xr, wr, filter_size, (kx1 - kx0) * in_c, block, x_offset,
                                     acc);
                } else {
                    for (kx = 0; kx < kx1 - kx0; ++kx) {
                        mlk_dot_block_i8(xr + (size_t)kx * dil_w * in_c, wr + (size_t)kx * cg,
                                         filter_size, cg, block, x_offset, acc);
                    }
                }
            }
            for (j = 0; j < block; ++j) {
                yp[oc + j] = mlk_out_i8(mlk_mbqm(acc[j], mult[oc + j], shift[oc + j]), y_zp,
                                        act_min, act_max);
            }
        }
    }
}

/* CONV_2D (NHWC x, OHWI w with I = in_c / groups, per-channel requantization):
 *   acc[c] = b[c] + sum_{in-image taps} (x - x_zp) * w[c]       (out-of-image taps skipped)
 *   y[c]   = clamp(y_zp + MBQM(acc[c], mult[c], shift[c]), act_min, act_max)
 * Tap (ky, kx) of output (oy, ox) reads x[oy*stride_h - pad_top + ky*dil_h,
 * ox*stride_w - pad_left + kx*dil_w] (an explicit zero-point border needs no copy). Windows
 * entirely inside the image use the renderer's folded bias bias_folded[c] = b[c] - x_zp *
 * sum(w[c]) and plain int8 products; border windows use b[c] and (x - x_zp) on the clipped
 * window. Inner loops run over kw * in_c contiguous bytes (groups == 1, dil_w == 1) or
 * in_c / groups, four output channels at a time. */
MLK_INLINE void mlk_conv2d_i8_core(const int8_t *x, const int8_t *w, const int32_t *bias,
                              const int32_t *bias_folded, const int32_t *mult,
                              const int32_t *shift, int8_t *y, int batches, int in_h, int in_w,
                              int in_c, int out_h, int out_w, int out_c, int k_h, int k_w,
                              int stride_h, int stride_w, int dil_h, int dil_w, int pad_top,
                              int pad_left, int groups, int32_t x_zp, int32_t y_zp,
                              int32_t act_min, int32_t act_max)
{
    int b, oy, ox;
    for (b = 0; b < batches; ++b) {
        const int8_t *xb = x + (size_t)b * in_h * in_w * in_c;
        for (oy = 0; oy < out_h; ++oy) {
            const int iy0 = oy * stride_h - pad_top;
            int ky0, ky1;
            mlk_window(iy0, k_h, dil_h, in_h, &ky0, &ky1);
            for (ox = 0; ox < out_w; ++ox) {
                const int ix0 = ox * stride_w - pad_left;
                int8_t *yp = y + (((size_t)b * out_h + oy) * out_w + ox) * out_c;
                int kx0, kx1;
                mlk_window(ix0, k_w, dil_w, in_w, &kx0, &kx1);
                if (ky1 - ky0 == k_h && kx1 - kx0 == k_w) {
                    mlk_conv2d_pixel_i8(xb, w, bias_folded, mult, shift, yp, in_w, in_c, out_c,
                                        k_h, k_w, dil_h, dil_w, groups, iy0, ix0, 0, k_h, 0,
                                        k_w, 0, y_zp, act_min, act_max);
                } else {
                    mlk_conv2d_pixel_i8(xb, w, bias, mult, shift, yp, in_w, in_c, out_c, k_h,
                                        k_w, dil_h, dil_w, groups, iy0, ix0, ky0, ky1, kx0,
                                        kx1, -x_zp, y_zp, act_min, act_max);
                }
            }
        }
    }
}

/* mlk_conv2d_i8: the parameter record *p (a static const struct written by the C backend)
 * unpacked into the arguments of mlk_conv2d_i8_core. */
MLK_HOT void mlk_conv2d_i8(const mlk_conv2d_params *p, const int8_t *x, int8_t *y)
{
#if MLK_MVE
    if (p->scratch != NULL && p->groups == 1) {
        mlk_mve_conv2d_i8(p, x, y);
        return;
    }
#endif
#if MLK_DSP
    if (p->scratch != NULL && p->groups == 1) {
        mlk_dsp_conv2d_i8(p, x, y);
        return;
    }
#endif
    mlk_conv2d_i8_core(x, p->w, p->bias, p->bias_folded, p->mult, p->shift, y, p->batches,
                       p->in_h, p->in_w, p->in_c, p->out_h, p->out_w, p->out_c, p->k_h, p->k_w,
                       p->stride_h, p->stride_w, p->dil_h, p->dil_w, p->pad_top, p->pad_left,
                       p->groups, p->x_zp, p->y_zp, p->act_min, p->act_max);
}

/* acc[i] += (x[i] + x_offset) * w[i], i < n (split for vectorization as the dot products) */
MLK_INLINE void mlk_mac_i8(int32_t *acc, const int8_t *x, const int8_t *w, int n,
                           int32_t x_offset)
{
    const int n16 = n & ~15;
    int i;
    for (i = 0; i < n16; ++i) {
        acc[i] += ((int32_t)x[i] + x_offset) * (int32_t)w[i];
    }
    if (n & 8) {
        int32_t *as = acc + n16;
        const int8_t *xs = x + n16;
        const int8_t *ws = w + n16;
        for (i = 0; i < 8; ++i) {
            as[i] += ((int32_t)xs[i] + x_offset) * (int32_t)ws[i];
        }
    }
    for (i = n16 + (n & 8); i < n; ++i) {
        acc[i] += ((int32_t)x[i] + x_offset) * (int32_t)w[i];
    }
}

#define MLK_DW_CHUNK 32 /* output channels accumulated at once (on the stack) */

/* DEPTHWISE_CONV_2D (NHWC x, w as [k_h][k_w][in_c * depth_mult], TFLite's layout); output
 * channel oc = c * depth_mult + m reads input channel c:
 *   acc[oc] = b[oc] + sum_{in-image taps} (x[.., c] - x_zp) * w[ky][kx][oc]
 *   y[oc]   = clamp(y_zp + MBQM(acc[oc], mult[oc], shift[oc]), act_min, act_max)
 * Interior windows use bias_folded[oc] = b[oc] - x_zp * sum(w[..][..][oc]); border windows
 * are clipped to the image. Channels are the inner loop (contiguous in x, w and y), 32 at
 * a time. */
MLK_INLINE void mlk_depthwise_conv2d_i8_core(const int8_t *x, const int8_t *w, const int32_t *bias,
                                        const int32_t *bias_folded, const int32_t *mult,
                                        const int32_t *shift, int8_t *y, int batches, int in_h,
                                        int in_w, int in_c, int out_h, int out_w, int depth_mult,
                                        int k_h, int k_w, int stride_h, int stride_w, int dil_h,
                                        int dil_w, int pad_top, int pad_left, int32_t x_zp,
                                        int32_t y_zp, int32_t act_min, int32_t act_max)
{
    const int out_c = in_c * depth_mult;
    int b, oy, ox, c0, i, ky, kx;
    int32_t acc[MLK_DW_CHUNK];
    for (b = 0; b < batches; ++b) {
        const int8_t *xb = x + (size_t)b * in_h * in_w * in_c;
        for (oy = 0; oy < out_h; ++oy) {
            const int iy0 = oy * stride_h - pad_top;
            int ky0, ky1;
            mlk_window(iy0, k_h, dil_h, in_h, &ky0, &ky1);
            for (ox = 0; ox < out_w; ++ox) {
                const int ix0 = ox * stride_w - pad_left;
                int8_t *yp = y + (((size_t)b * out_h + oy) * out_w + ox) * out_c;
                const int32_t *bsel;
                int32_t x_offset;
                int kx0, kx1;
                mlk_window(ix0, k_w, dil_w, in_w, &kx0, &kx1);
                if (ky1 - ky0 == k_h && kx1 - kx0 == k_w) {
                    bsel = bias_folded;
                    x_offset = 0;
                } else {
                    bsel = bias;
                    x_offset = -x_zp;
                }
                for (c0 = 0; c0 < out_c; c0 += MLK_DW_CHUNK) {
                    const int n = out_c - c0 < MLK_DW_CHUNK ? out_c - c0 : MLK_DW_CHUNK;
                    for (i = 0; i < n; ++i) {
                        acc[i] = bsel[c0 + i];
                    }
                    for (ky = ky0; ky < ky1; ++ky) {
                        const int8_t *xr = xb + (size_t)(iy0 + ky * dil_h) * in_w * in_c;
                        for (kx = kx0; kx < kx1; ++kx) {
                            const int8_t *xp = xr + (size_t)(ix0 + kx * dil_w) * in_c;
                            const int8_t *wp = w + ((size_t)ky * k_w + kx) * out_c + c0;
                            if (depth_mult == 1) {
                                mlk_mac_i8(acc, xp + c0, wp, n, x_offset);
                            } else {
                                for (i = 0; i < n; ++i) {
                                    acc[i] += ((int32_t)xp[(c0 + i) / depth_mult] + x_offset) *
                                              (int32_t)wp[i];
                                }
                            }
                        }
                    }
                    for (i = 0; i < n; ++i) {
                        yp[c0 + i] = mlk_out_i8(mlk_mbqm(acc[i], mult[c0 + i], shift[c0 + i]),
                                                y_zp, act_min, act_max);
                    }
                }
            }
        }
    }
}

/* mlk_depthwise_conv2d_i8: the parameter record *p (a static const struct written by the C backend)
 * unpacked into the arguments of mlk_depthwise_conv2d_i8_core. */
MLK_HOT void mlk_depthwise_conv2d_i8(const mlk_depthwise_conv2d_params *p, const int8_t *x, int8_t *y)
{
#if MLK_DSP /* before Helium too: measured faster and smaller on the M55 (docs/cortex-m.md) */
    if (mlk_dw3_eligible(p)) {
        mlk_dsp_depthwise3_i8(p, x, y);
        return;
    }
#endif
#if MLK_MVE
    if (p->depth_mult == 1) {
        mlk_mve_depthwise_i8(p, x, y);
        return;
    }
#endif
#if MLK_DSP
    if (p->depth_mult == 1) {
        mlk_dsp_depthwise_i8(p, x, y);
        return;
    }
#endif
    mlk_depthwise_conv2d_i8_core(x, p->w, p->bias, p->bias_folded, p->mult, p->shift, y,
                                 p->batches, p->in_h, p->in_w, p->in_c, p->out_h, p->out_w,
                                 p->depth_mult, p->k_h, p->k_w, p->stride_h, p->stride_w,
                                 p->dil_h, p->dil_w, p->pad_top, p->pad_left, p->x_zp, p->y_zp,
                                 p->act_min, p->act_max);
}

/* FULLY_CONNECTED: y[b][o] = clamp(y_zp + MBQM(bias_folded[o] + sum_k x[b][k] w[o][k],
 * mult[o], shift[o]), act_min, act_max), bias_folded[o] = b[o] - x_zp * sum_k w[o][k];
 * four units at a time. */
MLK_INLINE void mlk_fully_connected_i8_core(const int8_t *x, const int8_t *w,
                                       const int32_t *bias_folded, const int32_t *mult,
                                       const int32_t *shift, int8_t *y, int batches, int depth,
                                       int units, int32_t y_zp, int32_t act_min, int32_t act_max)
{
    int b, o, j;
    for (b = 0; b < batches; ++b) {
        const int8_t *xb = x + (size_t)b * depth;
        int8_t *yb = y + (size_t)b * units;
        for (o = 0; o < units; o += 4) {
            const int block = units - o < 4 ? units - o : 4;
            int32_t acc[4] = {0, 0, 0, 0};
            for (j = 0; j < block; ++j) {
                acc[j] = bias_folded[o + j];
            }
            mlk_dot_block_i8(xb, w + (size_t)o * depth, depth, depth, block, 0, acc);
            for (j = 0; j < block; ++j) {
                yb[o + j] = mlk_out_i8(mlk_mbqm(acc[j], mult[o + j], shift[o + j]), y_zp,
                                       act_min, act_max);
            }
        }
    }
}

/* mlk_fully_connected_i8: the parameter record *p (a static const struct written by the C backend)
 * unpacked into the arguments of mlk_fully_connected_i8_core. */
MLK_HOT void mlk_fully_connected_i8(const mlk_fully_connected_params *p, const int8_t *x, int8_t *y)
{
#if MLK_MVE
    mlk_mve_fully_connected_i8(p, x, y);
    return;
#endif
#if MLK_DSP
    mlk_dsp_fully_connected_i8(p, x, y);
    return;
#endif
    mlk_fully_connected_i8_core(x, p->w, p->bias_folded, p->mult, p->shift, y, p->batches,
                                p->depth, p->units, p->y_zp, p->act_min, p->act_max);
}

#endif /* MICROLITH_KERNELS_CONV_H */
