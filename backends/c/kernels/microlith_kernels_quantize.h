/* microlith_kernels_quantize.h -- quantize, requantize and dequantize (see microlith_kernels.h). */
#ifndef MICROLITH_KERNELS_QUANTIZE_H
#define MICROLITH_KERNELS_QUANTIZE_H

#include "microlith_kernels_common.h"

/* Parameter records, written by the C backend as static const structs. */
typedef struct {
    int n;
    float scale;
    int32_t zp;
} mlk_quantize_params;

typedef struct {
    int n;
    int32_t x_zp;
    int32_t mult;
    int32_t shift;
    int32_t y_zp;
} mlk_requantize_params;

typedef struct {
    int n;
    float scale;
    int32_t zp;
} mlk_dequantize_params;

/* ======================================================== quantize / dequantize */

/* int32(round_half_away(v)) for a float v; NaN and values outside [-2^31, 2^31) give
 * INT32_MIN (what a float -> int32 conversion gives on x86). Exact without libm:
 * v - trunc(v) is representable. */
MLK_INLINE int32_t mlk_round_f32(float v)
{
    int32_t t;
    float frac;
    if (!(v >= -2147483648.0f && v < 2147483648.0f)) {
        return INT32_MIN;
    }
    t = (int32_t)v;
    frac = v - (float)t;
    if (frac >= 0.5f) {
        return t + 1;
    }
    if (frac <= -0.5f) {
        return t - 1;
    }
    return t;
}

/* QUANTIZE float -> int8 / uint8: y = clamp(int32(round(x / scale)) + zp, qmin, qmax) in
 * float32 (the division is a real division, as in TFLite). */
MLK_INLINE void mlk_quantize_f32_i8_core(const float *x, int8_t *y, int n, float scale, int32_t zp)
{
    int i;
    for (i = 0; i < n; ++i) {
        y[i] = (int8_t)mlk_clamp32(mlk_wrap_add(mlk_round_f32(x[i] / scale), zp), -128, 127);
    }
}

/* mlk_quantize_f32_i8: the parameter record *p (a static const struct written by the C backend)
 * unpacked into the arguments of mlk_quantize_f32_i8_core. */
MLK_HOT void mlk_quantize_f32_i8(const mlk_quantize_params *p, const float *x, int8_t *y)
{
    mlk_quantize_f32_i8_core(x, y, p->n, p->scale, p->zp);
}

MLK_INLINE void mlk_quantize_f32_u8_core(const float *x, uint8_t *y, int n, float scale, int32_t zp)
{
    int i;
    for (i = 0; i < n; ++i) {
        y[i] = (uint8_t)mlk_clamp32(mlk_wrap_add(mlk_round_f32(x[i] / scale), zp), 0, 255);
    }
}

/* mlk_quantize_f32_u8: the parameter record *p (a static const struct written by the C backend)
 * unpacked into the arguments of mlk_quantize_f32_u8_core. */
MLK_HOT void mlk_quantize_f32_u8(const mlk_quantize_params *p, const float *x, uint8_t *y)
{
    mlk_quantize_f32_u8_core(x, y, p->n, p->scale, p->zp);
}

/* QUANTIZE int -> int (requantize): y = clamp(y_zp + MBQM(x - x_zp, mult, shift), qmin,
 * qmax) for int8 -> int8, int8 -> uint8 and uint8 -> int8. */
MLK_INLINE int32_t mlk_requantize_value(int32_t x, int32_t x_zp, int32_t mult, int32_t shift,
                                        int32_t y_zp, int32_t qmin, int32_t qmax)
{
    const int32_t lo = qmin - y_zp;
    const int32_t hi = qmax - y_zp;
    return mlk_clamp32(mlk_mbqm(x - x_zp, mult, shift), lo, hi) + y_zp;
}

MLK_INLINE void mlk_requantize_i8_i8_core(const int8_t *x, int8_t *y, int n, int32_t x_zp,
                                     int32_t mult, int32_t shift, int32_t y_zp)
{
    int i;
    for (i = 0; i < n; ++i) {
        y[i] = (int8_t)mlk_requantize_value(x[i], x_zp, mult, shift, y_zp, -128, 127);
    }
}

/* mlk_requantize_i8_i8: the parameter record *p (a static const struct written by the C backend)
 * unpacked into the arguments of mlk_requantize_i8_i8_core. */
MLK_HOT void mlk_requantize_i8_i8(const mlk_requantize_params *p, const int8_t *x, int8_t *y)
{
    mlk_requantize_i8_i8_core(x, y, p->n, p->x_zp, p->mult, p->shift, p->y_zp);
}

MLK_INLINE void mlk_requantize_i8_u8_core(const int8_t *x, uint8_t *y, int n, int32_t x_zp,
                                     int32_t mult, int32_t shift, int32_t y_zp)
{
    int i;
    for (i = 0; i < n; ++i) {
        y[i] = (uint8_t)mlk_requantize_value(x[i], x_zp, mult, shift, y_zp, 0, 255);
    }
}

/* mlk_requantize_i8_u8: the parameter record *p (a static const struct written by the C backend)
 * unpacked into the arguments of mlk_requantize_i8_u8_core. */
MLK_HOT void mlk_requantize_i8_u8(const mlk_requantize_params *p, const int8_t *x, uint8_t *y)
{
    mlk_requantize_i8_u8_core(x, y, p->n, p->x_zp, p->mult, p->shift, p->y_zp);
}

MLK_INLINE void mlk_requantize_u8_i8_core(const uint8_t *x, int8_t *y, int n, int32_t x_zp,
                                     int32_t mult, int32_t shift, int32_t y_zp)
{
    int i;
    for (i = 0; i < n; ++i) {
        y[i] = (int8_t)mlk_requantize_value(x[i], x_zp, mult, shift, y_zp, -128, 127);
    }
}

/* mlk_requantize_u8_i8: the parameter record *p (a static const struct written by the C backend)
 * unpacked into the arguments of mlk_requantize_u8_i8_core. */
MLK_HOT void mlk_requantize_u8_i8(const mlk_requantize_params *p, const uint8_t *x, int8_t *y)
{
    mlk_requantize_u8_i8_core(x, y, p->n, p->x_zp, p->mult, p->shift, p->y_zp);
}

/* DEQUANTIZE: y = float(scale * (x - zp)); the float32 product of the exact integer and the
 * float32 scale equals the double product rounded to float. */
MLK_INLINE void mlk_dequantize_i8_f32_core(const int8_t *x, float *y, int n, float scale, int32_t zp)
{
    int i;
    for (i = 0; i < n; ++i) {
        y[i] = (float)((int32_t)x[i] - zp) * scale;
    }
}

/* mlk_dequantize_i8_f32: the parameter record *p (a static const struct written by the C backend)
 * unpacked into the arguments of mlk_dequantize_i8_f32_core. */
MLK_HOT void mlk_dequantize_i8_f32(const mlk_dequantize_params *p, const int8_t *x, float *y)
{
    mlk_dequantize_i8_f32_core(x, y, p->n, p->scale, p->zp);
}

MLK_INLINE void mlk_dequantize_u8_f32_core(const uint8_t *x, float *y, int n, float scale,
                                      int32_t zp)
{
    int i;
    for (i = 0; i < n; ++i) {
        y[i] = (float)((int32_t)x[i] - zp) * scale;
    }
}

/* mlk_dequantize_u8_f32: the parameter record *p (a static const struct written by the C backend)
 * unpacked into the arguments of mlk_dequantize_u8_f32_core. */
MLK_HOT void mlk_dequantize_u8_f32(const mlk_dequantize_params *p, const uint8_t *x, float *y)
{
    mlk_dequantize_u8_f32_core(x, y, p->n, p->scale, p->zp);
}

#endif /* MICROLITH_KERNELS_QUANTIZE_H */
