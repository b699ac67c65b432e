/* microlith_kernels_activation.h -- activations, softmax and table lookups (see microlith_kernels.h). */
#ifndef MICROLITH_KERNELS_ACTIVATION_H
#define MICROLITH_KERNELS_ACTIVATION_H

#include "microlith_kernels_common.h"

/* Parameter records, written by the C backend as static const structs. */
typedef struct {
    int n;
    const int8_t *table;
} mlk_lut_params;

typedef struct {
    int n;
    int32_t lo;
    int32_t hi;
} mlk_clamp_params;

typedef struct {
    int n;
    int32_t x_zp;
    int32_t mult;
    int32_t shift;
    int32_t y_zp;
    int32_t lo;
    int32_t hi;
} mlk_relu_params;

typedef struct {
    int n;
    int32_t x_zp;
    int32_t id_mult;
    int32_t id_shift;
    int32_t alpha_mult;
    int32_t alpha_shift;
    int alpha_negative;
    int32_t y_zp;
} mlk_leaky_relu_params;

typedef struct {
    int n;
    int32_t x_zp;
    int32_t y_zp;
    int32_t out_m;
    int32_t out_exp;
    int32_t relu_m;
    int32_t relu_exp;
} mlk_hard_swish_params;

typedef struct {
    int n;
    int32_t x_zp;
    int32_t mult;
    int32_t shift;
    int32_t radius;
} mlk_sigmoid_params;

typedef struct {
    int rows;
    int depth;
    int32_t mult;
    int32_t left_shift;
    int32_t diff_min;
} mlk_softmax_params;

/* ===================================================================== activations */

/* y = table[x + 128]: any int8 -> int8 element-wise function, tabulated at compile time. */
MLK_INLINE void mlk_lut_i8_core(const int8_t *x, int8_t *y, int n, const int8_t *table)
{
    int i;
    for (i = 0; i < n; ++i) {
        y[i] = table[(int32_t)x[i] + 128];
    }
}

/* mlk_lut_i8: the parameter record *p (a static const struct written by the C backend)
 * unpacked into the arguments of mlk_lut_i8_core. */
MLK_HOT void mlk_lut_i8(const mlk_lut_params *p, const int8_t *x, int8_t *y)
{
    mlk_lut_i8_core(x, y, p->n, p->table);
}

/* clamp(x, lo, hi) (RELU6 of TFLite-Micro: lo = x_zp, hi = x_zp + round(6 / s_x)). */
MLK_INLINE void mlk_clamp_i8_core(const int8_t *x, int8_t *y, int n, int32_t lo, int32_t hi)
{
    int i;
    for (i = 0; i < n; ++i) {
        y[i] = (int8_t)mlk_clamp32(x[i], lo, hi);
    }
}

/* mlk_clamp_i8: the parameter record *p (a static const struct written by the C backend)
 * unpacked into the arguments of mlk_clamp_i8_core. */
MLK_HOT void mlk_clamp_i8(const mlk_clamp_params *p, const int8_t *x, int8_t *y)
{
    mlk_clamp_i8_core(x, y, p->n, p->lo, p->hi);
}

/* RELU (and requantization): y = clamp(y_zp + MBQM(x - x_zp, mult, shift), lo, hi). */
MLK_INLINE void mlk_relu_i8_core(const int8_t *x, int8_t *y, int n, int32_t x_zp, int32_t mult,
                            int32_t shift, int32_t y_zp, int32_t lo, int32_t hi)
{
    int i;
    for (i = 0; i < n; ++i) {
        y[i] = mlk_out_i8(mlk_mbqm((int32_t)x[i] - x_zp, mult, shift), y_zp, lo, hi);
    }
}

/* mlk_relu_i8: the parameter record *p (a static const struct written by the C backend)
 * unpacked into the arguments of mlk_relu_i8_core. */
MLK_HOT void mlk_relu_i8(const mlk_relu_params *p, const int8_t *x, int8_t *y)
{
    mlk_relu_i8_core(x, y, p->n, p->x_zp, p->mult, p->shift, p->y_zp, p->lo, p->hi);
}

/* LEAKY_RELU: d = x - x_zp; y = clamp(y_zp + (d >= 0 ? MBQM(d, id_mult, id_shift)
 * : +-MBQM(d, alpha_mult, alpha_shift))), negated when alpha < 0. */
MLK_INLINE void mlk_leaky_relu_i8_core(const int8_t *x, int8_t *y, int n, int32_t x_zp,
                                  int32_t id_mult, int32_t id_shift, int32_t alpha_mult,
                                  int32_t alpha_shift, int alpha_negative, int32_t y_zp)
{
    int i;
    for (i = 0; i < n; ++i) {
        const int32_t d = (int32_t)x[i] - x_zp;
        int64_t v;
        if (d >= 0) {
            v = mlk_mbqm(d, id_mult, id_shift);
        } else {
            v = mlk_mbqm(d, alpha_mult, alpha_shift);
            v = alpha_negative ? -v : v;
        }
        v += y_zp;
        y[i] = (int8_t)(v < -128 ? -128 : (v > 127 ? 127 : v));
    }
}

/* mlk_leaky_relu_i8: the parameter record *p (a static const struct written by the C backend)
 * unpacked into the arguments of mlk_leaky_relu_i8_core. */
MLK_HOT void mlk_leaky_relu_i8(const mlk_leaky_relu_params *p, const int8_t *x, int8_t *y)
{
    mlk_leaky_relu_i8_core(x, y, p->n, p->x_zp, p->id_mult, p->id_shift, p->alpha_mult,
                           p->alpha_shift, p->alpha_negative, p->y_zp);
}

/* HARD_SWISH (x relu6(x + 3) / 6) in TFLite's int16 fixed point on x' = (x - x_zp) * 2^7:
 * pre = SRDHM16(x', out_m), r = SRDHM16(x' [<< relu_exp - 1], relu_m) [<< 1 | RDBP16 by
 * -relu_exp], r = (r + 2^15) >> 1, y = clamp(RDBP16(SDHM16(r, pre), -out_exp) + y_zp). */
MLK_INLINE void mlk_hard_swish_i8_core(const int8_t *x, int8_t *y, int n, int32_t x_zp, int32_t y_zp,
                                  int32_t out_m, int32_t out_exp, int32_t relu_m,
                                  int32_t relu_exp)
{
    int i;
    for (i = 0; i < n; ++i) {
        const int32_t hires = mlk_wrap16(((int32_t)x[i] - x_zp) * (1 << 7));
        const int32_t pre = mlk_srdhm16(hires, out_m);
        int32_t r = hires;
        int32_t v;
        if (relu_exp > 0) {
            r = mlk_sat_lshift16(r, relu_exp - 1);
        }
        r = mlk_srdhm16(r, relu_m);
        if (relu_exp > 0) {
            r = mlk_sat_lshift16(r, 1);
        }
        if (relu_exp < 0) {
            r = mlk_rdbp16(r, -relu_exp);
        }
        r = mlk_wrap16((r + 32768) >> 1);
        v = mlk_wrap16(mlk_rdbp16(mlk_sdhm16(r, pre), -out_exp) + y_zp);
        y[i] = (int8_t)mlk_clamp32(v, -128, 127);
    }
}

/* mlk_hard_swish_i8: the parameter record *p (a static const struct written by the C backend)
 * unpacked into the arguments of mlk_hard_swish_i8_core. */
MLK_HOT void mlk_hard_swish_i8(const mlk_hard_swish_params *p, const int8_t *x, int8_t *y)
{
    mlk_hard_swish_i8_core(x, y, p->n, p->x_zp, p->y_zp, p->out_m, p->out_exp, p->relu_m,
                           p->relu_exp);
}

/* LOGISTIC: d = x - x_zp; d <= -radius -> -128, d >= radius -> 127, else
 * clamp(RDBP(logistic(MBQM(d, mult, shift) as Q4.27), 23) - 128, -128, 127). */
MLK_INLINE void mlk_logistic_i8_core(const int8_t *x, int8_t *y, int n, int32_t x_zp, int32_t mult,
                                int32_t shift, int32_t radius)
{
    int i;
    for (i = 0; i < n; ++i) {
        const int32_t d = (int32_t)x[i] - x_zp;
        if (d <= -radius) {
            y[i] = -128;
        } else if (d >= radius) {
            y[i] = 127;
        } else {
            const int32_t v = mlk_rdbp(mlk_logistic_q31(mlk_mbqm(d, mult, shift), 4), 23);
            y[i] = (int8_t)mlk_clamp32(v - 128, -128, 127);
        }
    }
}

/* mlk_logistic_i8: the parameter record *p (a static const struct written by the C backend)
 * unpacked into the arguments of mlk_logistic_i8_core. */
MLK_HOT void mlk_logistic_i8(const mlk_sigmoid_params *p, const int8_t *x, int8_t *y)
{
    mlk_logistic_i8_core(x, y, p->n, p->x_zp, p->mult, p->shift, p->radius);
}

/* TANH: as LOGISTIC with clamp(RDBP(tanh(MBQM(d, mult, shift) as Q4.27), 24), -128, 127). */
MLK_INLINE void mlk_tanh_i8_core(const int8_t *x, int8_t *y, int n, int32_t x_zp, int32_t mult,
                            int32_t shift, int32_t radius)
{
    int i;
    for (i = 0; i < n; ++i) {
        const int32_t d = (int32_t)x[i] - x_zp;
        if (d <= -radius) {
            y[i] = -128;
        } else if (d >= radius) {
            y[i] = 127;
        } else {
            const int32_t v = mlk_rdbp(mlk_tanh_q31(mlk_mbqm(d, mult, shift), 4), 24);
            y[i] = (int8_t)mlk_clamp32(v, -128, 127);
        }
    }
}

/* mlk_tanh_i8: the parameter record *p (a static const struct written by the C backend)
 * unpacked into the arguments of mlk_tanh_i8_core. */
MLK_HOT void mlk_tanh_i8(const mlk_sigmoid_params *p, const int8_t *x, int8_t *y)
{
    mlk_tanh_i8_core(x, y, p->n, p->x_zp, p->mult, p->shift, p->radius);
}

/* SOFTMAX over rows of `depth` (output scale 1/256, zero point -128):
 * d = x - max(row); e = exp_on_negative_values(SRDHM(d * 2^left_shift, mult), Q5.26) for
 * d >= diff_min; S = sum RDBP(e, 12) (wrapping); 1/S = scale * 2^-(31 + bits);
 * y = clamp(RDBP(SRDHM(scale, e), bits + 23) - 128, -128, 127), -128 where d < diff_min. */
MLK_INLINE int32_t mlk_softmax_exp(int32_t d, int32_t mult, int left_shift)
{
    return mlk_exp_on_negative_values(mlk_srdhm(mlk_i32((uint32_t)d << left_shift), mult), 5);
}

MLK_INLINE void mlk_softmax_i8_core(const int8_t *x, int8_t *y, int rows, int depth, int32_t mult,
                               int32_t left_shift, int32_t diff_min)
{
    int r, i;
    for (r = 0; r < rows; ++r) {
        const int8_t *xr = x + (size_t)r * depth;
        int8_t *yr = y + (size_t)r * depth;
        int32_t max = -128;
        uint32_t sum = 0u;
        int bits, exponent;
        int32_t scale;
        for (i = 0; i < depth; ++i) {
            max = xr[i] > max ? xr[i] : max;
        }
        for (i = 0; i < depth; ++i) {
            const int32_t d = (int32_t)xr[i] - max;
            if (d >= diff_min) {
                sum += (uint32_t)mlk_rdbp(mlk_softmax_exp(d, mult, left_shift), 12);
            }
        }
        scale = mlk_get_reciprocal(mlk_i32(sum), 12, &bits);
        exponent = mlk_clamp32(bits + 31 - 8, 0, 31);
        for (i = 0; i < depth; ++i) {
            const int32_t d = (int32_t)xr[i] - max;
            if (d >= diff_min) {
                const int32_t e = mlk_softmax_exp(d, mult, left_shift);
                yr[i] = (int8_t)mlk_clamp32(mlk_rdbp(mlk_srdhm(scale, e), exponent) - 128,
                                            -128, 127);
            } else {
                yr[i] = -128;
            }
        }
    }
}

/* mlk_softmax_i8: the parameter record *p (a static const struct written by the C backend)
 * unpacked into the arguments of mlk_softmax_i8_core. */
MLK_HOT void mlk_softmax_i8(const mlk_softmax_params *p, const int8_t *x, int8_t *y)
{
    mlk_softmax_i8_core(x, y, p->rows, p->depth, p->mult, p->left_shift, p->diff_min);
}

#endif /* MICROLITH_KERNELS_ACTIVATION_H */
