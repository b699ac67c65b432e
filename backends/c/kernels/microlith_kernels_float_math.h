/*
 * microlith_kernels_float_math.h -- float32 element-wise maths of the float C target
 * (EXP, SQRT, RSQRT, ELU, GELU, DIV); included by microlith_kernels.h after
 * microlith_kernels_float.h, whose mlk_f32_bits and mlk_clampf it uses. Single precision
 * only, no libm:
 *   exp     Cody-Waite reduction x = n ln2 + r, |r| <= ln2/2 (ln2 in two parts, the high
 *           one with 9 bits so n * hi is exact), e^r = 1 + r + r^2 P(r) (degree 5), times
 *           2^n built from bits (two steps for a subnormal result); +inf above 88.7228,
 *           +0 below -103.972, NaN propagates. Relative error about 2e-7.
 *   expm1   for ELU: n = 0 (|x| <= ln2/2) keeps r + r^2 P(r) without the 1 (no
 *           cancellation near 0); else exp(x) - 1, which is at most -0.29 for x < 0.
 *   rsqrt   0x5f3759df - (bits >> 1) start (relative error <= 3.5e-3), three Newton steps
 *           y (3/2 - x/2 y^2); subnormal x is scaled by 2^24 first. rsqrt(+-0) = +-inf,
 *           rsqrt(+inf) = 0, negative or NaN -> NaN. sqrt(x) = x rsqrt(x) (sqrt(+-0) = +-0,
 *           sqrt(+inf) = +inf). No sqrtf and no __builtin_sqrtf: without -fno-math-errno
 *           gcc keeps a call to libm's sqrtf for negative inputs on both the host and
 *           arm-none-eabi.
 *   gelu    x Phi(x), Phi(x) = erfc(-x / sqrt 2) / 2, computed without cancellation:
 *           for z = |x| / sqrt 2 < 1, erf(z) = z E(z^2) (degree 6); for z >= 1,
 *           erfc(z) = exp(-z^2) C(u), u = 1 / (1 + z / 2) (degree 10; both fitted for
 *           microlith by least squares, relative error <= 1e-7 in double); erfc(z) = 0 for
 *           z > 10. Phi(x) = 1 - erfc(z) / 2 for x >= 0, erfc(z) / 2 for x < 0. exp(-z^2)
 *           = exp(-x^2 / 2) from x split in two halves (z^2 rounded would cost 1e-5).
 *           The tanh form: 0.5 x (1 + tanh(u)) = x / (1 + exp(-2u)) = x e / (1 + e),
 *           e = exp(2u) for u < 0, u = sqrt(2/pi) (x + 0.044715 x^3); |x| > 20: x or -0.
 *           In the far negative tail 2u (float, |2u| up to 87) carries its rounding into
 *           the result: relative error <= 4e-6 where |y| >= 1e-10, <= 1.2e-5 above 1e-30.
 *   div     a / b with broadcasting (the binary kernels' 4 loops) and a fused clamp
 *           (none without a fused activation: x / 0 stays +-inf).
 * Element-wise kernels allow y == x (and y == a for DIV).
 */
#ifndef MICROLITH_KERNELS_FLOAT_MATH_H
#define MICROLITH_KERNELS_FLOAT_MATH_H

#include "microlith_kernels_float.h"

static inline float mlk_fm_bits(uint32_t u)
{
    mlk_f32_bits v;
    v.u = u;
    return v.f;
}

/* e^r - 1 for |r| <= ln2/2: r + r^2 P(r) */
static inline float mlk_fm_expm1_reduced(float r)
{
    const float p = ((((1.9875691500e-4f * r + 1.3981999507e-3f) * r + 8.3334519073e-3f) * r
                      + 4.1665795894e-2f) * r + 1.6666665459e-1f) * r + 5.0000001201e-1f;
    return p * (r * r) + r;
}

/* x = n ln2 + r; returns n, *r the reduced argument (|x| <= 104) */
static inline int32_t mlk_fm_reduce(float x, float *r)
{
    const int32_t n = (int32_t)(x * 1.44269504f + (x >= 0.0f ? 0.5f : -0.5f));
    *r = (x - (float)n * 0.693359375f) + (float)n * 2.12194440e-4f;
    return n;
}

/* v * 2^n for 1/2 <= v < 2 and -151 < n < 129 */
static inline float mlk_fm_scale(float v, int32_t n)
{
    if (n < -126) return v * mlk_fm_bits((uint32_t)(n + 126 + 127) << 23) * 1.17549435e-38f;
    if (n > 127) return v * mlk_fm_bits((uint32_t)(n - 1 + 127) << 23) * 2.0f;
    return v * mlk_fm_bits((uint32_t)(n + 127) << 23);
}

static inline float mlk_fm_exp(float x)
{
    float r;
    int32_t n;
    if (x != x) return x;
    if (x > 88.72283f) return mlk_fm_bits(0x7f800000u);
    if (x < -103.97208f) return 0.0f;
    n = mlk_fm_reduce(x, &r);
    return mlk_fm_scale(mlk_fm_expm1_reduced(r) + 1.0f, n);
}

static inline float mlk_fm_expm1(float x)
{
    float r;
    int32_t n;
    if (x != x) return x;
    if (x > 88.72283f) return mlk_fm_bits(0x7f800000u);
    if (x < -30.0f) return -1.0f; /* e^x < 2^-43: -1 to float precision */
    n = mlk_fm_reduce(x, &r);
    if (n == 0) return mlk_fm_expm1_reduced(r);
    return mlk_fm_scale(mlk_fm_expm1_reduced(r) + 1.0f, n) - 1.0f;
}

static inline float mlk_fm_rsqrt(float x)
{
    mlk_f32_bits v;
    float y, half, post = 1.0f;
    if (x != x || x < 0.0f) return mlk_fm_bits(0x7fc00000u);
    if (x == 0.0f) return 1.0f / x; /* +-inf (-0 keeps its sign) */
    if (x > MLK_FLT_MAX) return 0.0f;
    if (x < 1.17549435e-38f) { /* subnormal: x 2^24, result 2^12 */
        x *= 16777216.0f;
        post = 4096.0f;
    }
    v.f = x;
    v.u = 0x5f3759dfu - (v.u >> 1);
    y = v.f;
    half = 0.5f * x;
    y = y * (1.5f - half * y * y);
    y = y * (1.5f - half * y * y);
    y = y * (1.5f - half * y * y);
    return y * post;
}

static inline float mlk_fm_sqrt(float x)
{
    if (x == 0.0f || x > MLK_FLT_MAX) return x; /* +-0, +inf */
    if (x != x || x < 0.0f) return mlk_fm_bits(0x7fc00000u);
    return x * mlk_fm_rsqrt(x);
}

/* erf(z) = z E(z^2) for 0 <= z < 1 */
static inline float mlk_fm_erf_small(float z)
{
    const float t = z * z;
    return z * ((((((7.93339859e-05f * t - 8.03482020e-04f) * t + 5.19121578e-03f) * t
                   - 2.68553980e-02f) * t + 1.12836257e-01f) * t - 3.76126289e-01f) * t
                + 1.12837923e+00f);
}

/* C(u) = erfc(z) exp(z^2), u = 1 / (1 + z / 2), for 1 <= z <= 10 */
static inline float mlk_fm_erfc_scaled(float z)
{
    const float u = 1.0f / (1.0f + 0.5f * z);
    return (((((((((-4.98020984e-02f * u + 1.36176229e-01f) * u - 4.04653922e-02f) * u
                 - 1.89616427e-01f) * u + 1.16609819e-01f) * u + 2.47748401e-02f) * u
              + 1.94326743e-01f) * u + 2.43272185e-01f) * u + 2.82538235e-01f) * u
           + 2.82063097e-01f) * u + 9.91208367e-07f;
}

/* exp(-x^2 / 2) without the rounding of x^2: x = h + l, h with 12 significant bits, so
 * h^2 / 2 is exact and x^2 / 2 = h^2 / 2 + l (x + h) / 2 */
static inline float mlk_fm_gauss(float x)
{
    mlk_f32_bits v;
    float h, l;
    v.f = x;
    v.u &= 0xfffff000u;
    h = v.f;
    l = x - h;
    return mlk_fm_exp(-0.5f * h * h) * mlk_fm_exp(-0.5f * l * (x + h));
}

/* x Phi(x); for z = |x| / sqrt 2 >= 1 the small factors are multiplied last (x erfc / 2 stays
 * normal down to x = -13.2 even where erfc alone is subnormal) */
static inline float mlk_fm_gelu(float x)
{
    const float z = (x < 0.0f ? -x : x) * 0.707106781f;
    if (x != x) return x;
    if (z < 1.0f) {
        const float erf = mlk_fm_erf_small(z);
        return x * (0.5f + 0.5f * (x < 0.0f ? -erf : erf));
    }
    if (z > 10.0f) return x < 0.0f ? -0.0f : x;
    {
        const float c = 0.5f * mlk_fm_erfc_scaled(z);
        if (x < 0.0f) return (x * c) * mlk_fm_gauss(x);
        return x - (x * c) * mlk_fm_gauss(x);
    }
}

static inline float mlk_fm_gelu_tanh(float x)
{
    float u;
    if (x != x) return x;
    if (x > 20.0f) return x;
    if (x < -20.0f) return -0.0f;
    u = 1.59576912f * (x + 0.044715f * x * x * x); /* 2u */
    if (u >= 0.0f) return x / (1.0f + mlk_fm_exp(-u));
    {
        const float e = mlk_fm_exp(u); /* x e / (1 + e): no overflow, graceful underflow */
        return x * e / (1.0f + e);
    }
}

/* ---- unary maths ---- */
enum { MLK_FM_EXP = 0, MLK_FM_SQRT = 1, MLK_FM_RSQRT = 2, MLK_FM_ELU = 3, MLK_FM_GELU = 4,
       MLK_FM_GELU_TANH = 5 };

typedef struct {
    int32_t op, n;
} mlk_math_f_params;

static inline float mlk_math_f(int32_t op, float v)
{
    switch (op) {
    case MLK_FM_EXP: return mlk_fm_exp(v);
    case MLK_FM_SQRT: return mlk_fm_sqrt(v);
    case MLK_FM_RSQRT: return mlk_fm_rsqrt(v);
    case MLK_FM_ELU: return v >= 0.0f ? v : mlk_fm_expm1(v);
    case MLK_FM_GELU: return mlk_fm_gelu(v);
    default: return mlk_fm_gelu_tanh(v);
    }
}

static inline void mlk_math_f32(const mlk_math_f_params *p, const float *x, float *y)
{
    int32_t i;
    for (i = 0; i < p->n; ++i) y[i] = mlk_math_f(p->op, x[i]);
}

/* ---- division with broadcasting (the binary kernels' loops; strides 0 broadcast) ---- */
typedef struct {
    int32_t n0, n1, n2, n3, as0, as1, as2, as3, bs0, bs1, bs2, bs3;
    int32_t clamp; /* 0: no fused activation (a / 0 stays +-inf) */
    float act_min, act_max;
} mlk_div_f_params;

static inline void mlk_div_f32(const mlk_div_f_params *p, const float *a, const float *b,
                               float *y)
{
    int32_t i0, i1, i2, i3, o = 0;
    for (i0 = 0; i0 < p->n0; ++i0)
    for (i1 = 0; i1 < p->n1; ++i1)
    for (i2 = 0; i2 < p->n2; ++i2)
    for (i3 = 0; i3 < p->n3; ++i3) {
        const float va = a[i0 * p->as0 + i1 * p->as1 + i2 * p->as2 + i3 * p->as3];
        const float vb = b[i0 * p->bs0 + i1 * p->bs1 + i2 * p->bs2 + i3 * p->bs3];
        const float q = va / vb;
        y[o++] = p->clamp ? mlk_clampf(q, p->act_min, p->act_max) : q;
    }
}

#endif /* MICROLITH_KERNELS_FLOAT_MATH_H */
