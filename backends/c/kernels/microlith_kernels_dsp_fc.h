/* microlith_kernels_dsp_fc.h -- the Cortex-M DSP FULLY_CONNECTED and DEPTHWISE_CONV_2D
 * kernels (see microlith_kernels_dsp.h, which includes this header after its helpers:
 * MLK_WIDEN, mlk_sxtb16_ror8, mlk_mbqm_pos, mlk_out2_i8, MLK_DSP_LOOP). */
#ifndef MICROLITH_KERNELS_DSP_FC_H
#define MICROLITH_KERNELS_DSP_FC_H

#include "microlith_kernels_dsp.h"

#if MLK_DSP

/* acc[0..3] += (w0 . x0, w1 . x0, w0 . x1, w1 . x1) over n int8 elements, x1 = x0 + d and
 * w1 = w0 + d (two rows of the input and of the weights), everything widened as read. */
MLK_HOT void mlk_dsp_fc_dot2x2_body(const int8_t *x0, const int8_t *w0, ptrdiff_t d, int n,
                                    int32_t *acc)
{
    const int n4 = n & ~3, tail = n - n4;
    int32_t a00 = acc[0], a10 = acc[1], a01 = acc[2], a11 = acc[3];
    int k;
    for (k = n4 >> 2; k > 0; --k, x0 += 4, w0 += 4) {
        const int32_t v0 = mlk_ld32(w0), v1 = mlk_ld32(w0 + d);
        const int32_t t0 = __sxtb16(v0), t1 = __sxtb16(v1);
        const int32_t u0 = mlk_sxtb16_ror8(v0), u1 = mlk_sxtb16_ror8(v1);
        int32_t xl, xh;
        MLK_WIDEN(x0, xl, xh);
        a00 = __smlad(t0, xl, a00);
        a10 = __smlad(t1, xl, a10);
        a00 = __smlad(u0, xh, a00);
        a10 = __smlad(u1, xh, a10);
        MLK_WIDEN(x0 + d, xl, xh);
        a01 = __smlad(t0, xl, a01);
        a11 = __smlad(t1, xl, a11);
        a01 = __smlad(u0, xh, a01);
        a11 = __smlad(u1, xh, a11);
    }
    for (k = 0; k < tail; ++k) {
        const int32_t p0 = x0[k], p1 = x0[d + k];
        a00 += p0 * w0[k];
        a10 += p0 * w0[d + k];
        a01 += p1 * w0[k];
        a11 += p1 * w0[d + k];
    }
    acc[0] = a00;
    acc[1] = a10;
    acc[2] = a01;
    acc[3] = a11;
}

MLK_DSP_LOOP void mlk_dsp_fc_dot2x2_call(const int8_t *x0, const int8_t *w0, ptrdiff_t d,
                                         int n, int32_t *acc)
{
    mlk_dsp_fc_dot2x2_body(x0, w0, d, n, acc);
}

MLK_HOT void mlk_dsp_fc_dot2x2(const int8_t *x0, const int8_t *w0, ptrdiff_t d, int n,
                               int32_t *acc)
{
    if (n <= MLK_DSP_INLINE_N) {
        mlk_dsp_fc_dot2x2_body(x0, w0, d, n, acc);
    } else {
        mlk_dsp_fc_dot2x2_call(x0, w0, d, n, acc);
    }
}

/* w0 . x0 over n int8 elements. */
MLK_INLINE int32_t mlk_dsp_fc_dot1(const int8_t *x0, const int8_t *w0, int n, int32_t acc)
{
    const int n4 = n & ~3;
    int k;
    for (k = 0; k < n4; k += 4) {
        int32_t xl, xh, wl, wh;
        MLK_WIDEN(x0 + k, xl, xh);
        MLK_WIDEN(w0 + k, wl, wh);
        acc = __smlad(wl, xl, acc);
        acc = __smlad(wh, xh, acc);
    }
    for (k = n4; k < n; ++k) {
        acc += (int32_t)x0[k] * w0[k];
    }
    return acc;
}

/* acc[j] += x . w_j over n int8 elements, w_j = w + j n (four weight rows, one input row:
 * the input widened once for the four). Inlined: at each call site the depth is a constant
 * (out of line, one copy shared by layers of other depths was 23% slower on the FC
 * autoencoder). */
MLK_HOT void mlk_dsp_fc_dot1x4(const int8_t *x, const int8_t *w, int n, int32_t *acc)
{
    const int n4 = n & ~3;
    const int8_t *w1 = w + n, *w2 = w1 + n, *w3 = w2 + n;
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    int k;
    for (k = 0; k < n4; k += 4) {
        int32_t xl, xh, wl, wh;
        MLK_WIDEN(x + k, xl, xh);
        MLK_WIDEN(w + k, wl, wh);
        a0 = __smlad(wl, xl, a0);
        a0 = __smlad(wh, xh, a0);
        MLK_WIDEN(w1 + k, wl, wh);
        a1 = __smlad(wl, xl, a1);
        a1 = __smlad(wh, xh, a1);
        MLK_WIDEN(w2 + k, wl, wh);
        a2 = __smlad(wl, xl, a2);
        a2 = __smlad(wh, xh, a2);
        MLK_WIDEN(w3 + k, wl, wh);
        a3 = __smlad(wl, xl, a3);
        a3 = __smlad(wh, xh, a3);
    }
    for (k = n4; k < n; ++k) {
        const int32_t v = x[k];
        a0 += v * w[k];
        a1 += v * w1[k];
        a2 += v * w2[k];
        a3 += v * w3[k];
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

/* FULLY_CONNECTED (also every 1x1 convolution over its pixels): two input rows (batches)
 * by two weight rows (units) at a time; the odd row or unit left over one by one. */
MLK_HOT void mlk_dsp_fully_connected_i8(const mlk_fully_connected_params *p,
                                        const int8_t *x, int8_t *y)
{
    const int depth = p->depth, units = p->units, batches = p->batches;
    const int batches2 = batches & ~1, units2 = units & ~1, units4 = units & ~3;
    int b, o, j;
    for (b = 0; b < batches2; b += 2) {
        const int8_t *xb = x + (size_t)b * depth;
        int8_t *yb = y + (size_t)b * units;
        for (o = 0; o < units2; o += 2) {
            int32_t acc[4];
            acc[0] = acc[2] = p->bias_folded[o];
            acc[1] = acc[3] = p->bias_folded[o + 1];
            mlk_dsp_fc_dot2x2(xb, p->w + (size_t)o * depth, depth, depth, acc);
            mlk_out2_i8(acc[0], acc[2], p->mult[o], p->shift[o], p->y_zp, p->act_min,
                        p->act_max, yb + o, yb + units + o);
            mlk_out2_i8(acc[1], acc[3], p->mult[o + 1], p->shift[o + 1], p->y_zp, p->act_min,
                        p->act_max, yb + o + 1, yb + units + o + 1);
        }
        for (o = units2; o < units; ++o) {
            const int8_t *w0 = p->w + (size_t)o * depth;
            for (j = 0; j < 2; ++j) {
                const int32_t acc = mlk_dsp_fc_dot1(xb + (size_t)j * depth, w0, depth,
                                                    p->bias_folded[o]);
                yb[j * units + o] = mlk_out_i8(mlk_mbqm_pos(acc, p->mult[o], p->shift[o]),
                                               p->y_zp, p->act_min, p->act_max);
            }
        }
    }
    for (b = batches2; b < batches; ++b) {
        const int8_t *xb = x + (size_t)b * depth;
        int8_t *yb = y + (size_t)b * units;
        for (o = 0; o < units4; o += 4) {
            int32_t acc[4];
            for (j = 0; j < 4; ++j) {
                acc[j] = p->bias_folded[o + j];
            }
            mlk_dsp_fc_dot1x4(xb, p->w + (size_t)o * depth, depth, acc);
            for (j = 0; j < 4; ++j) {
                yb[o + j] = mlk_out_i8(mlk_mbqm_pos(acc[j], p->mult[o + j], p->shift[o + j]),
                                       p->y_zp, p->act_min, p->act_max);
            }
        }
        for (o = units4; o < units; ++o) {
            const int32_t acc = mlk_dsp_fc_dot1(xb, p->w + (size_t)o * depth, depth,
                                                p->bias_folded[o]);
            yb[o] = mlk_out_i8(mlk_mbqm_pos(acc, p->mult[o], p->shift[o]), p->y_zp,
                               p->act_min, p->act_max);
        }
    }
}

/* DEPTHWISE_CONV_2D with depth_mult == 1: four channels at a time held in registers over
 * the whole (clipped) window; each tap is one input word and one weight word, widened, and
 * four 16x16 multiply-accumulates (SMLABB / SMLATT). Channels beyond a multiple of four
 * and border windows offset the input by -x_zp (SADD16) against the plain bias. */
/* Output channels c..c+3 of one pixel from the taps [ky0, ky1) x [kx0, kx1) of the window
 * whose top-left tap is element xw of xb (x at (iy0, ix0), channel 0; only in-image taps
 * are read): with `border` the input is
 * offset by -x_zp (off2 in both lanes) against the plain bias, else the folded bias. Called
 * with constant bounds and flag for interior windows, so the tap loops unroll. */
MLK_HOT void mlk_dsp_dw_group(const mlk_depthwise_conv2d_params *p, const int8_t *xb,
                              ptrdiff_t xw, int8_t *yp, int c, int ky0, int ky1, int kx0,
                              int kx1, int border, int32_t off2)
{
    const int c_n = p->in_c;
    const size_t row = (size_t)p->dil_h * p->in_w * c_n, col = (size_t)p->dil_w * c_n;
    const int32_t *bsel = border ? p->bias : p->bias_folded;
    int32_t a0 = bsel[c], a1 = bsel[c + 1], a2 = bsel[c + 2], a3 = bsel[c + 3];
    int ky, kx;
    for (ky = ky0; ky < ky1; ++ky) {
        const ptrdiff_t xr = xw + (ptrdiff_t)(ky * row) + c;
        const int8_t *wr = p->w + (size_t)ky * p->k_w * c_n + c;
        for (kx = kx0; kx < kx1; ++kx) {
            int32_t xl, xh, wl, wh;
            MLK_WIDEN(xb + (xr + (ptrdiff_t)(kx * col)), xl, xh);
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
    yp[c] = mlk_out_i8(mlk_mbqm_pos(a0, p->mult[c], p->shift[c]), p->y_zp, p->act_min,
                       p->act_max);
    yp[c + 1] = mlk_out_i8(mlk_mbqm_pos(a1, p->mult[c + 1], p->shift[c + 1]), p->y_zp,
                           p->act_min, p->act_max);
    yp[c + 2] = mlk_out_i8(mlk_mbqm_pos(a2, p->mult[c + 2], p->shift[c + 2]), p->y_zp,
                           p->act_min, p->act_max);
    yp[c + 3] = mlk_out_i8(mlk_mbqm_pos(a3, p->mult[c + 3], p->shift[c + 3]), p->y_zp,
                           p->act_min, p->act_max);
}

/* DEPTHWISE_CONV_2D with depth_mult == 1: four channels at a time held in registers over
 * the whole (clipped) window; each tap is one input word and one weight word, widened, and
 * four 16x16 multiply-accumulates (SMLABB / SMLATT). Border windows offset the input by
 * -x_zp (SADD16) against the plain bias; channels beyond a multiple of four run one by one. */
MLK_HOT void mlk_dsp_depthwise_i8(const mlk_depthwise_conv2d_params *p, const int8_t *x,
                                  int8_t *y)
{
    const int c_n = p->in_c, c4 = c_n & ~3;
    const int32_t off = -p->x_zp;
    const int32_t off2 = (int32_t)(((uint32_t)(uint16_t)off << 16) | (uint16_t)off);
    int b, oy, ox, c, ky, kx;
    for (b = 0; b < p->batches; ++b) {
        const int8_t *xb = x + (size_t)b * p->in_h * p->in_w * c_n;
        for (oy = 0; oy < p->out_h; ++oy) {
            const int iy0 = oy * p->stride_h - p->pad_top;
            int ky0, ky1;
            mlk_window(iy0, p->k_h, p->dil_h, p->in_h, &ky0, &ky1);
            for (ox = 0; ox < p->out_w; ++ox) {
                const int ix0 = ox * p->stride_w - p->pad_left;
                int8_t *yp = y + (((size_t)b * p->out_h + oy) * p->out_w + ox) * c_n;
                const ptrdiff_t xw = ((ptrdiff_t)iy0 * p->in_w + ix0) * c_n;
                int kx0, kx1;
                mlk_window(ix0, p->k_w, p->dil_w, p->in_w, &kx0, &kx1);
                if (ky1 - ky0 == p->k_h && kx1 - kx0 == p->k_w) {
                    for (c = 0; c < c4; c += 4) {
                        mlk_dsp_dw_group(p, xb, xw, yp, c, 0, p->k_h, 0, p->k_w, 0, off2);
                    }
                } else {
                    for (c = 0; c < c4; c += 4) {
                        mlk_dsp_dw_group(p, xb, xw, yp, c, ky0, ky1, kx0, kx1, 1, off2);
                    }
                }
                for (c = c4; c < c_n; ++c) {
                    int32_t a = p->bias[c];
                    for (ky = ky0; ky < ky1; ++ky) {
                        for (kx = kx0; kx < kx1; ++kx) {
                            const int8_t *xq = xb + ((size_t)(iy0 + ky * p->dil_h) * p->in_w +
                                                     (size_t)(ix0 + kx * p->dil_w)) * c_n;
                            a += ((int32_t)xq[c] + off) *
                                 (int32_t)p->w[((size_t)ky * p->k_w + kx) * c_n + c];
                        }
                    }
                    yp[c] = mlk_out_i8(mlk_mbqm_pos(a, p->mult[c], p->shift[c]), p->y_zp,
                                       p->act_min, p->act_max);
                }
            }
        }
    }
}

#endif /* MLK_DSP */

#endif /* MICROLITH_KERNELS_DSP_FC_H */
