/* microlith_kernels_select.h -- DIV, strided copies (STRIDED_SLICE), GATHER and the
 * reductions REDUCE_MAX / REDUCE_MIN / SUM (see microlith_kernels.h). */
#ifndef MICROLITH_KERNELS_SELECT_H
#define MICROLITH_KERNELS_SELECT_H

#include "microlith_kernels_common.h"

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
} mlk_div_params;

typedef struct {
    int n0;
    int n1;
    int n2;
    int n3;
    int n4;
    int n5;
    int s0;
    int s1;
    int s2;
    int s3;
    int s4;
    int s5;
    int offset;
} mlk_strided_copy_params;

typedef struct {
    int outer;
    int count;
    int inner;
    int dim;
    const int32_t *indices;
} mlk_gather_params;

typedef struct {
    int outer;
    int reduce;
    int inner;
    int kind; /* 0 min, 1 max, 2 sum */
    int32_t x_zp;
    int32_t mult;
    int32_t shift;
    int32_t y_zp;
} mlk_reduce_params;

typedef struct {
    int outer;
    int n;
    int inner;
    int is_max;
} mlk_arg_params;

/* CountLeadingSignBits of an int32 (31 for 0 and -1). */
MLK_INLINE int mlk_clsb32(int32_t x)
{
    const uint32_t u = (uint32_t)x ^ (x < 0 ? 0xFFFFFFFFu : 0u);
    return mlk_clz32(u) - 1;
}

/* RoundingDivideByPOT for exponents 0..63 as TFLite-Micro's x86 build computes it: mask
 * int32(2^e - 1) (-1 from e = 32 on) and an arithmetic shift by e mod 32. */
MLK_INLINE int32_t mlk_rdbp_wide(int32_t x, int e)
{
    const int32_t mask = e >= 32 ? -1 : (int32_t)(((uint32_t)1 << e) - 1u);
    const int32_t threshold = mlk_asr(mask, 1) + (x < 0 ? 1 : 0);
    return mlk_asr(x, e & 31) + ((x & mask) > threshold ? 1 : 0);
}

/* DIV: a' = a - a_zp, b' = b - b_zp (both negated when b' < 0); r = 1/b' by GetReciprocal
 * (e bits over unit); h = CLSB(a'); q = SRDHM(a' 2^h, r);
 * y = clamp(y_zp + RDBP(SRDHM(q, mult), h + e - shift)); b' = 0 gives y_zp. */
MLK_HOT int8_t mlk_div_elem(int32_t a, int32_t b, const mlk_div_params *p)
{
    int bits, headroom, total;
    int32_t inverse, quotient, v;
    if (b == 0) {
        return mlk_out_i8(0, p->y_zp, p->act_min, p->act_max);
    }
    if (b < 0) {
        a = -a;
        b = -b;
    }
    inverse = mlk_get_reciprocal(b, 31, &bits);
    headroom = mlk_clsb32(a);
    quotient = mlk_srdhm(mlk_i32((uint32_t)a << headroom), inverse);
    total = headroom + bits - (int)p->shift;
    total = total < 0 ? 0 : (total > 63 ? 63 : total);
    v = mlk_rdbp_wide(mlk_srdhm(quotient, p->mult), total);
    return mlk_out_i8(v, p->y_zp, p->act_min, p->act_max);
}

MLK_HOT void mlk_div_i8(const mlk_div_params *p, const int8_t *a, const int8_t *b, int8_t *y)
{
    int i0, i1, i2, i3;
    for (i0 = 0; i0 < p->n0; ++i0) {
        for (i1 = 0; i1 < p->n1; ++i1) {
            for (i2 = 0; i2 < p->n2; ++i2) {
                const int8_t *ar = a + (size_t)i0 * p->as0 + (size_t)i1 * p->as1 +
                                   (size_t)i2 * p->as2;
                const int8_t *br = b + (size_t)i0 * p->bs0 + (size_t)i1 * p->bs1 +
                                   (size_t)i2 * p->bs2;
                for (i3 = 0; i3 < p->n3; ++i3) {
                    *y++ = mlk_div_elem((int32_t)ar[(size_t)i3 * p->as3] - p->a_zp,
                                        (int32_t)br[(size_t)i3 * p->bs3] - p->b_zp, p);
                }
            }
        }
    }
}

/* STRIDED_SLICE (up to 6-D): y is [n0]..[n5] contiguous, y[i0..i5] = x[offset + sum ik*sk]
 * (negative strides allowed). */
MLK_HOT void mlk_strided_copy_i8(const mlk_strided_copy_params *p, const int8_t *x, int8_t *y)
{
    int i0, i1, i2, i3, i4, i5;
    for (i0 = 0; i0 < p->n0; ++i0) {
        for (i1 = 0; i1 < p->n1; ++i1) {
            for (i2 = 0; i2 < p->n2; ++i2) {
                for (i3 = 0; i3 < p->n3; ++i3) {
                    for (i4 = 0; i4 < p->n4; ++i4) {
                        const long base = (long)p->offset + (long)i0 * p->s0 +
                                          (long)i1 * p->s1 + (long)i2 * p->s2 +
                                          (long)i3 * p->s3 + (long)i4 * p->s4;
                        for (i5 = 0; i5 < p->n5; ++i5) {
                            *y++ = x[base + (long)i5 * p->s5];
                        }
                    }
                }
            }
        }
    }
}

/* GATHER (constant indices along one axis): x is [outer][dim][inner], y is
 * [outer][count][inner], y[o][j] = x[o][indices[j]]. */
MLK_HOT void mlk_gather_i8(const mlk_gather_params *p, const int8_t *x, int8_t *y)
{
    int o, j;
    for (o = 0; o < p->outer; ++o) {
        for (j = 0; j < p->count; ++j) {
            memcpy(y, x + ((size_t)o * p->dim + (size_t)p->indices[j]) * p->inner,
                   (size_t)p->inner);
            y += p->inner;
        }
    }
}

/* ARG_MAX / ARG_MIN over the middle axis of x = [outer][n][inner]: the index of the first
 * maximum / minimum of the int8 values (a later equal value does not replace it). */
MLK_HOT void mlk_arg_i8(const mlk_arg_params *p, const int8_t *x, int32_t *y)
{
    int o, r, i;
    for (o = 0; o < p->outer; ++o) {
        for (i = 0; i < p->inner; ++i) {
            const int8_t *xp = x + (size_t)o * p->n * p->inner + i;
            int8_t best = xp[0];
            int32_t index = 0;
            for (r = 1; r < p->n; ++r) {
                const int8_t v = xp[(size_t)r * p->inner];
                if (p->is_max ? v > best : v < best) {
                    best = v;
                    index = r;
                }
            }
            *y++ = index;
        }
    }
}

/* REDUCE_MIN / REDUCE_MAX / SUM over the middle axis of x = [outer][reduce][inner]:
 * min / max of the int8 values, or clamp(y_zp + MBQM(sum - x_zp * reduce, mult, shift)). */
MLK_HOT void mlk_reduce_i8(const mlk_reduce_params *p, const int8_t *x, int8_t *y)
{
    int o, r, i;
    for (o = 0; o < p->outer; ++o) {
        for (i = 0; i < p->inner; ++i) {
            const int8_t *xp = x + (size_t)o * p->reduce * p->inner + i;
            int32_t acc = p->kind == 2 ? 0 : xp[0];
            for (r = 0; r < p->reduce; ++r) {
                const int32_t v = xp[(size_t)r * p->inner];
                if (p->kind == 2) {
                    acc += v;
                } else if (p->kind == 1 ? v > acc : v < acc) {
                    acc = v;
                }
            }
            if (p->kind == 2) {
                acc = mlk_mbqm(mlk_wrap_sub(acc, p->x_zp * p->reduce), p->mult, (int)p->shift);
                *y++ = mlk_out_i8(acc, p->y_zp, -128, 127);
            } else {
                *y++ = (int8_t)acc;
            }
        }
    }
}

typedef struct {
    int batches;
    int in_h;
    int in_w;
    int channels;
    int out_h;
    int out_w;
    int bilinear;
    const int32_t *rows; /* per output row: lo, hi, d (3 entries) */
    const int32_t *cols; /* per output column: lo, hi, d */
} mlk_resize_params;

/* RESIZE_NEAREST_NEIGHBOR (bilinear = 0): y[b][o][p] = x[b][rows[3o]][cols[3p]].
 * RESIZE_BILINEAR: acc = sum of the four taps weighted (2^10 - dy | dy)(2^10 - dx | dx) in
 * int64, y = (acc +- 2^19) / 2^20 truncated (ResizeBilinearInteger). */
MLK_HOT void mlk_resize_i8(const mlk_resize_params *p, const int8_t *x, int8_t *y)
{
    int b, o, q, c;
    const int64_t one = 1 << 10;
    for (b = 0; b < p->batches; ++b) {
        const int8_t *xb = x + (size_t)b * p->in_h * p->in_w * p->channels;
        for (o = 0; o < p->out_h; ++o) {
            const int32_t y0 = p->rows[3 * o], y1 = p->rows[3 * o + 1];
            const int64_t dy = p->rows[3 * o + 2];
            for (q = 0; q < p->out_w; ++q) {
                const int32_t x0 = p->cols[3 * q], x1 = p->cols[3 * q + 1];
                const int64_t dx = p->cols[3 * q + 2];
                const int8_t *a = xb + ((size_t)y0 * p->in_w + (size_t)x0) * p->channels;
                if (!p->bilinear) {
                    memcpy(y, a, (size_t)p->channels);
                    y += p->channels;
                    continue;
                }
                {
                    const int8_t *bl = xb + ((size_t)y1 * p->in_w + (size_t)x0) * p->channels;
                    const int8_t *ar = xb + ((size_t)y0 * p->in_w + (size_t)x1) * p->channels;
                    const int8_t *br = xb + ((size_t)y1 * p->in_w + (size_t)x1) * p->channels;
                    for (c = 0; c < p->channels; ++c) {
                        const int64_t acc = a[c] * (one - dy) * (one - dx) +
                                            bl[c] * dy * (one - dx) + ar[c] * (one - dy) * dx +
                                            br[c] * dy * dx;
                        const int64_t r = acc + (acc > 0 ? (1 << 19) : -(1 << 19));
                        *y++ = (int8_t)(r / ((int64_t)1 << 20));
                    }
                }
            }
        }
    }
}

typedef struct {
    int batches;
    int a_batch_stride; /* 0: the left operand is broadcast over the batches */
    int b_batch_stride;
    int m;
    int k;
    int n;
    int32_t a_zp;
    int32_t b_zp;
    int32_t mult;
    int32_t shift;
    int32_t y_zp;
} mlk_batch_matmul_params;

/* BATCH_MATMUL: y[t][i][j] = clamp(y_zp + MBQM(sum_k (a[t][i][k] - a_zp)(b[t][k][j] - b_zp),
 * mult, shift)), a [m][k] and b [k][n] per batch t. */
MLK_HOT void mlk_batch_matmul_i8(const mlk_batch_matmul_params *p, const int8_t *a,
                                 const int8_t *b, int8_t *y)
{
    int t, i, j, q;
    for (t = 0; t < p->batches; ++t) {
        const int8_t *at = a + (size_t)t * p->a_batch_stride;
        const int8_t *bt = b + (size_t)t * p->b_batch_stride;
        for (i = 0; i < p->m; ++i) {
            for (j = 0; j < p->n; ++j) {
                int32_t acc = 0;
                for (q = 0; q < p->k; ++q) {
                    acc += ((int32_t)at[(size_t)i * p->k + q] - p->a_zp) *
                           ((int32_t)bt[(size_t)q * p->n + j] - p->b_zp);
                }
                *y++ = mlk_out_i8(mlk_mbqm(acc, p->mult, (int)p->shift), p->y_zp, -128, 127);
            }
        }
    }
}

typedef struct {
    int batches;
    int in_h;
    int in_w;
    int in_c;
    int out_h;
    int out_w;
    int out_c;
    int k_h;
    int k_w;
    int stride_h;
    int stride_w;
    int32_t x_zp;
    int32_t y_zp;
    int32_t act_min;
    int32_t act_max;
    const int8_t *weights; /* [out_c][k_h][k_w][in_c] */
    const int32_t *bias;
    const int32_t *mult;
    const int32_t *shift;
} mlk_transpose_conv_params;

/* TRANSPOSE_CONV (VALID): y[b][oy][ox][o] = clamp(y_zp + MBQM(bias[o] + sum over the taps
 * (fy, fx) with oy = iy*stride_h + fy, ox = ix*stride_w + fx inside the input of
 * sum_i (x[b][iy][ix][i] - x_zp) w[o][fy][fx][i], mult[o], shift[o])); the sum gathered per
 * output (TFLite-Micro scatters into an int32 buffer: the same int32 total). */
MLK_HOT void mlk_transpose_conv_i8(const mlk_transpose_conv_params *p, const int8_t *x,
                                   int8_t *y)
{
    int b, oy, ox, o, fy, fx, i;
    for (b = 0; b < p->batches; ++b) {
        const int8_t *xb = x + (size_t)b * p->in_h * p->in_w * p->in_c;
        for (oy = 0; oy < p->out_h; ++oy) {
            for (ox = 0; ox < p->out_w; ++ox) {
                for (o = 0; o < p->out_c; ++o) {
                    uint32_t acc = (uint32_t)p->bias[o];
                    for (fy = 0; fy < p->k_h; ++fy) {
                        const int ty = oy - fy;
                        if (ty < 0 || ty % p->stride_h || ty / p->stride_h >= p->in_h) {
                            continue;
                        }
                        for (fx = 0; fx < p->k_w; ++fx) {
                            const int tx = ox - fx;
                            const int8_t *xp, *wp;
                            if (tx < 0 || tx % p->stride_w || tx / p->stride_w >= p->in_w) {
                                continue;
                            }
                            xp = xb + ((size_t)(ty / p->stride_h) * p->in_w +
                                       (size_t)(tx / p->stride_w)) * p->in_c;
                            wp = p->weights + (((size_t)o * p->k_h + fy) * p->k_w + fx) * p->in_c;
                            for (i = 0; i < p->in_c; ++i) {
                                acc += (uint32_t)(((int32_t)xp[i] - p->x_zp) * (int32_t)wp[i]);
                            }
                        }
                    }
                    *y++ = mlk_out_i8(mlk_mbqm(mlk_i32(acc), p->mult[o], (int)p->shift[o]),
                                      p->y_zp, p->act_min, p->act_max);
                }
            }
        }
    }
}

#endif /* MICROLITH_KERNELS_SELECT_H */
