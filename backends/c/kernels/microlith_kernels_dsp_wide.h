/* microlith_kernels_dsp_wide.h -- 16x8 CONV_2D (one group) and FULLY_CONNECTED for Cortex-M
 * cores with the DSP extension (see microlith_kernels_dsp.h: compiled only where MLK_DSP is
 * 1; microlith_kernels_wide.h calls them from the portable kernels).
 *
 * Same integer maths as the portable 16x8 kernels, which are byte-identical with
 * TFLite-Micro: acc = bias + sum x * w in int64, then MBQM64 and the clamp. Only the
 * summation order of the exact products changes.
 *
 * Operands: the int16 activations are read two at a time, (x0, x1) and (x2, x3) as two
 * words, and repacked once per group of four into (x0, x2) = PKHBT and (x1, x3) = PKHTB,
 * shared by every output channel of the block; the four int8 weights w0..w3 of a word give
 * (w0, w2) = SXTB16(v) and (w1, w3) = SXTB16(v ror 8). Then SMLAD(w02, x02, SMLAD(w13, x13,
 * a)) adds the four exact products.
 *
 * Overflow: SMLAD accumulates into 32 bits. One product is at most 2^15 * 2^7 = 2^22 in
 * magnitude, so a sum of at most MLK_DSP16_CHUNK = 508 < 2^31 / 2^22 = 512 products (and
 * every partial sum of them) fits int32 exactly. Longer dot products are summed in chunks
 * of at most 508 products, each chunk's int32 sum added to the int64 accumulator -- the
 * same exact integer as the portable kernel's int64 running sum, at one 64-bit add per
 * chunk instead of one SMLALD (64-bit accumulate) per pair of products, and without a
 * bound on the layer's size.
 */
#ifndef MICROLITH_KERNELS_DSP_WIDE_H
#define MICROLITH_KERNELS_DSP_WIDE_H

#include "microlith_kernels_dsp.h"

#if MLK_DSP

#define MLK_DSP16_CHUNK 508 /* products per int32 partial sum (a multiple of 4, < 512) */

/* (x0, x2) and (x1, x3) of the four int16 at p. */
MLK_HOT void mlk_dsp16_pair(const int16_t *p, int32_t *even, int32_t *odd)
{
    const int32_t x01 = mlk_ld32(p), x23 = mlk_ld32(p + 2);
#if defined(__GNUC__)
    int32_t e, o;
    __asm__("pkhbt %0, %1, %2, lsl #16" : "=r"(e) : "r"(x01), "r"(x23));
    __asm__("pkhtb %0, %1, %2, asr #16" : "=r"(o) : "r"(x23), "r"(x01));
    *even = e;
    *odd = o;
#else
    *even = mlk_i32(((uint32_t)x01 & 0xFFFFu) | ((uint32_t)x23 << 16));
    *odd = mlk_i32(((uint32_t)x23 & 0xFFFF0000u) | ((uint32_t)x01 >> 16));
#endif
}

/* acc[j] += sum_k x[k] * w[j * ws + k] for j < 4, n <= MLK_DSP16_CHUNK (so acc stays exact
 * when it starts at a partial sum of the same bound). */
MLK_DSP_LOOP void mlk_dsp16_dot4(const int16_t *x, const int8_t *w, ptrdiff_t ws, int n,
                                 int32_t *acc)
{
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    const int n4 = n & ~3;
    int k;
    for (k = n4 >> 2; k > 0; --k, x += 4, w += 4) {
        int32_t xe, xo, v;
        mlk_dsp16_pair(x, &xe, &xo);
        v = mlk_ld32(w);
        a0 = __smlad(__sxtb16(v), xe, a0);
        a0 = __smlad(mlk_sxtb16_ror8(v), xo, a0);
        v = mlk_ld32(w + ws);
        a1 = __smlad(__sxtb16(v), xe, a1);
        a1 = __smlad(mlk_sxtb16_ror8(v), xo, a1);
        v = mlk_ld32(w + 2 * ws);
        a2 = __smlad(__sxtb16(v), xe, a2);
        a2 = __smlad(mlk_sxtb16_ror8(v), xo, a2);
        v = mlk_ld32(w + 3 * ws);
        a3 = __smlad(__sxtb16(v), xe, a3);
        a3 = __smlad(mlk_sxtb16_ror8(v), xo, a3);
    }
    for (k = 0; k < n - n4; ++k) {
        const int32_t xv = x[k];
        a0 += xv * w[k];
        a1 += xv * w[ws + k];
        a2 += xv * w[2 * ws + k];
        a3 += xv * w[3 * ws + k];
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

/* sum_k x[k] * w[k] + acc, n <= MLK_DSP16_CHUNK. */
MLK_HOT int32_t mlk_dsp16_dot1(const int16_t *x, const int8_t *w, int n, int32_t acc)
{
    const int n4 = n & ~3;
    int k;
    for (k = 0; k < n4; k += 4) {
        int32_t xe, xo;
        const int32_t v = mlk_ld32(w + k);
        mlk_dsp16_pair(x + k, &xe, &xo);
        acc = __smlad(__sxtb16(v), xe, acc);
        acc = __smlad(mlk_sxtb16_ror8(v), xo, acc);
    }
    for (k = n4; k < n; ++k) {
        acc += (int32_t)x[k] * w[k];
    }
    return acc;
}

/* acc[j] += sum_k x[k] * w[j * ws + k] (int64) for j < m (1 or 4), any n: int32 chunks. */
MLK_HOT void mlk_dsp16_dot_long(const int16_t *x, const int8_t *w, ptrdiff_t ws, int n, int m,
                                int64_t *acc)
{
    int k0, j;
    for (k0 = 0; k0 < n; k0 += MLK_DSP16_CHUNK) {
        const int len = n - k0 < MLK_DSP16_CHUNK ? n - k0 : MLK_DSP16_CHUNK;
        if (m == 4) {
            int32_t part[4] = {0, 0, 0, 0};
            mlk_dsp16_dot4(x + k0, w + k0, ws, len, part);
            for (j = 0; j < 4; ++j) {
                acc[j] += part[j];
            }
        } else {
            acc[0] += mlk_dsp16_dot1(x + k0, w + k0, len, 0);
        }
    }
}

MLK_INLINE void mlk_dsp_fully_connected_i16(const mlk_fully_connected_i16_params *p,
                                            const int16_t *x, int16_t *y)
{
    int b, u, j;
    for (b = 0; b < p->batches; ++b) {
        const int16_t *xr = x + (size_t)b * p->depth;
        int16_t *yr = y + (size_t)b * p->units;
        for (u = 0; u < p->units; u += 4) {
            const int m = p->units - u >= 4 ? 4 : 1;
            int64_t acc[4];
            for (j = 0; j < m; ++j) {
                acc[j] = p->bias ? p->bias[u + j] : 0;
            }
            mlk_dsp16_dot_long(xr, p->w + (size_t)u * p->depth, p->depth, p->depth, m, acc);
            for (j = 0; j < m; ++j) {
                yr[u + j] = mlk_out_i16(mlk_wrap_add(mlk_mbqm64(acc[j], p->mult[u + j],
                                                                p->shift[u + j]), p->y_zp),
                                        p->act_min, p->act_max);
            }
            u += m - 4; /* one unit at a time in the tail */
        }
    }
}

/* CONV_2D with one group: the window of each output pixel is a run of taps, each tap in_c
 * contiguous int16 of the input and in_c contiguous int8 of each filter (OHWI), taps
 * outside the image skipped; without dilation the taps of one filter row inside the image
 * are one contiguous run of both. Four output channels at a time share the repacked inputs.
 * When the whole window has at most MLK_DSP16_CHUNK elements one int32 partial sum per
 * channel runs over all taps; otherwise each tap is summed in chunks into the int64. */
/* Small filters (at most MLK_DSP16_GATHER elements, 512 bytes of stack): the window of each
 * output pixel is first gathered into one int16 column on the stack (zeros for the taps
 * outside the image: the activations' zero point is 0), so each block of four channels is
 * one dot product over the whole filter. */
#ifndef MLK_DSP16_GATHER
#define MLK_DSP16_GATHER 256
#endif
#if MLK_DSP16_GATHER > MLK_DSP16_CHUNK
#error "MLK_DSP16_GATHER must be at most MLK_DSP16_CHUNK (one int32 partial sum per filter)"
#endif

MLK_INLINE void mlk_dsp_conv2d_i16_gather(const mlk_conv2d_i16_params *p, const int16_t *x,
                                          int16_t *y)
{
    const int in_c = p->in_c, n = p->k_h * p->k_w * in_c;
    int16_t col[MLK_DSP16_GATHER];
    int b, oy, ox, oc, ky, kx, j;
    for (b = 0; b < p->batches; ++b) {
        const int16_t *xb = x + (size_t)b * p->in_h * p->in_w * in_c;
        for (oy = 0; oy < p->out_h; ++oy) {
            const int iy0 = oy * p->stride_h - p->pad_top;
            for (ox = 0; ox < p->out_w; ++ox) {
                const int ix0 = ox * p->stride_w - p->pad_left;
                int16_t *yp = y + (((size_t)b * p->out_h + oy) * p->out_w + ox) * p->out_c;
                int16_t *c = col;
                int kx0, kx1;
                mlk_window(ix0, p->k_w, p->dil_w, p->in_w, &kx0, &kx1);
                if (kx0 > 0 || kx1 < p->k_w || iy0 < 0 ||
                    iy0 + (p->k_h - 1) * p->dil_h >= p->in_h) {
                    memset(col, 0, (size_t)n * sizeof *col); /* taps outside the image */
                }
                for (ky = 0; ky < p->k_h; ++ky, c += p->k_w * in_c) {
                    const int iy = iy0 + ky * p->dil_h;
                    const int16_t *row = xb + (size_t)iy * p->in_w * in_c;
                    if (iy < 0 || iy >= p->in_h || kx1 == kx0) {
                        continue;
                    }
                    if (p->dil_w == 1) { /* the taps inside are one run */
                        memcpy(c + kx0 * in_c, row + (size_t)(ix0 + kx0) * in_c,
                               (size_t)(kx1 - kx0) * in_c * sizeof *c);
                        continue;
                    }
                    for (kx = kx0; kx < kx1; ++kx) {
                        memcpy(c + kx * in_c, row + (size_t)(ix0 + kx * p->dil_w) * in_c,
                               (size_t)in_c * sizeof *c);
                    }
                }
                for (oc = 0; oc < p->out_c; oc += 4) {
                    const int8_t *wc = p->w + (size_t)oc * n;
                    int32_t part[4] = {0, 0, 0, 0};
                    const int m = p->out_c - oc >= 4 ? 4 : 1;
                    if (m == 4) {
                        mlk_dsp16_dot4(col, wc, n, n, part);
                    } else {
                        part[0] = mlk_dsp16_dot1(col, wc, n, 0);
                    }
                    for (j = 0; j < m; ++j) {
                        const int64_t acc = (p->bias ? p->bias[oc + j] : 0) + part[j];
                        yp[oc + j] = mlk_out_i16(mlk_mbqm64(acc, p->mult[oc + j],
                                                            p->shift[oc + j]),
                                                 p->act_min, p->act_max);
                    }
                    oc += m - 4;
                }
            }
        }
    }
}

MLK_INLINE void mlk_dsp_conv2d_i16(const mlk_conv2d_i16_params *p, const int16_t *x, int16_t *y)
{
    const int in_c = p->in_c;
    const ptrdiff_t ws = (ptrdiff_t)p->k_h * p->k_w * in_c; /* one filter */
    const int fits = ws <= MLK_DSP16_CHUNK;
    int b, oy, ox, oc, ky, kx, j;
    if (ws <= MLK_DSP16_GATHER) {
        mlk_dsp_conv2d_i16_gather(p, x, y);
        return;
    }
    for (b = 0; b < p->batches; ++b) {
        const int16_t *xb = x + (size_t)b * p->in_h * p->in_w * in_c;
        for (oy = 0; oy < p->out_h; ++oy) {
            const int iy0 = oy * p->stride_h - p->pad_top;
            for (ox = 0; ox < p->out_w; ++ox) {
                const int ix0 = ox * p->stride_w - p->pad_left;
                int16_t *yp = y + (((size_t)b * p->out_h + oy) * p->out_w + ox) * p->out_c;
                /* the taps inside the image: kx0 <= kx < kx1; without dilation they are
                 * one contiguous run of (kx1 - kx0) * in_c elements per filter row */
                int kx0, kx1, step, run;
                mlk_window(ix0, p->k_w, p->dil_w, p->in_w, &kx0, &kx1);
                step = p->dil_w == 1 ? (kx1 > kx0 ? kx1 - kx0 : 1) : 1;
                run = step * in_c;
                for (oc = 0; oc < p->out_c; oc += 4) {
                    const int m = p->out_c - oc >= 4 ? 4 : 1;
                    const int8_t *wc = p->w + (size_t)oc * ws;
                    int64_t acc[4];
                    int32_t part[4] = {0, 0, 0, 0};
                    for (j = 0; j < m; ++j) {
                        acc[j] = p->bias ? p->bias[oc + j] : 0;
                    }
                    for (ky = 0; ky < p->k_h; ++ky) {
                        const int iy = iy0 + ky * p->dil_h;
                        if (iy < 0 || iy >= p->in_h) {
                            continue;
                        }
                        for (kx = kx0; kx < kx1; kx += step) {
                            const int ix = ix0 + kx * p->dil_w;
                            const int16_t *xp = xb + ((size_t)iy * p->in_w + ix) * in_c;
                            const int8_t *wp = wc + ((size_t)ky * p->k_w + kx) * in_c;
                            if (!fits) {
                                mlk_dsp16_dot_long(xp, wp, ws, run, m, acc);
                            } else if (m == 4) {
                                mlk_dsp16_dot4(xp, wp, ws, run, part);
                            } else {
                                part[0] = mlk_dsp16_dot1(xp, wp, run, part[0]);
                            }
                        }
                    }
                    for (j = 0; j < m; ++j) {
                        yp[oc + j] = mlk_out_i16(mlk_mbqm64(acc[j] + part[j], p->mult[oc + j],
                                                            p->shift[oc + j]),
                                                 p->act_min, p->act_max);
                    }
                    oc += m - 4;
                }
            }
        }
    }
}

/* DEPTHWISE_CONV_2D with depth_mult == 1, four channels a pass: per tap the int16 words
 * (x0, x1), (x2, x3) are read directly and the int8 weight word widened once into
 * (w0, w2) = SXTB16(v), (w1, w3) = SXTB16(v ror 8); the four products are the halfword
 * forms SMLABB(x01, w02), SMLATB(x01, w13), SMLABT(x23, w02), SMLATT(x23, w13). Taps outside
 * the image are skipped (the window clipped by mlk_window). Each channel sums its taps in
 * int32, exact for at most MLK_DSP16_CHUNK taps; a window with more taps is added to the
 * int64 accumulator after every filter row (k_w <= MLK_DSP16_CHUNK, checked by the
 * caller). The last in_c % 4 channels are summed one by one in int64 as the portable
 * kernel does. */
MLK_HOT void mlk_dsp16_dw_block(const mlk_conv2d_i16_params *p, const int16_t *xb,
                                ptrdiff_t xw, int16_t *yp, int c, int ky0, int ky1, int kx0,
                                int kx1)
{
    const int c_n = p->in_c;
    const ptrdiff_t row = (ptrdiff_t)p->dil_h * p->in_w * c_n, col = (ptrdiff_t)p->dil_w * c_n;
    const int fits = p->k_h * p->k_w <= MLK_DSP16_CHUNK;
    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    int64_t acc[4] = {0, 0, 0, 0};
    int ky, kx, j;
    for (ky = ky0; ky < ky1; ++ky) {
        const int16_t *xr = xb + (xw + ky * row + kx0 * col + c);
        const int8_t *wr = p->w + ((size_t)ky * p->k_w + kx0) * c_n + c;
        for (kx = kx1 - kx0; kx > 0; --kx, xr += col, wr += c_n) {
            const int32_t x01 = mlk_ld32(xr), x23 = mlk_ld32(xr + 2);
            const int32_t v = mlk_ld32(wr);
            const int32_t w02 = __sxtb16(v), w13 = mlk_sxtb16_ror8(v);
            a0 = __smlabb(x01, w02, a0);
            a1 = __smlatb(x01, w13, a1);
            a2 = __smlabt(x23, w02, a2);
            a3 = __smlatt(x23, w13, a3);
        }
        if (!fits) { /* at most k_w <= MLK_DSP16_CHUNK products since the last flush */
            acc[0] += a0;
            acc[1] += a1;
            acc[2] += a2;
            acc[3] += a3;
            a0 = a1 = a2 = a3 = 0;
        }
    }
    acc[0] += a0;
    acc[1] += a1;
    acc[2] += a2;
    acc[3] += a3;
    MLK_UNROLL
    for (j = 0; j < 4; ++j) {
        yp[c + j] = mlk_out_i16(mlk_mbqm64((p->bias ? p->bias[c + j] : 0) + acc[j],
                                           p->mult[c + j], p->shift[c + j]),
                                p->act_min, p->act_max);
    }
}

/* One output pixel's channels from c4 on, one by one, in int64 (the portable sum). */
MLK_HOT void mlk_dsp16_dw_tail(const mlk_conv2d_i16_params *p, const int16_t *xb, ptrdiff_t xw,
                               int16_t *yp, int c4, int ky0, int ky1, int kx0, int kx1)
{
    const int c_n = p->in_c;
    int c, ky, kx;
    for (c = c4; c < c_n; ++c) {
        int64_t acc = p->bias ? p->bias[c] : 0;
        for (ky = ky0; ky < ky1; ++ky) {
            for (kx = kx0; kx < kx1; ++kx) {
                const ptrdiff_t t = (ptrdiff_t)ky * p->dil_h * p->in_w + (ptrdiff_t)kx * p->dil_w;
                acc += (int32_t)xb[xw + t * c_n + c] *
                       (int32_t)p->w[((size_t)ky * p->k_w + kx) * c_n + c];
            }
        }
        yp[c] = mlk_out_i16(mlk_mbqm64(acc, p->mult[c], p->shift[c]), p->act_min, p->act_max);
    }
}

MLK_HOT void mlk_dsp_depthwise_i16(const mlk_conv2d_i16_params *p, const int16_t *x, int16_t *y)
{
    const int c_n = p->in_c, c4 = c_n & ~3;
    int b, oy, ox, c;
    for (b = 0; b < p->batches; ++b) {
        const int16_t *xb = x + (size_t)b * p->in_h * p->in_w * c_n;
        for (oy = 0; oy < p->out_h; ++oy) {
            const int iy0 = oy * p->stride_h - p->pad_top;
            int ky0, ky1;
            mlk_window(iy0, p->k_h, p->dil_h, p->in_h, &ky0, &ky1);
            for (ox = 0; ox < p->out_w; ++ox) {
                const int ix0 = ox * p->stride_w - p->pad_left;
                /* offset of element (iy0, ix0), which may lie outside the image: only the
                 * taps inside, ky0 <= ky < ky1 and kx0 <= kx < kx1, are read */
                const ptrdiff_t xw = ((ptrdiff_t)iy0 * p->in_w + ix0) * c_n;
                int16_t *yp = y + (((size_t)b * p->out_h + oy) * p->out_w + ox) * c_n;
                int kx0, kx1;
                mlk_window(ix0, p->k_w, p->dil_w, p->in_w, &kx0, &kx1);
                for (c = 0; c < c4; c += 4) {
                    mlk_dsp16_dw_block(p, xb, xw, yp, c, ky0, ky1, kx0, kx1);
                }
                if (c4 < c_n) {
                    mlk_dsp16_dw_tail(p, xb, xw, yp, c4, ky0, ky1, kx0, kx1);
                }
            }
        }
    }
}

#endif /* MLK_DSP */

#endif /* MICROLITH_KERNELS_DSP_WIDE_H */
