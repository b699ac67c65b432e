/* microlith_kernels_dsp_pool.h -- int8 MAX_POOL_2D for Cortex-M cores with the DSP extension
 * (see microlith_kernels_dsp.h: compiled only where MLK_DSP is 1; microlith_kernels_pool.h
 * calls it from the portable kernel). A header of its own rather than a part of
 * microlith_kernels_dsp_elementwise.h: that one needs the element-wise records, this one is
 * included by microlith_kernels_pool.h before its kernels.
 *
 * Four channels per 32-bit word: SSUB8(v, best) sets the GE flag of each byte lane where
 * v >= best and SEL(v, best) then takes v in those lanes and best in the others -- four
 * exact int8 maxima in two instructions. The clamp to [act_min, act_max] is the same pair
 * against words of act_min and act_max. The maximum of the same values: the same bytes.
 * Channels past the last multiple of four run the portable loop.
 */
#ifndef MICROLITH_KERNELS_DSP_POOL_H
#define MICROLITH_KERNELS_DSP_POOL_H

#include "microlith_kernels_dsp.h"
#include "microlith_kernels_conv.h" /* mlk_window */

#if MLK_DSP && !defined(MLK_PORTABLE_POOL)
#define MLK_DSP_POOL 1

/* The four lanes of a (v, w) lane-wise maximum. */
MLK_HOT int32_t mlk_dsp_max4(int32_t v, int32_t w)
{
    (void)__ssub8(v, w); /* GE[i] = v[i] >= w[i] */
    return (int32_t)__sel((uint32_t)v, (uint32_t)w);
}

MLK_HOT int32_t mlk_dsp_splat8(int32_t v)
{
    return (int32_t)((uint32_t)(uint8_t)v * 0x01010101u);
}

MLK_HOT void mlk_dsp_max_pool2d_i8(const int8_t *x, int8_t *y, int batches, int in_h, int in_w,
                                   int ch, int out_h, int out_w, int k_h, int k_w, int stride_h,
                                   int stride_w, int pad_top, int pad_left, int32_t act_min,
                                   int32_t act_max)
{
    const int32_t lo = mlk_dsp_splat8(act_min), hi = mlk_dsp_splat8(act_max);
    const int ch4 = ch & ~3;
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
                for (c = 0; c < ch4; c += 4) {
                    int32_t best = lo; /* max(-128, ...) then clamp below: max with act_min */
                    int32_t top;
                    for (ky = ky0; ky < ky1; ++ky) {
                        const int8_t *xr =
                            x + (((size_t)b * in_h + (size_t)(iy0 + ky)) * in_w +
                                 (size_t)(ix0 + kx0)) * ch + c;
                        for (kx = kx0; kx < kx1; ++kx) {
                            best = mlk_dsp_max4(mlk_ld32(xr + (size_t)(kx - kx0) * ch), best);
                        }
                    }
                    (void)__ssub8(best, hi); /* GE where best >= act_max */
                    top = (int32_t)__sel((uint32_t)hi, (uint32_t)best);
                    mlk_st32(yp + c, top);
                }
                for (c = ch4; c < ch; ++c) {
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

#else
#define MLK_DSP_POOL 0
#endif /* MLK_DSP */

#endif /* MICROLITH_KERNELS_DSP_POOL_H */
