/* microlith_kernels_elementwise.h -- broadcasting element-wise ops (see microlith_kernels.h). */
#ifndef MICROLITH_KERNELS_ELEMENTWISE_H
#define MICROLITH_KERNELS_ELEMENTWISE_H

#include "microlith_kernels_common.h"

/* Parameter records, written by the C backend as static const structs. */
typedef struct {
    int32_t sign;
    int n0;
    int n1;
    int n2;
    int n3;
    int as0;
    int as1;
    int as2;
    int as3;
    int bs0;
    int bs1;
    int bs2;
    int bs3;
    int32_t a_zp;
    int32_t a_mult;
    int32_t a_shift;
    int32_t b_zp;
    int32_t b_mult;
    int32_t b_shift;
    int32_t y_mult;
    int32_t y_shift;
    int32_t y_zp;
    int32_t act_min;
    int32_t act_max;
} mlk_add_sub_params;

typedef struct {
    int n0;
    int n1;
    int n2;
    int n3;
    int as0;
    int as1;
    int as2;
    int as3;
    int bs0;
    int bs1;
    int bs2;
    int bs3;
    int32_t a_zp;
    int32_t b_zp;
    int32_t mult;
    int32_t shift;
    int32_t y_zp;
    int32_t act_min;
    int32_t act_max;
} mlk_mul_params;

typedef struct {
    int is_max;
    int n0;
    int n1;
    int n2;
    int n3;
    int as0;
    int as1;
    int as2;
    int as3;
    int bs0;
    int bs1;
    int bs2;
    int bs3;
} mlk_extremum_params;

/* ======================================================= element-wise (broadcasting) */

/* Binary kernels iterate the output as [n0][n1][n2][n3] (row-major, contiguous); the
 * operands are read at i0*as0 + i1*as1 + i2*as2 + i3*as3 (stride 0 = broadcast). */

/* ADD / SUB: a' = MBQM((a - a_zp) * 2^20, a_mult, a_shift), b' likewise,
 * y = clamp(y_zp + MBQM(a' +- b', y_mult, y_shift), act_min, act_max). */
MLK_HOT int8_t mlk_add_sub_elem(int32_t a, int32_t b, int32_t sign, int32_t a_zp,
                                   int32_t a_mult, int32_t a_shift, int32_t b_zp,
                                   int32_t b_mult, int32_t b_shift, int32_t y_mult,
                                   int32_t y_shift, int32_t y_zp, int32_t act_min,
                                   int32_t act_max)
{
    const int32_t a1 = mlk_mbqm((a - a_zp) * (1 << 20), a_mult, a_shift);
    const int32_t b1 = mlk_mbqm((b - b_zp) * (1 << 20), b_mult, b_shift);
    const int32_t raw = sign > 0 ? mlk_wrap_add(a1, b1) : mlk_wrap_sub(a1, b1);
    return mlk_out_i8(mlk_mbqm(raw, y_mult, y_shift), y_zp, act_min, act_max);
}

MLK_INLINE void mlk_add_sub_i8_core(const int8_t *a, const int8_t *b, int8_t *y, int32_t sign,
                               int n0, int n1, int n2, int n3, int as0, int as1, int as2,
                               int as3, int bs0, int bs1, int bs2, int bs3, int32_t a_zp,
                               int32_t a_mult, int32_t a_shift, int32_t b_zp, int32_t b_mult,
                               int32_t b_shift, int32_t y_mult, int32_t y_shift, int32_t y_zp,
                               int32_t act_min, int32_t act_max)
{
    int i0, i1, i2, i3;
    for (i0 = 0; i0 < n0; ++i0) {
        for (i1 = 0; i1 < n1; ++i1) {
            for (i2 = 0; i2 < n2; ++i2) {
                const int8_t *ar = a + (size_t)i0 * as0 + (size_t)i1 * as1 + (size_t)i2 * as2;
                const int8_t *br = b + (size_t)i0 * bs0 + (size_t)i1 * bs1 + (size_t)i2 * bs2;
                for (i3 = 0; i3 < n3; ++i3) {
                    *y++ = mlk_add_sub_elem(ar[(size_t)i3 * as3], br[(size_t)i3 * bs3], sign,
                                            a_zp, a_mult, a_shift, b_zp, b_mult, b_shift,
                                            y_mult, y_shift, y_zp, act_min, act_max);
                }
            }
        }
    }
}

/* mlk_add_sub_i8: the parameter record *p (a static const struct written by the C backend)
 * unpacked into the arguments of mlk_add_sub_i8_core. */
MLK_HOT void mlk_add_sub_i8_portable(const mlk_add_sub_params *p, const int8_t *a,
                                     const int8_t *b, int8_t *y)
{
    mlk_add_sub_i8_core(a, b, y, p->sign, p->n0, p->n1, p->n2, p->n3, p->as0, p->as1, p->as2,
                        p->as3, p->bs0, p->bs1, p->bs2, p->bs3, p->a_zp, p->a_mult, p->a_shift,
                        p->b_zp, p->b_mult, p->b_shift, p->y_mult, p->y_shift, p->y_zp,
                        p->act_min, p->act_max);
}

/* MUL: y = clamp(y_zp + MBQM((a - a_zp)(b - b_zp), mult, shift), act_min, act_max). */
MLK_INLINE void mlk_mul_i8_core(const int8_t *a, const int8_t *b, int8_t *y, int n0, int n1, int n2,
                           int n3, int as0, int as1, int as2, int as3, int bs0, int bs1, int bs2,
                           int bs3, int32_t a_zp, int32_t b_zp, int32_t mult, int32_t shift,
                           int32_t y_zp, int32_t act_min, int32_t act_max)
{
    int i0, i1, i2, i3;
    for (i0 = 0; i0 < n0; ++i0) {
        for (i1 = 0; i1 < n1; ++i1) {
            for (i2 = 0; i2 < n2; ++i2) {
                const int8_t *ar = a + (size_t)i0 * as0 + (size_t)i1 * as1 + (size_t)i2 * as2;
                const int8_t *br = b + (size_t)i0 * bs0 + (size_t)i1 * bs1 + (size_t)i2 * bs2;
                for (i3 = 0; i3 < n3; ++i3) {
                    const int32_t p = ((int32_t)ar[(size_t)i3 * as3] - a_zp) *
                                      ((int32_t)br[(size_t)i3 * bs3] - b_zp);
                    *y++ = mlk_out_i8(mlk_mbqm(p, mult, shift), y_zp, act_min, act_max);
                }
            }
        }
    }
}

/* mlk_mul_i8: the parameter record *p (a static const struct written by the C backend)
 * unpacked into the arguments of mlk_mul_i8_core. */
MLK_HOT void mlk_mul_i8_portable(const mlk_mul_params *p, const int8_t *a, const int8_t *b,
                                 int8_t *y)
{
    mlk_mul_i8_core(a, b, y, p->n0, p->n1, p->n2, p->n3, p->as0, p->as1, p->as2, p->as3, p->bs0,
                    p->bs1, p->bs2, p->bs3, p->a_zp, p->b_zp, p->mult, p->shift, p->y_zp,
                    p->act_min, p->act_max);
}

/* The Cortex-M DSP forms of ADD / SUB and MUL (MLK_DSP only). */
#include "microlith_kernels_dsp_elementwise.h"

/* The entry points: on DSP cores one out-of-line kernel (microlith_kernels_dsp_elementwise.h,
 * which falls back to the portable loop itself), elsewhere the portable loop inline. */
MLK_HOT void mlk_add_sub_i8(const mlk_add_sub_params *p, const int8_t *a, const int8_t *b, int8_t *y)
{
#if MLK_DSP_ELEMENTWISE
    mlk_dsp_add_sub_i8(p, a, b, y);
#else
    mlk_add_sub_i8_portable(p, a, b, y);
#endif
}

MLK_HOT void mlk_mul_i8(const mlk_mul_params *p, const int8_t *a, const int8_t *b, int8_t *y)
{
#if MLK_DSP_ELEMENTWISE
    mlk_dsp_mul_i8(p, a, b, y);
#else
    mlk_mul_i8_portable(p, a, b, y);
#endif
}

/* MAXIMUM (is_max = 1) / MINIMUM (is_max = 0): y = max(a, b) / min(a, b), no rescaling. */
MLK_INLINE void mlk_extremum_i8_core(const int8_t *a, const int8_t *b, int8_t *y, int is_max, int n0,
                                int n1, int n2, int n3, int as0, int as1, int as2, int as3,
                                int bs0, int bs1, int bs2, int bs3)
{
    int i0, i1, i2, i3;
    for (i0 = 0; i0 < n0; ++i0) {
        for (i1 = 0; i1 < n1; ++i1) {
            for (i2 = 0; i2 < n2; ++i2) {
                const int8_t *ar = a + (size_t)i0 * as0 + (size_t)i1 * as1 + (size_t)i2 * as2;
                const int8_t *br = b + (size_t)i0 * bs0 + (size_t)i1 * bs1 + (size_t)i2 * bs2;
                for (i3 = 0; i3 < n3; ++i3) {
                    const int8_t va = ar[(size_t)i3 * as3];
                    const int8_t vb = br[(size_t)i3 * bs3];
                    *y++ = is_max ? (va > vb ? va : vb) : (va < vb ? va : vb);
                }
            }
        }
    }
}

/* mlk_extremum_i8: the parameter record *p (a static const struct written by the C backend)
 * unpacked into the arguments of mlk_extremum_i8_core. */
MLK_HOT void mlk_extremum_i8(const mlk_extremum_params *p, const int8_t *a, const int8_t *b, int8_t *y)
{
    mlk_extremum_i8_core(a, b, y, p->is_max, p->n0, p->n1, p->n2, p->n3, p->as0, p->as1, p->as2,
                         p->as3, p->bs0, p->bs1, p->bs2, p->bs3);
}

typedef struct {
    int n0;
    int n1;
    int n2;
    int n3;
    int as0;
    int as1;
    int as2;
    int as3;
    int bs0;
    int bs1;
    int bs2;
    int bs3;
    int32_t x_zp;
    int32_t alpha_zp;
    int32_t pos_mult;
    int32_t pos_shift;
    int32_t neg_mult;
    int32_t neg_shift;
    int32_t y_zp;
} mlk_prelu_params;

/* PRELU: d = x - x_zp; y = clamp(y_zp + (d >= 0 ? MBQM(d, pos_mult, pos_shift)
 * : MBQM(d * (alpha - alpha_zp), neg_mult, neg_shift))), alpha broadcast as operand b
 * (|d * (alpha - alpha_zp)| <= 255 * 255: no overflow). */
MLK_INLINE void mlk_prelu_i8_core(const int8_t *x, const int8_t *alpha, int8_t *y, int n0,
                                  int n1, int n2, int n3, int as0, int as1, int as2, int as3,
                                  int bs0, int bs1, int bs2, int bs3, int32_t x_zp,
                                  int32_t alpha_zp, int32_t pos_mult, int32_t pos_shift,
                                  int32_t neg_mult, int32_t neg_shift, int32_t y_zp)
{
    int i0, i1, i2, i3;
    for (i0 = 0; i0 < n0; ++i0) {
        for (i1 = 0; i1 < n1; ++i1) {
            for (i2 = 0; i2 < n2; ++i2) {
                const int8_t *xr = x + (size_t)i0 * as0 + (size_t)i1 * as1 + (size_t)i2 * as2;
                const int8_t *ar =
                    alpha + (size_t)i0 * bs0 + (size_t)i1 * bs1 + (size_t)i2 * bs2;
                for (i3 = 0; i3 < n3; ++i3) {
                    const int32_t d = (int32_t)xr[(size_t)i3 * as3] - x_zp;
                    const int32_t v = d >= 0 ? mlk_mbqm(d, pos_mult, pos_shift)
                        : mlk_mbqm(d * ((int32_t)ar[(size_t)i3 * bs3] - alpha_zp), neg_mult,
                                   neg_shift);
                    *y++ = mlk_out_i8(v, y_zp, -128, 127);
                }
            }
        }
    }
}

/* mlk_prelu_i8: the parameter record *p unpacked into the arguments of mlk_prelu_i8_core. */
MLK_HOT void mlk_prelu_i8(const mlk_prelu_params *p, const int8_t *x, const int8_t *alpha,
                          int8_t *y)
{
    mlk_prelu_i8_core(x, alpha, y, p->n0, p->n1, p->n2, p->n3, p->as0, p->as1, p->as2, p->as3,
                      p->bs0, p->bs1, p->bs2, p->bs3, p->x_zp, p->alpha_zp, p->pos_mult,
                      p->pos_shift, p->neg_mult, p->neg_shift, p->y_zp);
}

#endif /* MICROLITH_KERNELS_ELEMENTWISE_H */
