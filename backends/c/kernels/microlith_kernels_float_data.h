/*
 * microlith_kernels_float_data.h -- float32 data-movement, selection, reduction, batched
 * matmul and resize kernels of the float C target (included by microlith_kernels.h after
 * microlith_kernels_float.h; single precision only, no libm, y disjoint from the inputs).
 *
 * SPLIT / SPLIT_V (one call per output): y[o][i] = x[o][offset + i], rows of in_inner.
 * STRIDED_SLICE: y[i0..i5] = x[offset + sum ik sk] (merged loops, steps may be negative).
 * GATHER: y[o][j][i] = x[o][indices[j]][i] (indices already in [0, dim)).
 * ARG_MAX / ARG_MIN over [outer][n][inner]: the index of the first extremum (int32 or
 * int64 output; a NaN never compares, so unlike numpy it is not returned: finite inputs).
 * REDUCE_MAX / REDUCE_MIN / SUM over [outer][reduce][inner] (kind 1 / 0 / 2): the
 * extremum, or the float sum in index order.
 * BATCH_MATMUL: y[b] = a[b] @ b[b], [m][k] @ [k][n], a batch stride of 0 broadcasts.
 * RESIZE (NHWC): per output row / column the two taps lo, hi and the weight w of hi
 * (nearest: lo == hi, w == 0, wl == 1), tabled by the compiler from the interpreter's
 * coordinate maths; y = (x[lo_h][lo_w] wl_h + x[hi_h][lo_w] w_h) wl_w
 *                     + (x[lo_h][hi_w] wl_h + x[hi_h][hi_w] w_h) w_w, wl = 1 - w
 * (the interpreter's order: rows first, then columns).
 * TRANSPOSE_CONV (VALID, weights [out_c][k_h][k_w][in_c]):
 *     y[n][oy][ox][o] = bias[o] + sum x[n][iy][ix][i] w[o][ky][kx][i]
 * over oy = iy stride_h + ky, ox = ix stride_w + kx, then the activation clamp.
 */
#ifndef MICROLITH_KERNELS_FLOAT_DATA_H
#define MICROLITH_KERNELS_FLOAT_DATA_H

#include "microlith_kernels_float.h"

typedef struct {
    int32_t outer, in_inner, out_inner, offset;
} mlk_split_f_params;

static inline void mlk_split_f32(const mlk_split_f_params *p, const float *x, float *y)
{
    int32_t i;
    for (i = 0; i < p->outer; ++i)
        memcpy(y + i * p->out_inner, x + i * p->in_inner + p->offset,
               (size_t)p->out_inner * sizeof(float));
}

typedef struct {
    int32_t n0, n1, n2, n3, n4, n5, s0, s1, s2, s3, s4, s5, offset;
} mlk_strided_copy_f_params;

static inline void mlk_strided_copy_f32(const mlk_strided_copy_f_params *p, const float *x,
                                        float *y)
{
    int32_t i0, i1, i2, i3, i4, i5;
    for (i0 = 0; i0 < p->n0; ++i0)
        for (i1 = 0; i1 < p->n1; ++i1)
            for (i2 = 0; i2 < p->n2; ++i2)
                for (i3 = 0; i3 < p->n3; ++i3)
                    for (i4 = 0; i4 < p->n4; ++i4) {
                        const float *xp = x + p->offset + i0 * p->s0 + i1 * p->s1 +
                                          i2 * p->s2 + i3 * p->s3 + i4 * p->s4;
                        for (i5 = 0; i5 < p->n5; ++i5) *y++ = xp[i5 * p->s5];
                    }
}

typedef struct {
    int32_t outer, count, inner, dim;
    const int32_t *indices;
} mlk_gather_f_params;

static inline void mlk_gather_f32(const mlk_gather_f_params *p, const float *x, float *y)
{
    int32_t o, j;
    for (o = 0; o < p->outer; ++o)
        for (j = 0; j < p->count; ++j) {
            memcpy(y, x + (o * p->dim + p->indices[j]) * p->inner,
                   (size_t)p->inner * sizeof(float));
            y += p->inner;
        }
}

typedef struct {
    int32_t outer, n, inner, is_max;
} mlk_arg_f_params;

static inline int32_t mlk_arg_f32_at(const mlk_arg_f_params *p, const float *x, int32_t o,
                                     int32_t i)
{
    const float *xp = x + o * p->n * p->inner + i;
    float best = xp[0];
    int32_t k, at = 0;
    for (k = 1; k < p->n; ++k) {
        const float v = xp[k * p->inner];
        if (p->is_max ? v > best : v < best) {
            best = v;
            at = k;
        }
    }
    return at;
}

static inline void mlk_arg_f32(const mlk_arg_f_params *p, const float *x, int32_t *y)
{
    int32_t o, i;
    for (o = 0; o < p->outer; ++o)
        for (i = 0; i < p->inner; ++i) *y++ = mlk_arg_f32_at(p, x, o, i);
}

static inline void mlk_arg_f32_i64(const mlk_arg_f_params *p, const float *x, int64_t *y)
{
    int32_t o, i;
    for (o = 0; o < p->outer; ++o)
        for (i = 0; i < p->inner; ++i) *y++ = (int64_t)mlk_arg_f32_at(p, x, o, i);
}

typedef struct {
    int32_t outer, reduce, inner, kind; /* kind: 0 min, 1 max, 2 sum */
} mlk_reduce_f_params;

static inline void mlk_reduce_f32(const mlk_reduce_f_params *p, const float *x, float *y)
{
    int32_t o, r, i;
    for (o = 0; o < p->outer; ++o)
        for (i = 0; i < p->inner; ++i) {
            const float *xp = x + o * p->reduce * p->inner + i;
            float acc = p->kind == 2 ? 0.0f : xp[0];
            for (r = p->kind == 2 ? 0 : 1; r < p->reduce; ++r) {
                const float v = xp[r * p->inner];
                if (p->kind == 2) acc += v;
                else if (p->kind == 1 ? v > acc : v < acc) acc = v;
            }
            *y++ = acc;
        }
}

typedef struct {
    int32_t batches, a_batch_stride, b_batch_stride, m, k, n;
} mlk_batch_matmul_f_params;

static inline void mlk_batch_matmul_f32(const mlk_batch_matmul_f_params *p, const float *a,
                                        const float *b, float *y)
{
    int32_t t, i, j, l;
    for (t = 0; t < p->batches; ++t) {
        const float *at = a + t * p->a_batch_stride, *bt = b + t * p->b_batch_stride;
        for (i = 0; i < p->m; ++i)
            for (j = 0; j < p->n; ++j) {
                float acc = 0.0f;
                for (l = 0; l < p->k; ++l) acc += at[i * p->k + l] * bt[l * p->n + j];
                *y++ = acc;
            }
    }
}

typedef struct {
    int32_t batches, in_h, in_w, channels, out_h, out_w;
    const int32_t *rows;  /* [out_h][2]: lo, hi */
    const float *row_w;   /* [out_h][2]: 1 - w, w */
    const int32_t *cols;  /* [out_w][2] */
    const float *col_w;   /* [out_w][2] */
} mlk_resize_f_params;

static inline void mlk_resize_f32(const mlk_resize_f_params *p, const float *x, float *y)
{
    int32_t n, oy, ox, c;
    const int32_t row = p->in_w * p->channels;
    for (n = 0; n < p->batches; ++n) {
        const float *xb = x + n * p->in_h * row;
        for (oy = 0; oy < p->out_h; ++oy) {
            const float *lo = xb + p->rows[2 * oy] * row, *hi = xb + p->rows[2 * oy + 1] * row;
            const float wl = p->row_w[2 * oy], wh = p->row_w[2 * oy + 1];
            for (ox = 0; ox < p->out_w; ++ox) {
                const int32_t c0 = p->cols[2 * ox] * p->channels;
                const int32_t c1 = p->cols[2 * ox + 1] * p->channels;
                const float vl = p->col_w[2 * ox], vh = p->col_w[2 * ox + 1];
                for (c = 0; c < p->channels; ++c) {
                    const float t0 = lo[c0 + c] * wl + hi[c0 + c] * wh;
                    const float t1 = lo[c1 + c] * wl + hi[c1 + c] * wh;
                    *y++ = t0 * vl + t1 * vh;
                }
            }
        }
    }
}

typedef struct {
    int32_t batches, in_h, in_w, in_c, out_h, out_w, out_c, k_h, k_w, stride_h, stride_w;
    float act_min, act_max;
    const float *w;    /* [out_c][k_h][k_w][in_c] */
    const float *bias; /* [out_c] or NULL */
} mlk_transpose_conv_f_params;

static inline void mlk_transpose_conv_f32(const mlk_transpose_conv_f_params *p, const float *x,
                                          float *y)
{
    int32_t n, iy, ix, ky, kx, o, i, e;
    const int32_t out_plane = p->out_h * p->out_w * p->out_c;
    for (n = 0; n < p->batches; ++n) {
        float *yb = y + n * out_plane;
        for (e = 0; e < out_plane; ++e) yb[e] = p->bias ? p->bias[e % p->out_c] : 0.0f;
        for (iy = 0; iy < p->in_h; ++iy)
            for (ix = 0; ix < p->in_w; ++ix) {
                const float *xp = x + ((n * p->in_h + iy) * p->in_w + ix) * p->in_c;
                for (ky = 0; ky < p->k_h; ++ky) {
                    const int32_t oy = iy * p->stride_h + ky;
                    if (oy >= p->out_h) continue;
                    for (kx = 0; kx < p->k_w; ++kx) {
                        const int32_t ox = ix * p->stride_w + kx;
                        float *yp;
                        if (ox >= p->out_w) continue;
                        yp = yb + (oy * p->out_w + ox) * p->out_c;
                        for (o = 0; o < p->out_c; ++o) {
                            const float *wp = p->w + ((o * p->k_h + ky) * p->k_w + kx) * p->in_c;
                            float acc = 0.0f;
                            for (i = 0; i < p->in_c; ++i) acc += xp[i] * wp[i];
                            yp[o] += acc;
                        }
                    }
                }
            }
        for (e = 0; e < out_plane; ++e)
            yb[e] = yb[e] < p->act_min ? p->act_min : yb[e] > p->act_max ? p->act_max : yb[e];
    }
}

#endif /* MICROLITH_KERNELS_FLOAT_DATA_H */
