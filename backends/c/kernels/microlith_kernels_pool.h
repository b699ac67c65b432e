/* microlith_kernels_pool.h -- pooling and mean (see microlith_kernels.h). */
#ifndef MICROLITH_KERNELS_POOL_H
#define MICROLITH_KERNELS_POOL_H

#include "microlith_kernels_common.h"
#include "microlith_kernels_dsp_pool.h" /* MAX_POOL_2D on Cortex-M DSP cores */

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

/* MAX_POOL_2D: y = clamp(max(-128, max over the in-image taps), act_min, act_max); window
 * (oy, ox) starts at (oy*stride_h - pad_top, ox*stride_w - pad_left). An explicit -128 border
 * is the same as skipping its taps. */
MLK_INLINE void mlk_max_pool2d_i8_core(const int8_t *x, int8_t *y, int batches, int in_h, int in_w,
                                  int ch, int out_h, int out_w, int k_h, int k_w, int stride_h,
                                  int stride_w, int pad_top, int pad_left, int32_t act_min,
                                  int32_t act_max)
{
    int b, oy, ox, c, ky, kx;
    for (b = 0; b < batches; ++b) {
        for (oy = 0; oy < out_h; ++oy) {
            const int iy0 = oy * stride_h - pad_top;
            int ky0, ky1;
            mlk_window(iy0, k_h, 1, in_h, &ky0, &ky1);
            for (ox = 0; ox < out_w; ++ox) {
                const int ix0 = ox * stride_w - pad_left;
                int kx0, kx1;
                int8_t *yp = y + (((size_t)b * out_h + oy) * out_w + ox) * ch;
                mlk_window(ix0, k_w, 1, in_w, &kx0, &kx1);
                for (c = 0; c < ch; ++c) {
                    int32_t best = -128;
                    for (ky = ky0; ky < ky1; ++ky) {
                        const int8_t *xr =
                            x + (((size_t)b * in_h + (size_t)(iy0 + ky)) * in_w +
                                 (size_t)(ix0 + kx0)) * ch + c;
                        for (kx = kx0; kx < kx1; ++kx) {
                            const int32_t v = xr[(size_t)(kx - kx0) * ch];
                            best = v > best ? v : best;
                        }
                    }
                    yp[c] = (int8_t)mlk_clamp32(best, act_min, act_max);
                }
            }
        }
    }
}

/* mlk_max_pool2d_i8: the parameter record *p (a static const struct written by the C backend)
 * unpacked into the arguments of mlk_max_pool2d_i8_core. */
MLK_HOT void mlk_max_pool2d_i8(const mlk_max_pool2d_params *p, const int8_t *x, int8_t *y)
{
#if MLK_DSP_POOL
    mlk_dsp_max_pool2d_i8(x, y, p->batches, p->in_h, p->in_w, p->ch, p->out_h, p->out_w,
                          p->k_h, p->k_w, p->stride_h, p->stride_w, p->pad_top, p->pad_left,
                          p->act_min, p->act_max);
    return;
#endif
    mlk_max_pool2d_i8_core(x, y, p->batches, p->in_h, p->in_w, p->ch, p->out_h, p->out_w,
                           p->k_h, p->k_w, p->stride_h, p->stride_w, p->pad_top, p->pad_left,
                           p->act_min, p->act_max);
}

/* AVERAGE_POOL_2D: acc = sum over the in-image taps (+ fill for each border tap when
 * count_border), n = number of in-image taps (k_h*k_w when count_border),
 * y = clamp((acc > 0 ? acc + n/2 : acc - n/2) / n, act_min, act_max) with C division.
 * count_border = 1 reproduces an explicit border of value `fill` followed by a VALID pool. */
MLK_INLINE void mlk_avg_pool2d_i8_core(const int8_t *x, int8_t *y, int batches, int in_h, int in_w,
                                  int ch, int out_h, int out_w, int k_h, int k_w, int stride_h,
                                  int stride_w, int pad_top, int pad_left, int count_border,
                                  int32_t fill, int32_t act_min, int32_t act_max)
{
    int b, oy, ox, c, ky, kx;
    for (b = 0; b < batches; ++b) {
        for (oy = 0; oy < out_h; ++oy) {
            const int iy0 = oy * stride_h - pad_top;
            int ky0, ky1;
            mlk_window(iy0, k_h, 1, in_h, &ky0, &ky1);
            for (ox = 0; ox < out_w; ++ox) {
                const int ix0 = ox * stride_w - pad_left;
                int kx0, kx1, inside_taps, count;
                int32_t border;
                int8_t *yp = y + (((size_t)b * out_h + oy) * out_w + ox) * ch;
                mlk_window(ix0, k_w, 1, in_w, &kx0, &kx1);
                inside_taps = (ky1 - ky0) * (kx1 - kx0);
                count = count_border ? k_h * k_w : inside_taps;
                border = count_border ? fill * (k_h * k_w - inside_taps) : 0;
                for (c = 0; c < ch; ++c) {
                    int32_t acc = border;
                    int32_t avg;
                    for (ky = ky0; ky < ky1; ++ky) {
                        const int8_t *xr =
                            x + (((size_t)b * in_h + (size_t)(iy0 + ky)) * in_w +
                                 (size_t)(ix0 + kx0)) * ch + c;
                        for (kx = kx0; kx < kx1; ++kx) {
                            acc += xr[(size_t)(kx - kx0) * ch];
                        }
                    }
                    if (count == 0) {
                        avg = 0;
                    } else {
                        avg = (acc > 0 ? acc + count / 2 : acc - count / 2) / count;
                    }
                    yp[c] = (int8_t)mlk_clamp32(avg, act_min, act_max);
                }
            }
        }
    }
}

/* mlk_avg_pool2d_i8: the parameter record *p (a static const struct written by the C backend)
 * unpacked into the arguments of mlk_avg_pool2d_i8_core. */
MLK_HOT void mlk_avg_pool2d_i8(const mlk_avg_pool2d_params *p, const int8_t *x, int8_t *y)
{
    mlk_avg_pool2d_i8_core(x, y, p->batches, p->in_h, p->in_w, p->ch, p->out_h, p->out_w,
                           p->k_h, p->k_w, p->stride_h, p->stride_w, p->pad_top, p->pad_left,
                           p->count_border, p->fill, p->act_min, p->act_max);
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
