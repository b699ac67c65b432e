/* microlith_kernels_dsp_elementwise.h -- int8 ADD / SUB and MUL for Cortex-M cores with the
 * DSP extension (see microlith_kernels_dsp.h: compiled only where MLK_DSP is 1;
 * microlith_kernels_elementwise.h calls them from the portable kernels).
 *
 * The work per element of these kernels is the requantization, not the arithmetic: two or
 * three MBQM per ADD element, one per MUL element. Here MBQM is mlk_mbqm_split (one 64-bit
 * multiply-accumulate, SMLAL, and a shift: exact for multipliers m >= 0, which is every
 * multiplier QuantizeMultiplier gives, proven equal to mlk_mbqm in tests/mcu), with the
 * per-tensor shift split (left, right, mask) computed once per layer instead of per
 * element. A layer with a negative multiplier (never prepared by microlith) runs the
 * portable loop (mlk_*_i8_portable: this header is included by microlith_kernels_elementwise.h
 * after them). Same integers, same bytes. Measured on the M4 (qemu, -O2): see
 * docs/cortex-m.md.
 */
#ifndef MICROLITH_KERNELS_DSP_ELEMENTWISE_H
#define MICROLITH_KERNELS_DSP_ELEMENTWISE_H

#include "microlith_kernels_dsp.h"

#if MLK_DSP && !defined(MLK_PORTABLE_ELEMENTWISE)
#define MLK_DSP_ELEMENTWISE 1

/* MBQM(x, m, s) for m >= 0 as mlk_mbqm_split's three shift parameters. */
typedef struct {
    int32_t m;
    int left;
    int right;
    int32_t mask;
} mlk_dsp_rq;

MLK_HOT mlk_dsp_rq mlk_dsp_rq_make(int32_t m, int s)
{
    mlk_dsp_rq r;
    r.m = m;
    r.left = s & ~(s >> 31);
    r.right = r.left - s;
    r.mask = (int32_t)(((uint32_t)1 << r.right) - 1u);
    return r;
}

MLK_HOT int32_t mlk_dsp_rq_apply(int32_t x, const mlk_dsp_rq *r)
{
    return mlk_mbqm_split(x, r->m, r->left, r->right, r->mask);
}

/* Always inlined, so each layer's copy is specialised on its constant record (out of line,
 * one generic copy for every layer, resnet8 took 1,887,870 instructions instead of
 * 1,739,053; the portable kernel 1,824,502). The record's fields are read into locals
 * once: the int8 stores could alias it. */
MLK_HOT void mlk_dsp_add_sub_i8(const mlk_add_sub_params *p, const int8_t *a,
                                     const int8_t *b, int8_t *y)
{
    const int n0 = p->n0, n1 = p->n1, n2 = p->n2, n3 = p->n3;
    const int as0 = p->as0, as1 = p->as1, as2 = p->as2, as3 = p->as3;
    const int bs0 = p->bs0, bs1 = p->bs1, bs2 = p->bs2, bs3 = p->bs3;
    const int32_t a_zp = p->a_zp, b_zp = p->b_zp, y_zp = p->y_zp, sign = p->sign;
    const int32_t lo = p->act_min, hi = p->act_max;
    int i0, i1, i2, i3;
    mlk_dsp_rq ra, rb, ry;
    if (p->a_mult < 0 || p->b_mult < 0 || p->y_mult < 0) {
        mlk_add_sub_i8_portable(p, a, b, y);
        return;
    }
    ra = mlk_dsp_rq_make(p->a_mult, p->a_shift);
    rb = mlk_dsp_rq_make(p->b_mult, p->b_shift);
    ry = mlk_dsp_rq_make(p->y_mult, p->y_shift);
    for (i0 = 0; i0 < n0; ++i0) {
        for (i1 = 0; i1 < n1; ++i1) {
            for (i2 = 0; i2 < n2; ++i2) {
                const int8_t *ar = a + (size_t)i0 * as0 + (size_t)i1 * as1 + (size_t)i2 * as2;
                const int8_t *br = b + (size_t)i0 * bs0 + (size_t)i1 * bs1 + (size_t)i2 * bs2;
                for (i3 = 0; i3 < n3; ++i3) {
                    const int32_t a1 = mlk_dsp_rq_apply(
                        ((int32_t)ar[(size_t)i3 * as3] - a_zp) * (1 << 20), &ra);
                    const int32_t b1 = mlk_dsp_rq_apply(
                        ((int32_t)br[(size_t)i3 * bs3] - b_zp) * (1 << 20), &rb);
                    const int32_t raw = sign > 0 ? mlk_wrap_add(a1, b1) : mlk_wrap_sub(a1, b1);
                    *y++ = mlk_out_i8(mlk_dsp_rq_apply(raw, &ry), y_zp, lo, hi);
                }
            }
        }
    }
}

MLK_HOT void mlk_dsp_mul_i8(const mlk_mul_params *p, const int8_t *a, const int8_t *b,
                                 int8_t *y)
{
    const int n0 = p->n0, n1 = p->n1, n2 = p->n2, n3 = p->n3;
    const int as0 = p->as0, as1 = p->as1, as2 = p->as2, as3 = p->as3;
    const int bs0 = p->bs0, bs1 = p->bs1, bs2 = p->bs2, bs3 = p->bs3;
    const int32_t a_zp = p->a_zp, b_zp = p->b_zp, y_zp = p->y_zp;
    const int32_t lo = p->act_min, hi = p->act_max;
    int i0, i1, i2, i3;
    mlk_dsp_rq r;
    if (p->mult < 0) {
        mlk_mul_i8_portable(p, a, b, y);
        return;
    }
    r = mlk_dsp_rq_make(p->mult, p->shift);
    for (i0 = 0; i0 < n0; ++i0) {
        for (i1 = 0; i1 < n1; ++i1) {
            for (i2 = 0; i2 < n2; ++i2) {
                const int8_t *ar = a + (size_t)i0 * as0 + (size_t)i1 * as1 + (size_t)i2 * as2;
                const int8_t *br = b + (size_t)i0 * bs0 + (size_t)i1 * bs1 + (size_t)i2 * bs2;
                for (i3 = 0; i3 < n3; ++i3) {
                    const int32_t prod = ((int32_t)ar[(size_t)i3 * as3] - a_zp) *
                                         ((int32_t)br[(size_t)i3 * bs3] - b_zp);
                    *y++ = mlk_out_i8(mlk_dsp_rq_apply(prod, &r), y_zp, lo, hi);
                }
            }
        }
    }
}

#else
#define MLK_DSP_ELEMENTWISE 0
#endif /* MLK_DSP */

#endif /* MICROLITH_KERNELS_DSP_ELEMENTWISE_H */
