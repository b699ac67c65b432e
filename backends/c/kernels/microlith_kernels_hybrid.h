/*
 * microlith_kernels_hybrid.h -- dynamic-range ("hybrid") kernels with an integer dot product:
 * float activations, int8 per-channel symmetric weights, the activation quantized to int8
 * once per inference (per batch row / image), as LiteRT's hybrid kernels do.
 *
 * Input quantization (mlk_quantize_input_f32), over the n values of one batch:
 *   asymmetric (LiteRT's asymmetric_quantize_inputs, the converter's default):
 *     lo = min(0, min x), hi = max(0, max x), s = (hi - lo) / 255,
 *     zp = the nudged zero point (from lo or from hi, whichever has the smaller error,
 *          clamped to [-128, 127] and rounded), q = clamp(round(zp + x / s), -128, 127);
 *   symmetric: r = max |x|, s = r / 127, zp = 0, q = clamp(round(x * 127 / r), -127, 127);
 *   all-zero input: q = 0, s = 1, zp = 0.
 * round() is half away from zero. Everything is single precision (LiteRT computes s and zp
 * in double, so a value on a rounding edge can land one step apart).
 *
 * Layer maths, per output channel c with weight scale w_scale[c] and bias b[c]:
 *   acc[c] = sum_{in-image taps} (q - zp) * w[c]                     (int32, exact)
 *   y[c]   = clamp(b[c] + (float)acc[c] * (s * w_scale[c]), act_min, act_max)
 * Windows entirely inside the image (and every fully-connected row) compute
 * sum q * w - zp * w_sum[c] with the renderer's w_sum[c] = sum of w[c] over the whole
 * filter; border windows offset the input by -zp on the clipped window (out-of-image taps
 * are real zeros). The renderer checks that 255 * sum |w[c]| + 128 |w_sum[c]| < 2^31, so no
 * partial sum wraps.
 *
 * Scratch (planned in the arena by select-kernels{hybrid=integer}): the quantized input of
 * one batch (int8), after col_bytes of DSP im2col columns for CONV_2D (0 elsewhere). On
 * cores with the DSP extension the dot products are the int8 target's SMLAD loops
 * (microlith_kernels_dsp.h); elsewhere the portable blocked loops of microlith_kernels_conv.h.
 */
#ifndef MICROLITH_KERNELS_HYBRID_H
#define MICROLITH_KERNELS_HYBRID_H

#include "microlith_kernels_conv.h"
#include "microlith_kernels_float.h"

/* round half away from zero, for |v| < 2^23 (the callers' values are within [-384, 384]) */
MLK_HOT int32_t mlk_roundf_i32(float v)
{
    int32_t t = (int32_t)v; /* truncates toward zero */
    const float frac = v - (float)t;
    if (frac >= 0.5f) {
        ++t;
    } else if (frac <= -0.5f) {
        --t;
    }
    return t;
}

/* q[i] from x[i], i < n; the scale and zero point of the batch in *scale, *zp. */
MLK_INLINE void mlk_quantize_input_f32(const float *x, int n, int symmetric, int8_t *q,
                                       float *scale, int32_t *zp)
{
    float lo = 0.0f, hi = 0.0f, inv;
    int32_t z = 0, qmin = -128, i;
    for (i = 0; i < n; ++i) {
        const float v = x[i];
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
    }
    if (symmetric) {
        const float r = -lo > hi ? -lo : hi;
        if (r == 0.0f) {
            memset(q, 0, (size_t)n);
            *scale = 1.0f;
            *zp = 0;
            return;
        }
        *scale = r / 127.0f;
        inv = 127.0f / r;
        qmin = -127;
    } else {
        float s, z_lo, z_hi, e_lo, e_hi, zf;
        if (lo == hi) {
            memset(q, 0, (size_t)n);
            *scale = 1.0f;
            *zp = 0;
            return;
        }
        s = (hi - lo) / 255.0f;
        z_lo = -128.0f - lo / s;
        z_hi = 127.0f - hi / s;
        e_lo = 128.0f + (lo < 0.0f ? -lo : lo) / s;
        e_hi = 127.0f + (hi < 0.0f ? -hi : hi) / s;
        zf = e_lo < e_hi ? z_lo : z_hi;
        z = zf <= -128.0f ? -128 : (zf >= 127.0f ? 127 : mlk_roundf_i32(zf));
        *scale = s;
        inv = 1.0f / s;
    }
    for (i = 0; i < n; ++i) {
        int32_t v = mlk_roundf_i32((float)z + x[i] * inv);
        v = v < qmin ? qmin : (v > 127 ? 127 : v);
        q[i] = (int8_t)v;
    }
    *zp = z;
}

/* y = clamp(b + acc * (s * w_scale), lo, hi) */
MLK_HOT float mlk_hybrid_out(int32_t acc, float s, float w_scale, const float *bias, int c,
                             float lo, float hi)
{
    float v = (float)acc * (s * w_scale);
    if (bias) {
        v = bias[c] + v;
    }
    return mlk_clampf(v, lo, hi);
}

/* ---- FULLY_CONNECTED: y[b][u] = b[u] + s_b w_scale[u] (sum_d q[b][d] w[u][d] - zp_b w_sum[u]) */
typedef struct {
    const int8_t *w;        /* [units][depth] */
    const float *w_scale;   /* [units] */
    const float *bias;      /* [units] or NULL */
    const int32_t *w_sum;   /* [units]: sum_d w[u][d] */
    int32_t batches, depth, units, symmetric;
    float act_min, act_max;
    int8_t *scratch;        /* depth bytes: one quantized input row */
} mlk_fully_connected_h_params;

MLK_HOT void mlk_fully_connected_f32_hybrid(const mlk_fully_connected_h_params *p,
                                            const float *x, float *y)
{
    const int depth = p->depth, units = p->units;
    int8_t *q = p->scratch;
    int b, o, j;
    for (b = 0; b < p->batches; ++b) {
        float *yb = y + (size_t)b * units;
        float s;
        int32_t zp;
        mlk_quantize_input_f32(x + (size_t)b * depth, depth, p->symmetric, q, &s, &zp);
        for (o = 0; o < units; o += 4) {
            const int block = units - o < 4 ? units - o : 4;
            int32_t acc[4] = {0, 0, 0, 0};
            for (j = 0; j < block; ++j) {
                acc[j] = -zp * p->w_sum[o + j];
            }
#if MLK_DSP
            if (block == 4) {
                mlk_dsp_fc_dot1x4(q, p->w + (size_t)o * depth, depth, acc);
            } else {
                for (j = 0; j < block; ++j) {
                    acc[j] = mlk_dsp_fc_dot1(q, p->w + (size_t)(o + j) * depth, depth, acc[j]);
                }
            }
#else
            mlk_dot_block_i8(q, p->w + (size_t)o * depth, depth, depth, block, 0, acc);
#endif
            for (j = 0; j < block; ++j) {
                yb[o + j] = mlk_hybrid_out(acc[j], s, p->w_scale[o + j], p->bias, o + j,
                                           p->act_min, p->act_max);
            }
        }
    }
}

/* ---- CONV_2D (grouped; OHWI weights with I = in_c / groups) ---- */
typedef struct {
    const int8_t *w;
    const float *w_scale;
    const float *bias;
    const int32_t *w_sum;   /* [out_c]: sum of the whole filter of c */
    int32_t batches, in_h, in_w, in_c, out_h, out_w, out_c;
    int32_t k_h, k_w, stride_h, stride_w, dil_h, dil_w, pad_top, pad_left, groups, symmetric;
    float act_min, act_max;
    int32_t col_bytes;      /* DSP columns at the start of scratch (0: portable kernel) */
    int8_t *scratch;        /* col_bytes, then in_h * in_w * in_c bytes of quantized input */
} mlk_conv2d_h_params;

/* One output pixel, portable: the in-image taps [ky0, ky1) x [kx0, kx1) of the window at
 * (iy0, ix0), the input offset by x_offset (-zp on border windows, else 0 and corrected by
 * `fold` * w_sum). */
MLK_INLINE void mlk_conv2d_h_pixel(const mlk_conv2d_h_params *p, const int8_t *qb, float *yp,
                                   float s, int32_t fold, int iy0, int ix0, int ky0, int ky1,
                                   int kx0, int kx1, int32_t x_offset)
{
    const int cg = p->in_c / p->groups, out_per_group = p->out_c / p->groups;
    const int filter_size = p->k_h * p->k_w * cg;
    const int contiguous = p->groups == 1 && p->dil_w == 1;
    int g, oc, ky, kx, j;
    for (g = 0; g < p->groups; ++g) {
        const int oc_end = (g + 1) * out_per_group;
        for (oc = g * out_per_group; oc < oc_end; oc += 4) {
            const int block = oc_end - oc < 4 ? oc_end - oc : 4;
            const int8_t *wb = p->w + (size_t)oc * filter_size;
            int32_t acc[4] = {0, 0, 0, 0};
            for (j = 0; j < block; ++j) {
                acc[j] = -fold * p->w_sum[oc + j];
            }
            for (ky = ky0; ky < ky1; ++ky) {
                const int8_t *xr = qb + ((size_t)(iy0 + ky * p->dil_h) * p->in_w +
                                         (size_t)(ix0 + kx0 * p->dil_w)) * p->in_c + g * cg;
                const int8_t *wr = wb + ((size_t)ky * p->k_w + kx0) * cg;
                if (contiguous) {
                    mlk_dot_block_i8(xr, wr, filter_size, (kx1 - kx0) * p->in_c, block,
                                     x_offset, acc);
                } else {
                    for (kx = 0; kx < kx1 - kx0; ++kx) {
                        mlk_dot_block_i8(xr + (size_t)kx * p->dil_w * p->in_c,
                                         wr + (size_t)kx * cg, filter_size, cg, block,
                                         x_offset, acc);
                    }
                }
            }
            for (j = 0; j < block; ++j) {
                yp[oc + j] = mlk_hybrid_out(acc[j], s, p->w_scale[oc + j], p->bias, oc + j,
                                            p->act_min, p->act_max);
            }
        }
    }
}

#if MLK_DSP
/* Output channels of `pixels` (1 or 2) output pixels from their int16 columns (padding taps
 * hold zp, so every window takes the folded correction -zp * w_sum). */
MLK_HOT void mlk_conv2d_h_dsp_pixels(const mlk_conv2d_h_params *p, const int16_t *col,
                                     int pixels, float *y0, float *y1, int n, float s,
                                     int32_t zp)
{
    const int out_c = p->out_c;
    const int pairs = pixels == 2 ? out_c >> 1 : 0;
    const int8_t *w0 = p->w;
    int oc, i;
    for (i = 0; i < pairs; ++i, w0 += 2 * (size_t)n) {
        int32_t acc[4];
        oc = 2 * i;
        acc[0] = acc[2] = -zp * p->w_sum[oc];
        acc[1] = acc[3] = -zp * p->w_sum[oc + 1];
        mlk_dsp_dot2x2(w0, w0 + n, col, n, acc);
        y0[oc] = mlk_hybrid_out(acc[0], s, p->w_scale[oc], p->bias, oc, p->act_min,
                                p->act_max);
        y1[oc] = mlk_hybrid_out(acc[2], s, p->w_scale[oc], p->bias, oc, p->act_min,
                                p->act_max);
        y0[oc + 1] = mlk_hybrid_out(acc[1], s, p->w_scale[oc + 1], p->bias, oc + 1,
                                    p->act_min, p->act_max);
        y1[oc + 1] = mlk_hybrid_out(acc[3], s, p->w_scale[oc + 1], p->bias, oc + 1,
                                    p->act_min, p->act_max);
    }
    for (oc = 2 * pairs; oc < out_c; ++oc, w0 += n) {
        const int32_t fold = -zp * p->w_sum[oc];
        y0[oc] = mlk_hybrid_out(mlk_dsp_dot1x1(w0, col, 0, n, fold), s, p->w_scale[oc],
                                p->bias, oc, p->act_min, p->act_max);
        if (pixels == 2) {
            y1[oc] = mlk_hybrid_out(mlk_dsp_dot1x1(w0, col, 1, n, fold), s, p->w_scale[oc],
                                    p->bias, oc, p->act_min, p->act_max);
        }
    }
}
#endif

MLK_HOT void mlk_conv2d_f32_hybrid(const mlk_conv2d_h_params *p, const float *x, float *y)
{
    const int image = p->in_h * p->in_w * p->in_c;
    int8_t *q = p->scratch + p->col_bytes;
    int b, oy, ox;
    for (b = 0; b < p->batches; ++b) {
        float *yb = y + (size_t)b * p->out_h * p->out_w * p->out_c;
        float s;
        int32_t zp;
        mlk_quantize_input_f32(x + (size_t)b * image, image, p->symmetric, q, &s, &zp);
#if MLK_DSP
        if (p->col_bytes > 0 && p->groups == 1) {
            const int n = p->k_h * p->k_w * p->in_c, pixels = p->out_h * p->out_w;
            int16_t *col = (int16_t *)(void *)p->scratch;
            int16_t *tmp = col + 2 * (size_t)n;
            int i, j;
            for (i = 0; i < pixels; i += 2) {
                const int count = pixels - i < 2 ? pixels - i : 2;
                for (j = 0; j < count; ++j) {
                    const int py = (i + j) / p->out_w, px = (i + j) % p->out_w;
                    mlk_im2col_i8(q, col, tmp, j, p->in_h, p->in_w, p->in_c, p->k_h, p->k_w,
                                  p->dil_h, p->dil_w, py * p->stride_h - p->pad_top,
                                  px * p->stride_w - p->pad_left, zp);
                }
                mlk_conv2d_h_dsp_pixels(p, col, count, yb + (size_t)i * p->out_c,
                                        yb + (size_t)(i + 1) * p->out_c, n, s, zp);
            }
            continue;
        }
#endif
        for (oy = 0; oy < p->out_h; ++oy) {
            const int iy0 = oy * p->stride_h - p->pad_top;
            int ky0, ky1;
            mlk_window(iy0, p->k_h, p->dil_h, p->in_h, &ky0, &ky1);
            for (ox = 0; ox < p->out_w; ++ox) {
                const int ix0 = ox * p->stride_w - p->pad_left;
                float *yp = yb + ((size_t)oy * p->out_w + ox) * p->out_c;
                int kx0, kx1;
                mlk_window(ix0, p->k_w, p->dil_w, p->in_w, &kx0, &kx1);
                if (ky1 - ky0 == p->k_h && kx1 - kx0 == p->k_w) {
                    mlk_conv2d_h_pixel(p, q, yp, s, zp, iy0, ix0, 0, p->k_h, 0, p->k_w, 0);
                } else {
                    mlk_conv2d_h_pixel(p, q, yp, s, 0, iy0, ix0, ky0, ky1, kx0, kx1, -zp);
                }
            }
        }
    }
}

/* ---- DEPTHWISE_CONV_2D (w as [k_h][k_w][in_c * depth_mult]; channel c*M + m reads c) ---- */
typedef struct {
    const int8_t *w;
    const float *w_scale;
    const float *bias;
    const int32_t *w_sum;   /* [out_c]: sum over the taps of w[..][..][oc] */
    int32_t batches, in_h, in_w, in_c, out_h, out_w, depth_mult;
    int32_t k_h, k_w, stride_h, stride_w, dil_h, dil_w, pad_top, pad_left, symmetric;
    float act_min, act_max;
    int8_t *scratch;        /* in_h * in_w * in_c bytes of quantized input */
} mlk_depthwise_conv2d_h_params;

#if MLK_DSP
/* Channels c..c+3 of one output pixel, depth multiplier 1, on the DSP extension: one input
 * word and one weight word per tap, widened (SXTB16), four 16x16 multiply-accumulates
 * (SMLABB / SMLATT); `border` windows offset the input by -zp (SADD16, off2 in both lanes)
 * on the clipped taps, interior windows start from -zp * w_sum. */
MLK_HOT void mlk_dw_h_dsp_group(const mlk_depthwise_conv2d_h_params *p, const int8_t *q,
                                ptrdiff_t xw, float *yp, int c, int ky0, int ky1, int kx0,
                                int kx1, int border, int32_t zp, int32_t off2, float s)
{
    const int c_n = p->in_c;
    const size_t row = (size_t)p->dil_h * p->in_w * c_n, col = (size_t)p->dil_w * c_n;
    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    int ky, kx;
    if (!border) {
        a0 = -zp * p->w_sum[c];
        a1 = -zp * p->w_sum[c + 1];
        a2 = -zp * p->w_sum[c + 2];
        a3 = -zp * p->w_sum[c + 3];
    }
    for (ky = ky0; ky < ky1; ++ky) {
        const ptrdiff_t xr = xw + (ptrdiff_t)(ky * row) + c;
        const int8_t *wr = p->w + (size_t)ky * p->k_w * c_n + c;
        for (kx = kx0; kx < kx1; ++kx) {
            int32_t xl, xh, wl, wh;
            MLK_WIDEN(q + (xr + (ptrdiff_t)(kx * col)), xl, xh);
            MLK_WIDEN(wr + (size_t)kx * c_n, wl, wh);
            if (border) {
                xl = __sadd16(xl, off2);
                xh = __sadd16(xh, off2);
            }
            a0 = __smlabb(xl, wl, a0);
            a2 = __smlatt(xl, wl, a2);
            a1 = __smlabb(xh, wh, a1);
            a3 = __smlatt(xh, wh, a3);
        }
    }
    yp[c] = mlk_hybrid_out(a0, s, p->w_scale[c], p->bias, c, p->act_min, p->act_max);
    yp[c + 1] = mlk_hybrid_out(a1, s, p->w_scale[c + 1], p->bias, c + 1, p->act_min,
                               p->act_max);
    yp[c + 2] = mlk_hybrid_out(a2, s, p->w_scale[c + 2], p->bias, c + 2, p->act_min,
                               p->act_max);
    yp[c + 3] = mlk_hybrid_out(a3, s, p->w_scale[c + 3], p->bias, c + 3, p->act_min,
                               p->act_max);
}

/* DEPTHWISE_CONV_2D with depth multiplier 1 on the DSP extension: four channels at a time
 * (mlk_dw_h_dsp_group), the channels beyond a multiple of four one by one. */
MLK_HOT void mlk_dw_h_dsp(const mlk_depthwise_conv2d_h_params *p, const int8_t *q, float *yb,
                          float s, int32_t zp)
{
    const int c_n = p->in_c, c4 = c_n & ~3;
    const int32_t off2 = (int32_t)(((uint32_t)(uint16_t)-zp << 16) | (uint16_t)-zp);
    int oy, ox, c, ky, kx;
    for (oy = 0; oy < p->out_h; ++oy) {
        const int iy0 = oy * p->stride_h - p->pad_top;
        int ky0, ky1;
        mlk_window(iy0, p->k_h, p->dil_h, p->in_h, &ky0, &ky1);
        for (ox = 0; ox < p->out_w; ++ox) {
            const int ix0 = ox * p->stride_w - p->pad_left;
            float *yp = yb + ((size_t)oy * p->out_w + ox) * c_n;
            const ptrdiff_t xw = ((ptrdiff_t)iy0 * p->in_w + ix0) * c_n;
            int kx0, kx1, border;
            mlk_window(ix0, p->k_w, p->dil_w, p->in_w, &kx0, &kx1);
            border = !(ky1 - ky0 == p->k_h && kx1 - kx0 == p->k_w);
            if (!border) {
                for (c = 0; c < c4; c += 4) {
                    mlk_dw_h_dsp_group(p, q, xw, yp, c, 0, p->k_h, 0, p->k_w, 0, zp, off2, s);
                }
            } else {
                for (c = 0; c < c4; c += 4) {
                    mlk_dw_h_dsp_group(p, q, xw, yp, c, ky0, ky1, kx0, kx1, 1, zp, off2, s);
                }
            }
            for (c = c4; c < c_n; ++c) {
                int32_t a = 0;
                for (ky = ky0; ky < ky1; ++ky) {
                    for (kx = kx0; kx < kx1; ++kx) {
                        const int8_t *xq = q + ((size_t)(iy0 + ky * p->dil_h) * p->in_w +
                                                (size_t)(ix0 + kx * p->dil_w)) * c_n;
                        a += ((int32_t)xq[c] - zp) *
                             (int32_t)p->w[((size_t)ky * p->k_w + kx) * c_n + c];
                    }
                }
                yp[c] = mlk_hybrid_out(a, s, p->w_scale[c], p->bias, c, p->act_min,
                                       p->act_max);
            }
        }
    }
}
#endif

MLK_HOT void mlk_depthwise_conv2d_f32_hybrid(const mlk_depthwise_conv2d_h_params *p,
                                             const float *x, float *y)
{
    const int out_c = p->in_c * p->depth_mult, image = p->in_h * p->in_w * p->in_c;
    int8_t *q = p->scratch;
    int32_t acc[MLK_DW_CHUNK];
    int b, oy, ox, c0, i, ky, kx;
    for (b = 0; b < p->batches; ++b) {
        float s;
        int32_t zp;
        mlk_quantize_input_f32(x + (size_t)b * image, image, p->symmetric, q, &s, &zp);
#if MLK_DSP
        if (p->depth_mult == 1) {
            mlk_dw_h_dsp(p, q, y + (size_t)b * p->out_h * p->out_w * out_c, s, zp);
            continue;
        }
#endif
        for (oy = 0; oy < p->out_h; ++oy) {
            const int iy0 = oy * p->stride_h - p->pad_top;
            int ky0, ky1;
            mlk_window(iy0, p->k_h, p->dil_h, p->in_h, &ky0, &ky1);
            for (ox = 0; ox < p->out_w; ++ox) {
                const int ix0 = ox * p->stride_w - p->pad_left;
                float *yp = y + (((size_t)b * p->out_h + oy) * p->out_w + ox) * out_c;
                int32_t x_offset, fold;
                int kx0, kx1;
                mlk_window(ix0, p->k_w, p->dil_w, p->in_w, &kx0, &kx1);
                if (ky1 - ky0 == p->k_h && kx1 - kx0 == p->k_w) {
                    x_offset = 0;
                    fold = zp;
                } else {
                    x_offset = -zp;
                    fold = 0;
                }
                for (c0 = 0; c0 < out_c; c0 += MLK_DW_CHUNK) {
                    const int n = out_c - c0 < MLK_DW_CHUNK ? out_c - c0 : MLK_DW_CHUNK;
                    for (i = 0; i < n; ++i) {
                        acc[i] = -fold * p->w_sum[c0 + i];
                    }
                    for (ky = ky0; ky < ky1; ++ky) {
                        const int8_t *xr = q + (size_t)(iy0 + ky * p->dil_h) * p->in_w * p->in_c;
                        for (kx = kx0; kx < kx1; ++kx) {
                            const int8_t *xp = xr + (size_t)(ix0 + kx * p->dil_w) * p->in_c;
                            const int8_t *wp = p->w + ((size_t)ky * p->k_w + kx) * out_c + c0;
                            if (p->depth_mult == 1) {
                                mlk_mac_i8(acc, xp + c0, wp, n, x_offset);
                            } else {
                                for (i = 0; i < n; ++i) {
                                    acc[i] += ((int32_t)xp[(c0 + i) / p->depth_mult] +
                                               x_offset) * (int32_t)wp[i];
                                }
                            }
                        }
                    }
                    for (i = 0; i < n; ++i) {
                        yp[c0 + i] = mlk_hybrid_out(acc[i], s, p->w_scale[c0 + i], p->bias,
                                                    c0 + i, p->act_min, p->act_max);
                    }
                }
            }
        }
    }
}

#endif /* MICROLITH_KERNELS_HYBRID_H */
