/*
 * microlith_kernels_float.h -- float32 kernels (single precision only) for the float C target.
 *
 * Every operation is on float: literals carry the f suffix, nothing is promoted to double
 * (the host tests build with -Wdouble-promotion -Werror), and libm is not used: mlk_expf
 * is a Cody-Waite range reduction to [-ln2/2, ln2/2], a degree-6 polynomial and an
 * exponent built from bits (relative error about 2e-7). Weights come in three storage
 * forms, each with its own kernel so the inner loop has no branch: float32; float16 (IEEE
 * binary16 bit patterns, widened per load by mlk_half_to_float, exact: the FPU's VCVTB
 * on Cortex-M4F/M7, integer bit operations elsewhere); int8 with one
 * float scale per output channel (dynamic range: the dot product runs on the int8 values
 * widened to float and is scaled once per output, y = s[c] * sum(x * q) + b[c]).
 * Layouts are the int8 kernels' (NHWC; OHWI; depthwise [KH][KW][C*M]; [units][depth]).
 * Element-wise kernels allow y == x; window, reduction and data kernels need y disjoint.
 */
#ifndef MICROLITH_KERNELS_FLOAT_H
#define MICROLITH_KERNELS_FLOAT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define MLK_FLT_MAX 3.40282347e+38f

typedef union { uint32_t u; float f; } mlk_f32_bits;

static inline float mlk_half_to_float(uint16_t h)
{
#if defined(__ARM_ARCH_7EM__) && defined(__ARM_FP) && !defined(__SOFTFP__) && \
    !defined(MLK_NO_VCVTB)
    /* Cortex-M4F / M7: the FPU's half-precision conversion (VCVTB, exact; FPSCR.AHP = 0) */
    float f;
    __asm__("vmov %0, %1\n\tvcvtb.f32.f16 %0, %0" : "=t"(f) : "r"((uint32_t)h));
    return f;
#else
    const uint32_t sign = ((uint32_t)h & 0x8000u) << 16;
    const uint32_t exponent = ((uint32_t)h >> 10) & 0x1fu;
    const uint32_t mantissa = (uint32_t)h & 0x3ffu;
    mlk_f32_bits v;
    if (exponent == 0u) { /* zero or subnormal: mantissa * 2^-24 */
        v.f = (float)mantissa * 5.9604644775390625e-08f;
        v.u |= sign;
        return v.f;
    }
    if (exponent == 31u) {
        v.u = sign | 0x7f800000u | (mantissa << 13);
    } else {
        v.u = sign | ((exponent + 112u) << 23) | (mantissa << 13);
    }
    return v.f;
#endif
}

static inline float mlk_expf(float x)
{
    mlk_f32_bits scale;
    int32_t n;
    float r, r2, p;
    if (x > 88.72283f) return MLK_FLT_MAX; /* saturates instead of +inf */
    if (x < -103.97208f) return 0.0f;
    n = (int32_t)(x * 1.44269504f + (x >= 0.0f ? 0.5f : -0.5f));
    r = x - (float)n * 0.693359375f;
    r = r + (float)n * 2.12194440e-4f;
    r2 = r * r;
    p = ((((1.9875691500e-4f * r + 1.3981999507e-3f) * r + 8.3334519073e-3f) * r
          + 4.1665795894e-2f) * r + 1.6666665459e-1f) * r + 5.0000001201e-1f;
    p = p * r2 + r + 1.0f;
    if (n < -126) { /* subnormal result: two steps */
        scale.u = (uint32_t)(n + 126 + 127) << 23;
        return p * scale.f * 1.17549435e-38f;
    }
    if (n > 127) {
        scale.u = (uint32_t)(n - 1 + 127) << 23;
        return p * scale.f * 2.0f;
    }
    scale.u = (uint32_t)(n + 127) << 23;
    return p * scale.f;
}

static inline float mlk_clampf(float v, float lo, float hi)
{
    return v < lo ? lo : (v > hi ? hi : v);
}

#define MLK_W_F32(w, i) (((const float *)(w))[i])
#define MLK_W_F16(w, i) mlk_half_to_float(((const uint16_t *)(w))[i])
#define MLK_W_I8(w, i) ((float)((const int8_t *)(w))[i])
#define MLK_SCALE_NONE(p, c, acc) (acc)
#define MLK_SCALE_CH(p, c, acc) ((acc) * (p)->w_scale[c])

/* ---- CONV_2D (grouped, explicit pads; out-of-image taps skipped = zero padding) ---- */
typedef struct {
    const void *w;          /* [out_c][k_h][k_w][in_c / groups] */
    const float *w_scale;   /* int8 weights: [out_c]; else NULL */
    const float *bias;      /* [out_c] or NULL */
    int32_t batches, in_h, in_w, in_c, out_h, out_w, out_c;
    int32_t k_h, k_w, stride_h, stride_w, dil_h, dil_w, pad_top, pad_left, groups;
    float act_min, act_max;
} mlk_conv2d_f_params;

#define MLK_DEFINE_CONV2D_F(NAME, LOAD, SCALE)                                              \
static inline void NAME(const mlk_conv2d_f_params *p, const float *x, float *y)             \
{                                                                                           \
    const int32_t cin = p->in_c / p->groups, cout = p->out_c / p->groups;                   \
    int32_t b, oy, ox, oc, ky, kx, ic;                                                      \
    for (b = 0; b < p->batches; ++b)                                                        \
    for (oy = 0; oy < p->out_h; ++oy)                                                       \
    for (ox = 0; ox < p->out_w; ++ox) {                                                     \
        float *out = y + ((b * p->out_h + oy) * p->out_w + ox) * p->out_c;                  \
        for (oc = 0; oc < p->out_c; ++oc) {                                                 \
            const int32_t g = oc / cout;                                                    \
            float acc = 0.0f;                                                               \
            for (ky = 0; ky < p->k_h; ++ky) {                                               \
                const int32_t iy = oy * p->stride_h - p->pad_top + ky * p->dil_h;           \
                if (iy < 0 || iy >= p->in_h) continue;                                      \
                for (kx = 0; kx < p->k_w; ++kx) {                                           \
                    const int32_t ix = ox * p->stride_w - p->pad_left + kx * p->dil_w;      \
                    const float *xp;                                                        \
                    int32_t wi;                                                             \
                    if (ix < 0 || ix >= p->in_w) continue;                                  \
                    xp = x + ((b * p->in_h + iy) * p->in_w + ix) * p->in_c + g * cin;       \
                    wi = ((oc * p->k_h + ky) * p->k_w + kx) * cin;                          \
                    for (ic = 0; ic < cin; ++ic) acc += xp[ic] * LOAD(p->w, wi + ic);       \
                }                                                                           \
            }                                                                               \
            acc = SCALE(p, oc, acc);                                                        \
            if (p->bias) acc += p->bias[oc];                                                \
            out[oc] = mlk_clampf(acc, p->act_min, p->act_max);                              \
        }                                                                                   \
    }                                                                                       \
}
MLK_DEFINE_CONV2D_F(mlk_conv2d_f32, MLK_W_F32, MLK_SCALE_NONE)
MLK_DEFINE_CONV2D_F(mlk_conv2d_f32_w16, MLK_W_F16, MLK_SCALE_NONE)
MLK_DEFINE_CONV2D_F(mlk_conv2d_f32_w8, MLK_W_I8, MLK_SCALE_CH)

/* ---- DEPTHWISE_CONV_2D: output channel c * M + m reads input channel c ---- */
typedef struct {
    const void *w;          /* [k_h][k_w][out_c] */
    const float *w_scale;
    const float *bias;
    int32_t batches, in_h, in_w, in_c, out_h, out_w, depth_mult;
    int32_t k_h, k_w, stride_h, stride_w, dil_h, dil_w, pad_top, pad_left;
    float act_min, act_max;
} mlk_depthwise_conv2d_f_params;

#define MLK_DEFINE_DEPTHWISE_F(NAME, LOAD, SCALE)                                           \
static inline void NAME(const mlk_depthwise_conv2d_f_params *p, const float *x, float *y)   \
{                                                                                           \
    const int32_t out_c = p->in_c * p->depth_mult;                                          \
    int32_t b, oy, ox, oc, ky, kx;                                                          \
    for (b = 0; b < p->batches; ++b)                                                        \
    for (oy = 0; oy < p->out_h; ++oy)                                                       \
    for (ox = 0; ox < p->out_w; ++ox) {                                                     \
        float *out = y + ((b * p->out_h + oy) * p->out_w + ox) * out_c;                     \
        for (oc = 0; oc < out_c; ++oc) {                                                    \
            const int32_t ic = oc / p->depth_mult;                                          \
            float acc = 0.0f;                                                               \
            for (ky = 0; ky < p->k_h; ++ky) {                                               \
                const int32_t iy = oy * p->stride_h - p->pad_top + ky * p->dil_h;           \
                if (iy < 0 || iy >= p->in_h) continue;                                      \
                for (kx = 0; kx < p->k_w; ++kx) {                                           \
                    const int32_t ix = ox * p->stride_w - p->pad_left + kx * p->dil_w;      \
                    if (ix < 0 || ix >= p->in_w) continue;                                  \
                    acc += x[((b * p->in_h + iy) * p->in_w + ix) * p->in_c + ic]            \
                           * LOAD(p->w, (ky * p->k_w + kx) * out_c + oc);                   \
                }                                                                           \
            }                                                                               \
            acc = SCALE(p, oc, acc);                                                        \
            if (p->bias) acc += p->bias[oc];                                                \
            out[oc] = mlk_clampf(acc, p->act_min, p->act_max);                              \
        }                                                                                   \
    }                                                                                       \
}
MLK_DEFINE_DEPTHWISE_F(mlk_depthwise_conv2d_f32, MLK_W_F32, MLK_SCALE_NONE)
MLK_DEFINE_DEPTHWISE_F(mlk_depthwise_conv2d_f32_w16, MLK_W_F16, MLK_SCALE_NONE)
MLK_DEFINE_DEPTHWISE_F(mlk_depthwise_conv2d_f32_w8, MLK_W_I8, MLK_SCALE_CH)

/* ---- FULLY_CONNECTED: y[b][u] = s[u] * sum_d x[b][d] w[u][d] + bias[u] ---- */
typedef struct {
    const void *w;          /* [units][depth] */
    const float *w_scale;
    const float *bias;
    int32_t batches, depth, units;
    float act_min, act_max;
} mlk_fully_connected_f_params;

#define MLK_DEFINE_FC_F(NAME, LOAD, SCALE)                                                  \
static inline void NAME(const mlk_fully_connected_f_params *p, const float *x, float *y)    \
{                                                                                           \
    int32_t b, u, d;                                                                        \
    for (b = 0; b < p->batches; ++b) {                                                      \
        const float *xb = x + b * p->depth;                                                 \
        for (u = 0; u < p->units; ++u) {                                                    \
            const int32_t base = u * p->depth;                                              \
            float acc = 0.0f;                                                               \
            for (d = 0; d < p->depth; ++d) acc += xb[d] * LOAD(p->w, base + d);             \
            acc = SCALE(p, u, acc);                                                         \
            if (p->bias) acc += p->bias[u];                                                 \
            y[b * p->units + u] = mlk_clampf(acc, p->act_min, p->act_max);                  \
        }                                                                                   \
    }                                                                                       \
}
MLK_DEFINE_FC_F(mlk_fully_connected_f32, MLK_W_F32, MLK_SCALE_NONE)
MLK_DEFINE_FC_F(mlk_fully_connected_f32_w16, MLK_W_F16, MLK_SCALE_NONE)
MLK_DEFINE_FC_F(mlk_fully_connected_f32_w8, MLK_W_I8, MLK_SCALE_CH)

/* ---- MAX / AVERAGE_POOL_2D (explicit pads; the border is never selected / counted unless
 * count_border) ---- */
typedef struct {
    int32_t batches, in_h, in_w, ch, out_h, out_w, k_h, k_w, stride_h, stride_w;
    int32_t pad_top, pad_left, is_max, count_border;
    float act_min, act_max;
} mlk_pool2d_f_params;

static inline void mlk_pool2d_f32(const mlk_pool2d_f_params *p, const float *x, float *y)
{
    int32_t b, oy, ox, c, ky, kx;
    for (b = 0; b < p->batches; ++b)
    for (oy = 0; oy < p->out_h; ++oy)
    for (ox = 0; ox < p->out_w; ++ox)
    for (c = 0; c < p->ch; ++c) {
        float acc = p->is_max ? -MLK_FLT_MAX : 0.0f;
        int32_t count = 0;
        for (ky = 0; ky < p->k_h; ++ky) {
            const int32_t iy = oy * p->stride_h - p->pad_top + ky;
            if (iy < 0 || iy >= p->in_h) continue;
            for (kx = 0; kx < p->k_w; ++kx) {
                const int32_t ix = ox * p->stride_w - p->pad_left + kx;
                float v;
                if (ix < 0 || ix >= p->in_w) continue;
                v = x[((b * p->in_h + iy) * p->in_w + ix) * p->ch + c];
                if (p->is_max) acc = v > acc ? v : acc;
                else acc += v;
                ++count;
            }
        }
        if (!p->is_max) {
            const int32_t n = p->count_border ? p->k_h * p->k_w : count;
            acc = n > 0 ? acc / (float)n : 0.0f;
        }
        y[((b * p->out_h + oy) * p->out_w + ox) * p->ch + c] =
            mlk_clampf(acc, p->act_min, p->act_max);
    }
}

/* ---- MEAN over up to two runs of reduced axes (strides in elements) ---- */
typedef struct {
    int32_t k0, ks0, k1, ks1, r0, rs0, r1, rs1;
} mlk_mean_f_params;

static inline void mlk_mean_f32(const mlk_mean_f_params *p, const float *x, float *y)
{
    const float inv = 1.0f / (float)(p->r0 * p->r1);
    int32_t i, j, a, c, o = 0;
    for (i = 0; i < p->k0; ++i)
    for (j = 0; j < p->k1; ++j) {
        float acc = 0.0f;
        const float *base = x + i * p->ks0 + j * p->ks1;
        for (a = 0; a < p->r0; ++a)
            for (c = 0; c < p->r1; ++c) acc += base[a * p->rs0 + c * p->rs1];
        y[o++] = acc * inv;
    }
}

/* ---- binary element-wise with broadcasting (4 loops; strides 0 broadcast) ---- */
enum { MLK_ADD = 0, MLK_SUB = 1, MLK_MUL = 2, MLK_MAX = 3, MLK_MIN = 4, MLK_PRELU = 5 };

typedef struct {
    int32_t op;
    int32_t n0, n1, n2, n3, as0, as1, as2, as3, bs0, bs1, bs2, bs3;
    float act_min, act_max;
} mlk_binary_f_params;

static inline float mlk_binary_f(int32_t op, float a, float b)
{
    switch (op) {
    case MLK_ADD: return a + b;
    case MLK_SUB: return a - b;
    case MLK_MUL: return a * b;
    case MLK_MAX: return a > b ? a : b;
    case MLK_MIN: return a < b ? a : b;
    default: return a >= 0.0f ? a : a * b;
    }
}

static inline void mlk_binary_f32(const mlk_binary_f_params *p, const float *a, const float *b,
                                  float *y)
{
    int32_t i0, i1, i2, i3, o = 0;
    for (i0 = 0; i0 < p->n0; ++i0)
    for (i1 = 0; i1 < p->n1; ++i1)
    for (i2 = 0; i2 < p->n2; ++i2)
    for (i3 = 0; i3 < p->n3; ++i3) {
        const float va = a[i0 * p->as0 + i1 * p->as1 + i2 * p->as2 + i3 * p->as3];
        const float vb = b[i0 * p->bs0 + i1 * p->bs1 + i2 * p->bs2 + i3 * p->bs3];
        y[o++] = mlk_clampf(mlk_binary_f(p->op, va, vb), p->act_min, p->act_max);
    }
}

/* ---- unary element-wise ---- */
enum { MLK_RELU = 0, MLK_RELU6 = 1, MLK_LEAKY_RELU = 2, MLK_LOGISTIC = 3, MLK_TANH = 4,
       MLK_HARD_SWISH = 5 };

typedef struct {
    int32_t op, n;
    float alpha;
} mlk_unary_f_params;

static inline float mlk_unary_f(int32_t op, float v, float alpha)
{
    switch (op) {
    case MLK_RELU: return v > 0.0f ? v : 0.0f;
    case MLK_RELU6: return mlk_clampf(v, 0.0f, 6.0f);
    case MLK_LEAKY_RELU: return v >= 0.0f ? v : v * alpha;
    case MLK_LOGISTIC: return 1.0f / (1.0f + mlk_expf(-v));
    case MLK_TANH: {
        const float e = mlk_expf(-2.0f * (v < 0.0f ? -v : v));
        const float t = (1.0f - e) / (1.0f + e);
        return v < 0.0f ? -t : t;
    }
    default: return v * mlk_clampf(v + 3.0f, 0.0f, 6.0f) * (1.0f / 6.0f);
    }
}

static inline void mlk_unary_f32(const mlk_unary_f_params *p, const float *x, float *y)
{
    int32_t i;
    for (i = 0; i < p->n; ++i) y[i] = mlk_unary_f(p->op, x[i], p->alpha);
}

/* ---- SOFTMAX over the last axis: exp(beta (x - max)) / sum ---- */
typedef struct {
    int32_t outer, depth;
    float beta;
} mlk_softmax_f_params;

static inline void mlk_softmax_f32(const mlk_softmax_f_params *p, const float *x, float *y)
{
    int32_t i, d;
    for (i = 0; i < p->outer; ++i) {
        const float *xr = x + i * p->depth;
        float *yr = y + i * p->depth;
        float top = xr[0], sum = 0.0f, inv;
        for (d = 1; d < p->depth; ++d) top = xr[d] > top ? xr[d] : top;
        for (d = 0; d < p->depth; ++d) {
            yr[d] = mlk_expf((xr[d] - top) * p->beta);
            sum += yr[d];
        }
        inv = 1.0f / sum;
        for (d = 0; d < p->depth; ++d) yr[d] *= inv;
    }
}

/* ---- TRANSPOSE (6 loops over the output; s* are input strides in elements) ---- */
typedef struct {
    int32_t n0, n1, n2, n3, n4, n5, s0, s1, s2, s3, s4, s5;
} mlk_transpose_f_params;

static inline void mlk_transpose_f32(const mlk_transpose_f_params *p, const float *x, float *y)
{
    int32_t i0, i1, i2, i3, i4, i5, o = 0;
    for (i0 = 0; i0 < p->n0; ++i0)
    for (i1 = 0; i1 < p->n1; ++i1)
    for (i2 = 0; i2 < p->n2; ++i2)
    for (i3 = 0; i3 < p->n3; ++i3)
    for (i4 = 0; i4 < p->n4; ++i4)
    for (i5 = 0; i5 < p->n5; ++i5)
        y[o++] = x[i0 * p->s0 + i1 * p->s1 + i2 * p->s2 + i3 * p->s3 + i4 * p->s4
                   + i5 * p->s5];
}

/* ---- PAD / PADV2 (4 merged dims: d = input size, b = before, o = output size) ---- */
typedef struct {
    int32_t d0, d1, d2, d3, b0, b1, b2, b3, o0, o1, o2, o3;
    float value;
} mlk_pad_f_params;

static inline void mlk_pad_f32(const mlk_pad_f_params *p, const float *x, float *y)
{
    int32_t i0, i1, i2, i3, o = 0;
    for (i0 = 0; i0 < p->o0; ++i0)
    for (i1 = 0; i1 < p->o1; ++i1)
    for (i2 = 0; i2 < p->o2; ++i2)
    for (i3 = 0; i3 < p->o3; ++i3) {
        const int32_t j0 = i0 - p->b0, j1 = i1 - p->b1, j2 = i2 - p->b2, j3 = i3 - p->b3;
        const int inside = j0 >= 0 && j0 < p->d0 && j1 >= 0 && j1 < p->d1 && j2 >= 0 &&
                           j2 < p->d2 && j3 >= 0 && j3 < p->d3;
        y[o++] = inside ? x[((j0 * p->d1 + j1) * p->d2 + j2) * p->d3 + j3] : p->value;
    }
}

/* ---- CONCATENATION: one call per input ---- */
typedef struct {
    int32_t outer, in_inner, out_inner, offset;
} mlk_concat_f_params;

static inline void mlk_concat_f32(const mlk_concat_f_params *p, const float *x, float *y)
{
    int32_t i;
    for (i = 0; i < p->outer; ++i)
        memcpy(y + i * p->out_inner + p->offset, x + i * p->in_inner,
               (size_t)p->in_inner * sizeof(float));
}

#endif /* MICROLITH_KERNELS_FLOAT_H */
