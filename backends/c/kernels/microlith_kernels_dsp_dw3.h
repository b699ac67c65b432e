/* microlith_kernels_dsp_dw3.h -- DEPTHWISE_CONV_2D with a filter three taps wide (k_w == 3,
 * dil_w == dil_h == 1, stride_w 1 or 2, depth_mult 1, in_c % 4 == 0, k_h <= MLK_DW3_MAX_KH)
 * on Cortex-M DSP cores (see microlith_kernels_dsp.h), through rows transposed into the
 * planned scratch.
 *
 * Four channels at a time, each input row the windows need is widened once to int16 and
 * transposed channel-major: channel j of input row iy is one row of wp columns, column
 * pad_left + ix holding x[iy][ix][c0 + j] and every other column (the padding) x_zp. The
 * rows live in a ring of k_h slots (row iy in slot (iy + pad_top) % k_h), each written
 * when the first window that needs it comes, and twice (slots s and s + k_h), so the k_h
 * rows of any window are consecutive slots: one pointer and constant offsets. Rows
 * outside the image hold x_zp throughout. With the zero-point-folded bias every window is
 * then an interior one: no border code, no clipping.
 *
 * In a channel row the taps (kx, kx + 1) of one window are one word: with the weight words
 * w01 = (w[ky][0], w[ky][1]) and w2 = (w[ky][2], 0), a window row is SMLAD + SMLABB. At
 * stride 1 the next pixel's pair (x1, x2) is the halfwords (A.hi, B.lo) of the two words
 * just read (A = (x0, x1), B = (x2, x3)): PKHBT gives (x2, x1), SMLADX multiplies it by
 * w01 crosswise, SMLATB adds x3 w2 -- two pixels from two loads. At stride 2 the pixels
 * share B. A row is taken four pixels a step (mlk_dw3_taps4; then two, then one): per
 * window row 3 loads, one LDRD of the weight words, 2 PKHBT and 8 multiply-accumulates
 * (stride 1), or 5 loads, the LDRD and 8 (stride 2), 14 instructions for 12 MACs; then
 * per pixel two adds, SMMLAR, shift, SSAT and STRB (mlk_rq, the constants read once for
 * the four). Measured against two pixels a step: vww_mobilenet 14,522,037 -> 14,285,710
 * instructions, its depthwise layers 2.84-4.59 -> 2.60-4.07 per MAC.
 *
 * Scratch: 4 channels x 2 k_h slots x wp columns of int16, wp = mlk_dw3_width (select-kernels
 * computes the same bytes, MLK_DW3_SCRATCH_BYTES).
 */
#ifndef MICROLITH_KERNELS_DSP_DW3_H
#define MICROLITH_KERNELS_DSP_DW3_H

#include "microlith_kernels_dsp.h"

#if MLK_DSP

#ifndef MLK_DW3_MAX_KH
#define MLK_DW3_MAX_KH 7
#endif

/* Columns of a transposed row: the windows read (out_w - 1) stride_w + 3 columns and the
 * last pixel pair one word further; the input row sits at pad_left; even, so every row
 * starts on a word. */
MLK_INLINE int mlk_dw3_width(int out_w, int stride_w, int pad_left, int in_w)
{
    int wp = out_w * stride_w + 3;
    if (wp < pad_left + in_w) {
        wp = pad_left + in_w;
    }
    return (wp + 1) & ~1;
}

#define MLK_DW3_SCRATCH_BYTES(k_h, wp) (16 * (size_t)(k_h) * (size_t)(wp))

MLK_INLINE int mlk_dw3_eligible(const mlk_depthwise_conv2d_params *p)
{
    return p->scratch != NULL && p->depth_mult == 1 && p->k_w == 3 && p->dil_w == 1 &&
           p->dil_h == 1 && (p->stride_w == 1 || p->stride_w == 2) && p->in_c % 4 == 0 &&
           p->k_h >= 1 && p->k_h <= MLK_DW3_MAX_KH;
}

/* Halfword packs, one PKHBT / PKHTB each (GCC writes the C forms as two or three
 * instructions): (a.lo, b.lo), (a.hi, b.hi) and (a.lo, b.hi), low lane first. */
MLK_HOT int32_t mlk_pack_lo(int32_t a, int32_t b)
{
#if defined(__GNUC__)
    int32_t r;
    __asm__("pkhbt %0, %1, %2, lsl #16" : "=r"(r) : "r"(a), "r"(b));
    return r;
#else
    return (int32_t)(((uint32_t)a & 0xFFFFu) | ((uint32_t)b << 16));
#endif
}

MLK_HOT int32_t mlk_pack_hi(int32_t a, int32_t b)
{
#if defined(__GNUC__)
    int32_t r;
    __asm__("pkhtb %0, %1, %2, asr #16" : "=r"(r) : "r"(b), "r"(a));
    return r;
#else
    return (int32_t)(((uint32_t)a >> 16) | ((uint32_t)b & 0xFFFF0000u));
#endif
}

MLK_HOT int32_t mlk_pack_lo_hi(int32_t a, int32_t b)
{
#if defined(__GNUC__)
    int32_t r;
    __asm__("pkhbt %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
    return r;
#else
    return (int32_t)(((uint32_t)a & 0xFFFFu) | ((uint32_t)b & 0xFFFF0000u));
#endif
}

/* Channels c0..c0+3 of input row iy into slots s and s + k_h of buf: channel j's column
 * pad_left + ix at buf[(2 j k_h + s) wp + pad_left + ix]; a row outside the image is x_zp.
 * Two pixels a step: their words widened (SXTB16) and repacked as one word per channel. */
MLK_HOT void mlk_dw3_fill(const mlk_depthwise_conv2d_params *p, const int8_t *xb,
                          int16_t *buf, int wp, int iy, int s, int c0)
{
    const int c_n = p->in_c, in_w = p->in_w;
    const ptrdiff_t dup = (ptrdiff_t)p->k_h * wp, ch = 2 * dup;
    int16_t *d = buf + (ptrdiff_t)s * wp + p->pad_left;
    int ix, j;
    if (iy < 0 || iy >= p->in_h) {
        const int32_t zz = mlk_pack_lo(p->x_zp, p->x_zp);
        for (ix = 0; ix + 1 < in_w; ix += 2) {
            for (j = 0; j < 4; ++j) {
                mlk_st32(d + j * ch + ix, zz);
                mlk_st32(d + j * ch + dup + ix, zz);
            }
        }
        if (ix < in_w) {
            for (j = 0; j < 4; ++j) {
                d[j * ch + ix] = (int16_t)p->x_zp;
                d[j * ch + dup + ix] = (int16_t)p->x_zp;
            }
        }
        return;
    }
    {
        const int8_t *xr = xb + (ptrdiff_t)iy * in_w * c_n + c0;
        for (ix = 0; ix + 1 < in_w; ix += 2, xr += 2 * c_n) {
            const int32_t v0 = mlk_ld32(xr), v1 = mlk_ld32(xr + c_n);
            const int32_t l0 = __sxtb16(v0), l1 = __sxtb16(v1);
            const int32_t h0 = mlk_sxtb16_ror8(v0), h1 = mlk_sxtb16_ror8(v1);
            const int32_t e0 = mlk_pack_lo(l0, l1), e1 = mlk_pack_lo(h0, h1);
            const int32_t e2 = mlk_pack_hi(l0, l1), e3 = mlk_pack_hi(h0, h1);
            int16_t *q = d + ix;
            mlk_st32(q, e0);
            mlk_st32(q + dup, e0);
            mlk_st32(q + ch, e1);
            mlk_st32(q + ch + dup, e1);
            mlk_st32(q + 2 * ch, e2);
            mlk_st32(q + 2 * ch + dup, e2);
            mlk_st32(q + 3 * ch, e3);
            mlk_st32(q + 3 * ch + dup, e3);
        }
        if (ix < in_w) {
            for (j = 0; j < 4; ++j) {
                d[j * ch + ix] = xr[j];
                d[j * ch + dup + ix] = xr[j];
            }
        }
    }
}

/* Words of a channel's record (mlk_dsp_depthwise3_i8 builds four on the stack): the bias
 * twice (the two accumulators' start), the requantization constants [m2, half, r] (mlk_rq;
 * unused when the renderer wrote none), then per filter row ky the weight words
 * (w[ky][0], w[ky][1]) and (w[ky][2], 0). */
#define MLK_DW3_RQ 2
#define MLK_DW3_W 6
#define MLK_DW3_RECORD (MLK_DW3_W + 2 * MLK_DW3_MAX_KH)

#if defined(__GNUC__)
/* A 32-bit word read through any pointer (an asm memory operand; unaligned is allowed). */
typedef uint32_t mlk_dw3_word __attribute__((may_alias, aligned(1)));
typedef int32_t mlk_dw3_record[MLK_DW3_RECORD];
typedef int16_t mlk_dw3_quad[6];   /* the columns four pixels read at stride 1 */
typedef int16_t mlk_dw3_quad2[10]; /* and at stride 2 */
#endif

/* The record's address, opaque to GCC in each pixel step, so its words are loaded where
 * they are used instead of hoisted out of the pixel loop and spilled. */
MLK_HOT const int32_t *mlk_dw3_opaque(const int32_t *rec)
{
#if defined(__GNUC__)
    __asm__ volatile("" : "+r"(rec));
#endif
    return rec;
}

/* One window row of two neighbouring pixels: the row's words at qr (xa = (x0, x1),
 * xb = (x2, x3), at stride 2 also xc = (x4, x5)), the weight words rec[i], rec[i + 1]. One
 * asm block, so GCC neither hoists the pixel-invariant loads nor spills the halves it
 * packs. */
MLK_HOT void mlk_dw3_taps(const int16_t *qr, const int32_t *rec, int i, int stride,
                          int32_t *a0, int32_t *a1)
{
#if defined(__GNUC__)
    int32_t xa, xb, xc, w01, w2;
    if (stride == 1) {
        __asm__("ldr %[xa], %[m0]\n\t"
                "ldr %[xb], %[m1]\n\t"
                "ldrd %[w01], %[w2], [%[wr], %[off]]\n\t"
                "smlad %[a0], %[xa], %[w01], %[a0]\n\t"
                "smlabb %[a0], %[xb], %[w2], %[a0]\n\t"
                "pkhbt %[xa], %[xb], %[xa]\n\t"
                "smladx %[a1], %[xa], %[w01], %[a1]\n\t"
                "smlatb %[a1], %[xb], %[w2], %[a1]"
                : [a0] "+r"(*a0), [a1] "+r"(*a1), [xa] "=&r"(xa), [xb] "=&r"(xb),
                  [w01] "=&r"(w01), [w2] "=&r"(w2)
                : [m0] "m"(*(const mlk_dw3_word *)qr), [m1] "m"(*(const mlk_dw3_word *)(qr + 2)),
                  [wr] "r"(rec), [off] "I"(4 * i), "m"(*(const mlk_dw3_record *)rec));
        return;
    }
    __asm__("ldr %[xa], %[m0]\n\t"
            "ldr %[xb], %[m1]\n\t"
            "ldr %[xc], %[m2]\n\t"
            "ldrd %[w01], %[w2], [%[wr], %[off]]\n\t"
            "smlad %[a0], %[xa], %[w01], %[a0]\n\t"
            "smlabb %[a0], %[xb], %[w2], %[a0]\n\t"
            "smlad %[a1], %[xb], %[w01], %[a1]\n\t"
            "smlabb %[a1], %[xc], %[w2], %[a1]"
            : [a0] "+r"(*a0), [a1] "+r"(*a1), [xa] "=&r"(xa), [xb] "=&r"(xb), [xc] "=&r"(xc),
              [w01] "=&r"(w01), [w2] "=&r"(w2)
            : [m0] "m"(*(const mlk_dw3_word *)qr), [m1] "m"(*(const mlk_dw3_word *)(qr + 2)),
              [m2] "m"(*(const mlk_dw3_word *)(qr + 4)), [wr] "r"(rec), [off] "I"(4 * i),
              "m"(*(const mlk_dw3_record *)rec));
#else
    const int32_t xa = mlk_ld32(qr), xb = mlk_ld32(qr + 2), w01 = rec[i], w2 = rec[i + 1];
    *a0 = __smlabb(xb, w2, __smlad(xa, w01, *a0));
    if (stride == 1) {
        *a1 = __smlatb(xb, w2, __smladx(mlk_pack_lo_hi(xb, xa), w01, *a1));
    } else {
        *a1 = __smlabb(mlk_ld32(qr + 4), w2, __smlad(xb, w01, *a1));
    }
#endif
}

/* One window row of four neighbouring pixels (mlk_dw3_taps, twice as wide): at stride 1 the
 * words (x0, x1), (x2, x3), (x4, x5) give all four pixels (the odd ones through PKHBT and
 * SMLADX), at stride 2 the five words (x0, x1) .. (x8, x9), read as they are used. One
 * LDRD of the weight words per row serves four pixels: 14 instructions for 12 MACs. */
MLK_HOT void mlk_dw3_taps4(const int16_t *qr, const int32_t *rec, int i, int stride,
                           int32_t *a)
{
#if defined(__GNUC__)
    int32_t xa, xb, xc, w01, w2;
    if (stride == 1) {
        __asm__("ldr %[xa], [%[q]]\n\t"
                "ldr %[xb], [%[q], #4]\n\t"
                "ldrd %[w01], %[w2], [%[wr], %[off]]\n\t"
                "ldr %[xc], [%[q], #8]\n\t"
                "smlad %[a0], %[xa], %[w01], %[a0]\n\t"
                "smlabb %[a0], %[xb], %[w2], %[a0]\n\t"
                "pkhbt %[xa], %[xb], %[xa]\n\t"
                "smladx %[a1], %[xa], %[w01], %[a1]\n\t"
                "smlatb %[a1], %[xb], %[w2], %[a1]\n\t"
                "smlad %[a2], %[xb], %[w01], %[a2]\n\t"
                "smlabb %[a2], %[xc], %[w2], %[a2]\n\t"
                "pkhbt %[xb], %[xc], %[xb]\n\t"
                "smladx %[a3], %[xb], %[w01], %[a3]\n\t"
                "smlatb %[a3], %[xc], %[w2], %[a3]"
                : [a0] "+r"(a[0]), [a1] "+r"(a[1]), [a2] "+r"(a[2]), [a3] "+r"(a[3]),
                  [xa] "=&r"(xa), [xb] "=&r"(xb), [xc] "=&r"(xc), [w01] "=&r"(w01),
                  [w2] "=&r"(w2)
                : [q] "r"(qr), [wr] "r"(rec), [off] "I"(4 * i),
                  "m"(*(const mlk_dw3_quad *)qr), "m"(*(const mlk_dw3_record *)rec));
        return;
    }
    __asm__("ldr %[xa], [%[q]]\n\t"
            "ldr %[xb], [%[q], #4]\n\t"
            "ldrd %[w01], %[w2], [%[wr], %[off]]\n\t"
            "smlad %[a0], %[xa], %[w01], %[a0]\n\t"
            "smlabb %[a0], %[xb], %[w2], %[a0]\n\t"
            "ldr %[xa], [%[q], #8]\n\t"
            "smlad %[a1], %[xb], %[w01], %[a1]\n\t"
            "smlabb %[a1], %[xa], %[w2], %[a1]\n\t"
            "ldr %[xb], [%[q], #12]\n\t"
            "smlad %[a2], %[xa], %[w01], %[a2]\n\t"
            "smlabb %[a2], %[xb], %[w2], %[a2]\n\t"
            "ldr %[xa], [%[q], #16]\n\t"
            "smlad %[a3], %[xb], %[w01], %[a3]\n\t"
            "smlabb %[a3], %[xa], %[w2], %[a3]"
            : [a0] "+r"(a[0]), [a1] "+r"(a[1]), [a2] "+r"(a[2]), [a3] "+r"(a[3]),
              [xa] "=&r"(xa), [xb] "=&r"(xb), [w01] "=&r"(w01), [w2] "=&r"(w2)
            : [q] "r"(qr), [wr] "r"(rec), [off] "I"(4 * i),
              "m"(*(const mlk_dw3_quad2 *)qr), "m"(*(const mlk_dw3_record *)rec));
    (void)xc;
#else
    mlk_dw3_taps(qr, rec, i, stride, &a[0], &a[1]);
    mlk_dw3_taps(qr + 2 * stride, rec, i, stride, &a[2], &a[3]);
#endif
}

/* Two pixels' clamp(y_zp + MBQM(a)) of channel c to y0, y1: with the record's SMMLAR
 * constants when the renderer wrote them (read once, one LDRD and one LDR, for both
 * pixels; mlk_rq_out), else the general MBQM. */
MLK_HOT void mlk_dw3_out2(const mlk_depthwise_conv2d_params *p, const int32_t *rec, int c,
                          int32_t a0, int32_t a1, int8_t *y0, int8_t *y1)
{
    if (p->rq != NULL) {
        int32_t q[3];
#if defined(__GNUC__)
        __asm__("ldrd %0, %1, [%3, %4]\n\t"
                "ldr %2, [%3, %5]"
                : "=&r"(q[0]), "=&r"(q[1]), "=r"(q[2])
                : "r"(rec), "I"(4 * MLK_DW3_RQ), "I"(4 * MLK_DW3_RQ + 8),
                  "m"(*(const mlk_dw3_record *)rec));
#else
        q[0] = rec[MLK_DW3_RQ];
        q[1] = rec[MLK_DW3_RQ + 1];
        q[2] = rec[MLK_DW3_RQ + 2];
#endif
        *y0 = mlk_rq_out(a0, q, p->act_min, p->act_max);
        *y1 = mlk_rq_out(a1, q, p->act_min, p->act_max);
        return;
    }
    mlk_out2_i8(a0, a1, p->mult[c], p->shift[c], p->y_zp, p->act_min, p->act_max, y0, y1);
}

/* Four pixels' outputs of channel c, the outputs c_n bytes apart from y: the record's
 * SMMLAR constants read once for all four, else the general MBQM per pair. */
MLK_HOT void mlk_dw3_out4(const mlk_depthwise_conv2d_params *p, const int32_t *rec, int c,
                          const int32_t *a, int8_t *y)
{
    const ptrdiff_t c_n = p->in_c;
    if (p->rq != NULL) {
        int32_t q[3];
#if defined(__GNUC__)
        __asm__("ldrd %0, %1, [%3, %4]\n\t"
                "ldr %2, [%3, %5]"
                : "=&r"(q[0]), "=&r"(q[1]), "=r"(q[2])
                : "r"(rec), "I"(4 * MLK_DW3_RQ), "I"(4 * MLK_DW3_RQ + 8),
                  "m"(*(const mlk_dw3_record *)rec));
#else
        q[0] = rec[MLK_DW3_RQ];
        q[1] = rec[MLK_DW3_RQ + 1];
        q[2] = rec[MLK_DW3_RQ + 2];
#endif
        y[0] = mlk_rq_out(a[0], q, p->act_min, p->act_max);
        y[c_n] = mlk_rq_out(a[1], q, p->act_min, p->act_max);
        y[2 * c_n] = mlk_rq_out(a[2], q, p->act_min, p->act_max);
        y[3 * c_n] = mlk_rq_out(a[3], q, p->act_min, p->act_max);
        return;
    }
    mlk_out2_i8(a[0], a[1], p->mult[c], p->shift[c], p->y_zp, p->act_min, p->act_max, y,
                y + c_n);
    mlk_out2_i8(a[2], a[3], p->mult[c], p->shift[c], p->y_zp, p->act_min, p->act_max,
                y + 2 * c_n, y + 3 * c_n);
}

/* One output row of channel c: window row ky at r + ky wp (int16 columns from the window of
 * pixel 0), the channel's record rec; outputs to yc[ox c_n]. */
MLK_HOT void mlk_dw3_row(const mlk_depthwise_conv2d_params *p, const int16_t *r, int wp,
                         const int32_t *rec, int c, int8_t *yc)
{
    const int c_n = p->in_c, out_w = p->out_w, s = p->stride_w;
    int ox, ky;
    for (ox = 0; ox + 3 < out_w; ox += 4) {
        const int16_t *q = r + (ptrdiff_t)ox * s;
        const int32_t *wr = mlk_dw3_opaque(rec);
        int32_t a[4];
        a[0] = wr[0];
        a[1] = wr[1];
        a[2] = wr[0];
        a[3] = wr[1];
        MLK_UNROLL
        for (ky = 0; ky < p->k_h; ++ky) {
            mlk_dw3_taps4(q + (ptrdiff_t)ky * wp, wr, MLK_DW3_W + 2 * ky, s, a);
        }
        mlk_dw3_out4(p, wr, c, a, yc + (ptrdiff_t)ox * c_n);
    }
    for (; ox + 1 < out_w; ox += 2) {
        const int16_t *q = r + (ptrdiff_t)ox * s;
        const int32_t *wr = mlk_dw3_opaque(rec);
        int32_t a0 = wr[0], a1 = wr[1];
        MLK_UNROLL
        for (ky = 0; ky < p->k_h; ++ky) {
            mlk_dw3_taps(q + (ptrdiff_t)ky * wp, wr, MLK_DW3_W + 2 * ky, s, &a0, &a1);
        }
        mlk_dw3_out2(p, wr, c, a0, a1, yc + (ptrdiff_t)ox * c_n, yc + (ptrdiff_t)(ox + 1) * c_n);
    }
    if (ox < out_w) {
        const int16_t *q = r + (ptrdiff_t)ox * s;
        int32_t a0 = rec[0];
        MLK_UNROLL
        for (ky = 0; ky < p->k_h; ++ky) {
            a0 = __smlad(mlk_ld32(q + (ptrdiff_t)ky * wp), rec[MLK_DW3_W + 2 * ky], a0);
            a0 = __smlabb(mlk_ld32(q + (ptrdiff_t)ky * wp + 2), rec[MLK_DW3_W + 2 * ky + 1], a0);
        }
        yc[(ptrdiff_t)ox * c_n] = p->rq != NULL
                                      ? mlk_rq_out(a0, rec + MLK_DW3_RQ, p->act_min, p->act_max)
                                      : mlk_out_i8(mlk_mbqm_pos(a0, p->mult[c], p->shift[c]),
                                                   p->y_zp, p->act_min, p->act_max);
    }
}

MLK_HOT void mlk_dsp_depthwise3_i8(const mlk_depthwise_conv2d_params *p, const int8_t *x,
                                   int8_t *y)
{
    const int c_n = p->in_c, k_h = p->k_h, out_w = p->out_w;
    const int wp = mlk_dw3_width(out_w, p->stride_w, p->pad_left, p->in_w);
    const ptrdiff_t ch = 2 * (ptrdiff_t)k_h * wp;
    int16_t *buf = p->scratch;
    int32_t rec[4][MLK_DW3_RECORD];
    ptrdiff_t i;
    int b, c0, oy, j, ky;
    for (i = 0; i < 4 * ch; ++i) { /* the padding columns; rows overwrite the rest */
        buf[i] = (int16_t)p->x_zp;
    }
    for (b = 0; b < p->batches; ++b) {
        const int8_t *xb = x + (size_t)b * p->in_h * p->in_w * c_n;
        int8_t *yb = y + (size_t)b * p->out_h * out_w * c_n;
        for (c0 = 0; c0 < c_n; c0 += 4) {
            int next = -p->pad_top; /* the next input row to transpose */
            for (j = 0; j < 4; ++j) {
                const int c = c0 + j;
                rec[j][0] = p->bias_folded[c];
                rec[j][1] = p->bias_folded[c];
                if (p->rq != NULL) {
                    rec[j][MLK_DW3_RQ] = p->rq[3 * c];
                    rec[j][MLK_DW3_RQ + 1] = p->rq[3 * c + 1];
                    rec[j][MLK_DW3_RQ + 2] = p->rq[3 * c + 2];
                }
                for (ky = 0; ky < k_h; ++ky) {
                    const int8_t *w = p->w + (size_t)ky * 3 * c_n + c;
                    rec[j][MLK_DW3_W + 2 * ky] = mlk_pack_lo(w[0], w[c_n]);
                    rec[j][MLK_DW3_W + 2 * ky + 1] = (int32_t)(uint16_t)w[2 * c_n];
                }
            }
            for (oy = 0; oy < p->out_h; ++oy) {
                const int iy0 = oy * p->stride_h - p->pad_top;
                const int16_t *rows;
                int iy = iy0 > next ? iy0 : next;
                for (; iy < iy0 + k_h; ++iy) {
                    mlk_dw3_fill(p, xb, buf, wp, iy, (iy + p->pad_top) % k_h, c0);
                }
                next = iy;
                rows = buf + (ptrdiff_t)((iy0 + p->pad_top) % k_h) * wp;
                for (j = 0; j < 4; ++j) {
                    mlk_dw3_row(p, rows + j * ch, wp, rec[j], c0 + j,
                                yb + (size_t)oy * out_w * c_n + c0 + j);
                }
            }
        }
    }
}

#endif /* MLK_DSP */

#endif /* MICROLITH_KERNELS_DSP_DW3_H */
