/*
 * microlith_kernels_float_norm.h -- float32 normalization kernels of the float C target
 * (included by microlith_kernels.h after microlith_kernels_float.h, whose mlk_expf it uses).
 *
 * LOCAL_RESPONSE_NORMALIZATION over the last (channel) axis of NHWC:
 *     y[c] = x[c] * (bias + alpha * sum_{|k - c| <= radius} x[k]^2)^(-beta)
 * (TFLite's attributes: alpha is already ONNX's alpha / size). The power is
 * exp(-beta * ln(base)) without libm: mlk_logf splits base = m * 2^e with m in
 * [sqrt(1/2), sqrt(2)) and sums 2 atanh(s), s = (m - 1) / (m + 1), to s^11 (|s| <= 0.172:
 * truncation below 2e-10), plus e ln 2 in two parts. base must be positive (bias > 0).
 * y must not alias x.
 */
#ifndef MICROLITH_KERNELS_FLOAT_NORM_H
#define MICROLITH_KERNELS_FLOAT_NORM_H

#include "microlith_kernels_float.h"

static inline float mlk_logf(float x)
{
    mlk_f32_bits v;
    int32_t e;
    float m, s, s2, series;
    v.f = x;
    e = (int32_t)((v.u >> 23) & 0xffu) - 127;
    v.u = (v.u & 0x007fffffu) | 0x3f800000u; /* m in [1, 2) (x normal and positive) */
    m = v.f;
    if (m > 1.41421356f) {
        m *= 0.5f;
        ++e;
    }
    s = (m - 1.0f) / (m + 1.0f);
    s2 = s * s;
    series = s2 * (1.0f / 3.0f + s2 * (1.0f / 5.0f + s2 * (1.0f / 7.0f +
             s2 * (1.0f / 9.0f + s2 * (1.0f / 11.0f)))));
    return (float)e * 0.693145751953125f + ((float)e * 1.42860677e-06f +
                                            2.0f * (s + s * series));
}

typedef struct {
    int32_t outer, depth, radius;
    float bias, alpha, beta;
} mlk_lrn_f_params;

static inline void mlk_lrn_f32(const mlk_lrn_f_params *p, const float *x, float *y)
{
    int32_t i, c, k;
    for (i = 0; i < p->outer; ++i) {
        const float *xr = x + i * p->depth;
        float *yr = y + i * p->depth;
        for (c = 0; c < p->depth; ++c) {
            const int32_t lo = c - p->radius < 0 ? 0 : c - p->radius;
            const int32_t hi = c + p->radius >= p->depth ? p->depth - 1 : c + p->radius;
            float sum = 0.0f, base;
            for (k = lo; k <= hi; ++k) sum += xr[k] * xr[k];
            base = p->bias + p->alpha * sum;
            yr[c] = xr[c] * mlk_expf(-p->beta * mlk_logf(base));
        }
    }
}

#endif /* MICROLITH_KERNELS_FLOAT_NORM_H */
