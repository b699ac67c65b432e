/* microlith_kernels_dsp_fc.h -- the Cortex-M DSP FULLY_CONNECTED and DEPTHWISE_CONV_2D
 * kernels (see microlith_kernels_dsp.h, which includes this header after its helpers:
 * MLK_WIDEN, mlk_sxtb16_ror8, mlk_dsp_out, mlk_dsp_out2, MLK_DSP_LOOP). */
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
            mlk_dsp_out2(p->rq, p->mult, p->shift, o, acc[0], acc[2], p->y_zp, p->act_min,
                         p->act_max, yb + o, yb + units + o);
            mlk_dsp_out2(p->rq, p->mult, p->shift, o + 1, acc[1], acc[3], p->y_zp, p->act_min,
                         p->act_max, yb + o + 1, yb + units + o + 1);
        }
        for (o = units2; o < units; ++o) {
            const int8_t *w0 = p->w + (size_t)o * depth;
            for (j = 0; j < 2; ++j) {
                const int32_t acc = mlk_dsp_fc_dot1(xb + (size_t)j * depth, w0, depth,
                                                    p->bias_folded[o]);
                yb[j * units + o] = mlk_dsp_out(p->rq, p->mult, p->shift, o, acc, p->y_zp,
                                                p->act_min, p->act_max);
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
                yb[o + j] = mlk_dsp_out(p->rq, p->mult, p->shift, o + j, acc[j], p->y_zp,
                                        p->act_min, p->act_max);
            }
        }
        for (o = units4; o < units; ++o) {
            const int32_t acc = mlk_dsp_fc_dot1(xb, p->w + (size_t)o * depth, depth,
                                                p->bias_folded[o]);
            yb[o] = mlk_dsp_out(p->rq, p->mult, p->shift, o, acc, p->y_zp, p->act_min,
                                p->act_max);
        }
    }
}

/* DEPTHWISE_CONV_2D with depth_mult == 1, four channels at a time: each tap is one input
 * word and one weight word, widened (SXTB16), and four 16x16 multiply-accumulates
 * (SMLABB / SMLATT: lanes (c, c+2) and (c+1, c+3)). Per output row the pixels split into a
 * left border, an interior and a right border (bounds computed once from the record, so the
 * interior loop tests no taps); interior windows use the zero-point-folded bias, each tap one
 * asm block (below); border windows are clipped to the image and offset the input by -x_zp
 * (SADD16) against the plain bias. mlk_dsp_dw_interior also takes two pixels (np = 2,
 * sharing each widened weight word), which measured slower on the M4: with eight
 * accumulators GCC spills. */

#if defined(__GNUC__)
/* A 32-bit word read through any pointer (an asm memory operand; unaligned is allowed). */
typedef uint32_t mlk_word __attribute__((may_alias, aligned(1)));
#endif

/* Channels c..c+3 of np (1 or 2) interior pixels whose first window's top-left tap is xw
 * (channel 0); the tap loops have the record's constant bounds and unroll. */
MLK_HOT void mlk_dsp_dw_interior(const mlk_depthwise_conv2d_params *p, const int8_t *xw,
                                 int8_t *yp, int c, int np)
{
    const int c_n = p->in_c;
    const ptrdiff_t row = (ptrdiff_t)p->dil_h * p->in_w * c_n, col = (ptrdiff_t)p->dil_w * c_n;
    const ptrdiff_t step = (ptrdiff_t)p->stride_w * c_n;
    const int32_t *bf = p->bias_folded + c;
    int32_t a0 = bf[0], a1 = bf[1], a2 = bf[2], a3 = bf[3];
    int32_t b0 = a0, b1 = a1, b2 = a2, b3 = a3;
    int ky, kx, i;
    MLK_UNROLL
    for (ky = 0; ky < p->k_h; ++ky) {
        MLK_UNROLL
        for (kx = 0; kx < p->k_w; ++kx) {
            const ptrdiff_t xo = ky * row + kx * col;
            const ptrdiff_t wo = (ptrdiff_t)(ky * p->k_w + kx) * c_n;
#if defined(__GNUC__)
            /* One tap as one asm block: the loads stay at the tap (GCC otherwise hoists the
             * pixel-invariant weight words out of the pixel loop and spills them). */
            int32_t t0, t1, t2, t3;
            if (np == 1) {
                __asm__("ldr %[t1], %[wm]\n\t"
                        "ldr %[t0], %[xm]\n\t"
                        "sxtb16 %[t2], %[t1], ror #8\n\t"
                        "sxtb16 %[t1], %[t1]\n\t"
                        "sxtb16 %[t3], %[t0]\n\t"
                        "sxtb16 %[t0], %[t0], ror #8\n\t"
                        "smlabb %[a0], %[t3], %[t1], %[a0]\n\t"
                        "smlatt %[a2], %[t3], %[t1], %[a2]\n\t"
                        "smlabb %[a1], %[t0], %[t2], %[a1]\n\t"
                        "smlatt %[a3], %[t0], %[t2], %[a3]"
                        : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3),
                          [t0] "=&r"(t0), [t1] "=&r"(t1), [t2] "=&r"(t2), [t3] "=&r"(t3)
                        : [xm] "m"(*(const mlk_word *)(xw + (xo + c))),
                          [wm] "m"(*(const mlk_word *)(p->w + (wo + c))));
                continue;
            }
#endif
            {
                const int8_t *xq = xw + (xo + c);
                int32_t xl, xh, wl, wh;
                MLK_WIDEN(p->w + (wo + c), wl, wh);
                MLK_WIDEN(xq, xl, xh);
                a0 = __smlabb(xl, wl, a0);
                a2 = __smlatt(xl, wl, a2);
                a1 = __smlabb(xh, wh, a1);
                a3 = __smlatt(xh, wh, a3);
                if (np == 2) {
                    MLK_WIDEN(xq + step, xl, xh);
                    b0 = __smlabb(xl, wl, b0);
                    b2 = __smlatt(xl, wl, b2);
                    b1 = __smlabb(xh, wh, b1);
                    b3 = __smlatt(xh, wh, b3);
                }
            }
        }
    }
    {
        const int32_t acc[8] = {a0, a1, a2, a3, b0, b1, b2, b3};
        MLK_UNROLL
        for (i = 0; i < 4 * np; ++i) {
            const int o = c + (i & 3);
            yp[(i >> 2) * c_n + o] = mlk_dsp_out(p->rq, p->mult, p->shift, o, acc[i], p->y_zp,
                                                 p->act_min, p->act_max);
        }
    }
}

/* Channels c..c+3 of one pixel over the taps [ky0, ky1) x [kx0, kx1) of the window whose
 * top-left tap is element xw of xb (only in-image taps are read), input offset by -x_zp
 * (off2 in both lanes), plain bias. */
MLK_HOT void mlk_dsp_dw_border(const mlk_depthwise_conv2d_params *p, const int8_t *xb,
                               ptrdiff_t xw, int8_t *yp, int c, int ky0, int ky1, int kx0,
                               int kx1, int32_t off2)
{
    const int c_n = p->in_c;
    const ptrdiff_t row = (ptrdiff_t)p->dil_h * p->in_w * c_n, col = (ptrdiff_t)p->dil_w * c_n;
    int32_t acc[4];
    int ky, kx, i;
    int32_t a0 = p->bias[c], a1 = p->bias[c + 1], a2 = p->bias[c + 2], a3 = p->bias[c + 3];
    for (ky = ky0; ky < ky1; ++ky) {
        for (kx = kx0; kx < kx1; ++kx) {
            int32_t xl, xh, wl, wh;
            MLK_WIDEN(xb + (xw + ky * row + kx * col + c), xl, xh);
            MLK_WIDEN(p->w + ((size_t)(ky * p->k_w + kx) * c_n + c), wl, wh);
            xl = __sadd16(xl, off2);
            xh = __sadd16(xh, off2);
            a0 = __smlabb(xl, wl, a0);
            a2 = __smlatt(xl, wl, a2);
            a1 = __smlabb(xh, wh, a1);
            a3 = __smlatt(xh, wh, a3);
        }
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
    MLK_UNROLL
    for (i = 0; i < 4; ++i) {
        yp[c + i] = mlk_dsp_out(p->rq, p->mult, p->shift, c + i, acc[i], p->y_zp, p->act_min,
                                p->act_max);
    }
}

/* One pixel, channels from c_from (0 or a multiple of four) on, window clipped to the image:
 * groups of four, then the channels beyond a multiple of four one by one. */
MLK_HOT void mlk_dsp_dw_pixel(const mlk_depthwise_conv2d_params *p, const int8_t *xb,
                              int8_t *yp, int iy0, int ix0, int ky0, int ky1, int32_t off2,
                              int c_from)
{
    const int c_n = p->in_c, c4 = c_n & ~3;
    const ptrdiff_t xw = ((ptrdiff_t)iy0 * p->in_w + ix0) * c_n;
    const int32_t off = -p->x_zp;
    int kx0, kx1, c, ky, kx;
    mlk_window(ix0, p->k_w, p->dil_w, p->in_w, &kx0, &kx1);
    for (c = c_from; c < c4; c += 4) {
        mlk_dsp_dw_border(p, xb, xw, yp, c, ky0, ky1, kx0, kx1, off2);
    }
    for (c = c4; c < c_n; ++c) {
        int32_t a = p->bias[c];
        for (ky = ky0; ky < ky1; ++ky) {
            for (kx = kx0; kx < kx1; ++kx) {
                const ptrdiff_t t = (ptrdiff_t)ky * p->dil_h * p->in_w + (ptrdiff_t)kx * p->dil_w;
                a += ((int32_t)xb[xw + t * c_n + c] + off) *
                     (int32_t)p->w[((size_t)ky * p->k_w + kx) * c_n + c];
            }
        }
        yp[c] = mlk_dsp_out(p->rq, p->mult, p->shift, c, a, p->y_zp, p->act_min, p->act_max);
    }
}

MLK_HOT void mlk_dsp_depthwise_i8(const mlk_depthwise_conv2d_params *p, const int8_t *x,
                                  int8_t *y)
{
    const int c_n = p->in_c, c4 = c_n & ~3, out_w = p->out_w;
    const int32_t off = -p->x_zp;
    const int32_t off2 = (int32_t)(((uint32_t)(uint16_t)off << 16) | (uint16_t)off);
    /* interior columns [ox_lo, ox_hi): ix0 >= 0 and ix0 + (k_w - 1) dil_w < in_w */
    const int last = p->in_w - 1 - (p->k_w - 1) * p->dil_w + p->pad_left;
    const int ox_lo = (p->pad_left + p->stride_w - 1) / p->stride_w < out_w
                          ? (p->pad_left + p->stride_w - 1) / p->stride_w : out_w;
    int ox_hi = last < 0 ? 0 : last / p->stride_w + 1;
    int b, oy, ox, c, full;
    if (ox_hi > out_w) {
        ox_hi = out_w;
    }
    if (ox_hi < ox_lo) {
        ox_hi = ox_lo;
    }
    for (b = 0; b < p->batches; ++b) {
        const int8_t *xb = x + (size_t)b * p->in_h * p->in_w * c_n;
        for (oy = 0; oy < p->out_h; ++oy) {
            const int iy0 = oy * p->stride_h - p->pad_top;
            int8_t *yr = y + ((size_t)b * p->out_h + oy) * out_w * c_n;
            int ky0, ky1;
            mlk_window(iy0, p->k_h, p->dil_h, p->in_h, &ky0, &ky1);
            full = ky0 == 0 && ky1 == p->k_h;
            for (ox = 0; ox < out_w; ++ox) {
                const int ix0 = ox * p->stride_w - p->pad_left;
                const int interior = full && ox >= ox_lo && ox < ox_hi;
                int8_t *yp = yr + (size_t)ox * c_n;
                if (interior) {
                    const int8_t *xw = xb + ((size_t)iy0 * p->in_w + (size_t)ix0) * c_n;
                    for (c = 0; c < c4; c += 4) {
                        mlk_dsp_dw_interior(p, xw, yp, c, 1);
                    }
                }
                /* border windows (clipped), and the last c_n % 4 channels of interior ones:
                 * one call site, so the border code is inlined once per layer */
                if (!interior || c4 < c_n) {
                    mlk_dsp_dw_pixel(p, xb, yp, iy0, ix0, ky0, ky1, off2, interior ? c4 : 0);
                }
            }
        }
    }
}

#endif /* MLK_DSP */

#endif /* MICROLITH_KERNELS_DSP_FC_H */
