/* microlith_kernels_pool.h -- pooling and mean (see microlith_kernels.h). */
#ifndef MICROLITH_KERNELS_POOL_H
#define MICROLITH_KERNELS_POOL_H

#include "microlith_kernels_common.h"
#include "microlith_kernels_conv.h" /* mlk_window */

/* Parameter records, written by the C backend as static const structs. */
typedef struct {
    int batches;
    int in_h;
    int in_w;
    int ch;
    int out_h;
    int out_w;
    int k_h;
    int k_w;
    int stride_h;
    int stride_w;
    int pad_top;
    int pad_left;
    int32_t act_min;
    int32_t act_max;
} mlk_max_pool2d_params;

typedef struct {
    int batches;
    int in_h;
    int in_w;
    int ch;
    int out_h;
    int out_w;
    int k_h;
    int k_w;
    int stride_h;
    int stride_w;
    int pad_top;
    int pad_left;
    int count_border;
    int32_t fill;
    int32_t act_min;
    int32_t act_max;
} mlk_avg_pool2d_params;

typedef struct {
    int k0;
    int ks0;
    int k1;
    int ks1;
    int r0;
    int rs0;
    int r1;
    int rs1;
    int32_t zp_times_count;
    int32_t mult;
    int32_t shift;
    int32_t y_zp;
} mlk_mean_params;

/* ========================================================================== pooling */

/* The in-image part of the window of output pixel (b, oy, ox), the window starting at
 * (oy*stride_h - pad_top, ox*stride_w - pad_left): its first tap is x[offset] (elements),
 * rows x cols taps, ch elements apart along a row and in_w*ch apart down a column. Every
 * pool kernel (int8 and int16, portable and DSP) walks its windows through this. */
typedef struct {
    size_t offset;
    int rows;
    int cols;
} mlk_pool_win;

MLK_HOT mlk_pool_win mlk_pool_window(int b, int oy, int ox, int in_h, int in_w, int ch, int k_h,
                                     int k_w, int stride_h, int stride_w, int pad_top,
                                     int pad_left)
{
    const int iy0 = oy * stride_h - pad_top, ix0 = ox * stride_w - pad_left;
    int ky0, ky1, kx0, kx1;
    mlk_pool_win w;
    mlk_window(iy0, k_h, 1, in_h, &ky0, &ky1);
    mlk_window(ix0, k_w, 1, in_w, &kx0, &kx1);
    w.rows = ky1 > ky0 ? ky1 - ky0 : 0;
    w.cols = kx1 > kx0 ? kx1 - kx0 : 0;
    w.offset = w.rows && w.cols ? (((size_t)b * in_h + (size_t)(iy0 + ky0)) * in_w +
                                   (size_t)(ix0 + kx0)) * ch : 0;
    return w;
}

/* mlk_pool_window of output pixel (b, oy, ox) for a pool record *p (max or average). */
#define MLK_POOL_WINDOW(p, b, oy, ox)                                                        \
    mlk_pool_window((b), (oy), (ox), (p)->in_h, (p)->in_w, (p)->ch, (p)->k_h, (p)->k_w,     \
                    (p)->stride_h, (p)->stride_w, (p)->pad_top, (p)->pad_left)

/* Taps counted by an average pool at window w, and the sum of its border taps: all k_h*k_w,
 * the out-of-image ones as `fill`, when count_border; else the in-image ones. */
#define MLK_POOL_COUNT(p, w)                                                                 \
    ((p)->count_border ? (p)->k_h * (p)->k_w : (w).rows * (w).cols)
#define MLK_POOL_BORDER(p, w)                                                                \
    ((p)->count_border ? (p)->fill * ((p)->k_h * (p)->k_w - (w).rows * (w).cols) : 0)

/* TFLite's integer average: acc / n rounded half away from zero (C division), 0 for n = 0. */
MLK_HOT int32_t mlk_pool_average(int32_t acc, int32_t n)
{
    return n == 0 ? 0 : (acc > 0 ? acc + n / 2 : acc - n / 2) / n;
}

#include "microlith_kernels_dsp_pool.h" /* the pools on Cortex-M DSP cores */

/* The portable pools, one loop nest each for int8 and int16 (T, the type's LOWEST value):
 * MAX_POOL_2D: y = clamp(max(LOWEST, max over the in-image taps), act_min, act_max) (an
 * explicit LOWEST border is the same as skipping its taps). AVERAGE_POOL_2D: acc = int32 sum
 * over the in-image taps (+ fill for each border tap when count_border: an explicit border
 * of value `fill` followed by a VALID pool), n = MLK_POOL_COUNT,
 * y = clamp(mlk_pool_average(acc, n), act_min, act_max). The kernels read a local copy of
 * the record: y (int8_t or int16_t) could otherwise alias it and force a reload per store. */
#define MLK_DEFINE_POOL(NAME, RECORD, T, INIT, STEP, FINISH)                                 \
    MLK_INLINE void NAME(const RECORD *rec, const T *x, T *y)                                 \
    {                                                                                         \
        const RECORD g = *rec, *p = &g; /* a local copy: the stores to y cannot alias it */   \
        const size_t ch = (size_t)p->ch, row = (size_t)p->in_w * ch;                          \
        int b, oy, ox, c, r, k;                                                               \
        for (b = 0; b < p->batches; ++b) {                                                    \
            for (oy = 0; oy < p->out_h; ++oy) {                                               \
                for (ox = 0; ox < p->out_w; ++ox) {                                           \
                    const mlk_pool_win w = MLK_POOL_WINDOW(p, b, oy, ox);                     \
                    for (c = 0; c < p->ch; ++c) {                                             \
                        int32_t acc = (INIT);                                                 \
                        for (r = 0; r < w.rows; ++r) {                                        \
                            const T *xr = x + w.offset + (size_t)r * row + (size_t)c;         \
                            for (k = 0; k < w.cols; ++k) {                                    \
                                const int32_t v = xr[(size_t)k * ch];                         \
                                acc = (STEP);                                                 \
                            }                                                                 \
                        }                                                                     \
                        *y++ = (T)mlk_clamp32((FINISH), p->act_min, p->act_max);              \
                    }                                                                         \
                }                                                                             \
            }                                                                                 \
        }                                                                                     \
    }
#define MLK_DEFINE_MAX_POOL(NAME, T, LOWEST)                                                 \
    MLK_DEFINE_POOL(NAME, mlk_max_pool2d_params, T, LOWEST, v > acc ? v : acc, acc)
#define MLK_DEFINE_AVG_POOL(NAME, T)                                                         \
    MLK_DEFINE_POOL(NAME, mlk_avg_pool2d_params, T, MLK_POOL_BORDER(p, w), acc + v,         \
                    mlk_pool_average(acc, MLK_POOL_COUNT(p, w)))

MLK_DEFINE_MAX_POOL(mlk_max_pool2d_i8_core, int8_t, -128)
MLK_DEFINE_AVG_POOL(mlk_avg_pool2d_i8_core, int8_t)

/* mlk_max_pool2d_i8: the record *p (a static const struct written by the C backend). */
MLK_HOT void mlk_max_pool2d_i8(const mlk_max_pool2d_params *p, const int8_t *x, int8_t *y)
{
#if MLK_DSP_POOL
    mlk_dsp_max_pool2d_i8(p, x, y);
#else
    mlk_max_pool2d_i8_core(p, x, y);
#endif
}

/* mlk_avg_pool2d_i8: the record *p (a static const struct written by the C backend). */
MLK_HOT void mlk_avg_pool2d_i8(const mlk_avg_pool2d_params *p, const int8_t *x, int8_t *y)
{
#if MLK_DSP_POOL
    mlk_dsp_avg_pool2d_i8(p, x, y);
#else
    mlk_avg_pool2d_i8_core(p, x, y);
#endif
}

/* MEAN over reduced axes. The input is viewed as kept dims (k0, k1) and reduced dims
 * (r0, r1) with element strides; y is [k0][k1]:
 *   s = int32(sum x) - int32(x_zp * n)   (wrapping), y = clamp(y_zp + MBQM(s, mult, shift))
 * where 1/n is already folded into (mult, shift). */
MLK_INLINE void mlk_mean_i8_core(const int8_t *x, int8_t *y, int k0, int ks0, int k1, int ks1,
                            int r0, int rs0, int r1, int rs1, int32_t zp_times_count,
                            int32_t mult, int32_t shift, int32_t y_zp)
{
    int a, b, c, d;
    for (a = 0; a < k0; ++a) {
        for (b = 0; b < k1; ++b) {
            const int8_t *xp = x + (size_t)a * ks0 + (size_t)b * ks1;
            uint32_t sum = 0u;
            for (c = 0; c < r0; ++c) {
                for (d = 0; d < r1; ++d) {
                    sum += (uint32_t)(int32_t)xp[(size_t)c * rs0 + (size_t)d * rs1];
                }
            }
            y[(size_t)a * k1 + b] = mlk_out_i8(
                mlk_mbqm(mlk_wrap_sub(mlk_i32(sum), zp_times_count), mult, shift), y_zp, -128,
                127);
        }
    }
}

/* mlk_mean_i8: the parameter record *p (a static const struct written by the C backend)
 * unpacked into the arguments of mlk_mean_i8_core. */
MLK_HOT void mlk_mean_i8(const mlk_mean_params *p, const int8_t *x, int8_t *y)
{
    mlk_mean_i8_core(x, y, p->k0, p->ks0, p->k1, p->ks1, p->r0, p->rs0, p->r1, p->rs1,
                     p->zp_times_count, p->mult, p->shift, p->y_zp);
}

#endif /* MICROLITH_KERNELS_POOL_H */
