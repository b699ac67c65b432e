/* microlith_kernels_data.h -- data movement (see microlith_kernels.h). */
#ifndef MICROLITH_KERNELS_DATA_H
#define MICROLITH_KERNELS_DATA_H

#include "microlith_kernels_common.h"

/* Parameter records, written by the C backend as static const structs. */
typedef struct {
    int d0;
    int d1;
    int d2;
    int d3;
    int b0;
    int b1;
    int b2;
    int b3;
    int o0;
    int o1;
    int o2;
    int o3;
    int8_t value;
} mlk_pad_params;

typedef struct {
    int outer;
    int in_inner;
    int out_inner;
    int offset;
} mlk_concat_params;

typedef struct {
    int outer;
    int in_inner;
    int out_inner;
    int offset;
} mlk_split_params;

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
} mlk_transpose_params;

/* =================================================================== data movement */

/* PAD (4-D): y[o0][o1][o2][o3] = x[o0 - b0][o1 - b1][o2 - b2][o3 - b3] inside the input
 * ([d0][d1][d2][d3]), `value` elsewhere. */
MLK_INLINE void mlk_pad_i8_core(const int8_t *x, int8_t *y, int d0, int d1, int d2, int d3, int b0,
                           int b1, int b2, int b3, int o0, int o1, int o2, int o3, int8_t value)
{
    int i0, i1, i2;
    const int after3 = o3 - b3 - d3;
    for (i0 = 0; i0 < o0; ++i0) {
        for (i1 = 0; i1 < o1; ++i1) {
            for (i2 = 0; i2 < o2; ++i2) {
                int8_t *row = y + (((size_t)i0 * o1 + i1) * o2 + i2) * o3;
                const int s0 = i0 - b0, s1 = i1 - b1, s2 = i2 - b2;
                if (s0 < 0 || s0 >= d0 || s1 < 0 || s1 >= d1 || s2 < 0 || s2 >= d2) {
                    memset(row, value, (size_t)o3);
                    continue;
                }
                memset(row, value, (size_t)b3);
                memcpy(row + b3, x + (((size_t)s0 * d1 + s1) * d2 + s2) * d3, (size_t)d3);
                memset(row + b3 + d3, value, (size_t)after3);
            }
        }
    }
}

/* mlk_pad_i8: the parameter record *p (a static const struct written by the C backend)
 * unpacked into the arguments of mlk_pad_i8_core. */
MLK_HOT void mlk_pad_i8(const mlk_pad_params *p, const int8_t *x, int8_t *y)
{
    mlk_pad_i8_core(x, y, p->d0, p->d1, p->d2, p->d3, p->b0, p->b1, p->b2, p->b3, p->o0, p->o1,
                    p->o2, p->o3, p->value);
}

/* CONCATENATION, one input: y[o][offset + i] = x[o][i] for o < outer, i < in_inner
 * (rows of out_inner in y). */
MLK_INLINE void mlk_concat_i8_core(const int8_t *x, int8_t *y, int outer, int in_inner,
                              int out_inner, int offset)
{
    int o;
    for (o = 0; o < outer; ++o) {
        memcpy(y + (size_t)o * out_inner + offset, x + (size_t)o * in_inner, (size_t)in_inner);
    }
}

/* mlk_concat_i8: the parameter record *p (a static const struct written by the C backend)
 * unpacked into the arguments of mlk_concat_i8_core. */
MLK_HOT void mlk_concat_i8(const mlk_concat_params *p, const int8_t *x, int8_t *y)
{
    mlk_concat_i8_core(x, y, p->outer, p->in_inner, p->out_inner, p->offset);
}

/* SPLIT / SPLIT_V, one output: y[o][i] = x[o][offset + i] for o < outer, i < out_inner
 * (rows of in_inner in x). */
MLK_INLINE void mlk_split_i8_core(const int8_t *x, int8_t *y, int outer, int in_inner,
                             int out_inner, int offset)
{
    int o;
    for (o = 0; o < outer; ++o) {
        memcpy(y + (size_t)o * out_inner, x + (size_t)o * in_inner + offset, (size_t)out_inner);
    }
}

/* mlk_split_i8: the parameter record *p (a static const struct written by the C backend)
 * unpacked into the arguments of mlk_split_i8_core. */
MLK_HOT void mlk_split_i8(const mlk_split_params *p, const int8_t *x, int8_t *y)
{
    mlk_split_i8_core(x, y, p->outer, p->in_inner, p->out_inner, p->offset);
}

/* TRANSPOSE (up to 6-D): y is [n0]..[n5] contiguous, y[i0..i5] = x[sum ik * sk]. */
MLK_INLINE void mlk_transpose_i8_core(const int8_t *x, int8_t *y, int n0, int n1, int n2, int n3,
                                 int n4, int n5, int s0, int s1, int s2, int s3, int s4, int s5)
{
    int i0, i1, i2, i3, i4, i5;
    for (i0 = 0; i0 < n0; ++i0) {
        for (i1 = 0; i1 < n1; ++i1) {
            for (i2 = 0; i2 < n2; ++i2) {
                for (i3 = 0; i3 < n3; ++i3) {
                    for (i4 = 0; i4 < n4; ++i4) {
                        const int8_t *xp = x + (size_t)i0 * s0 + (size_t)i1 * s1 +
                                           (size_t)i2 * s2 + (size_t)i3 * s3 + (size_t)i4 * s4;
                        for (i5 = 0; i5 < n5; ++i5) {
                            *y++ = xp[(size_t)i5 * s5];
                        }
                    }
                }
            }
        }
    }
}

/* mlk_transpose_i8: the parameter record *p (a static const struct written by the C backend)
 * unpacked into the arguments of mlk_transpose_i8_core. */
MLK_HOT void mlk_transpose_i8(const mlk_transpose_params *p, const int8_t *x, int8_t *y)
{
    mlk_transpose_i8_core(x, y, p->n0, p->n1, p->n2, p->n3, p->n4, p->n5, p->s0, p->s1, p->s2,
                          p->s3, p->s4, p->s5);
}

/* RESHAPE when not aliased: the bytes unchanged. */
MLK_INLINE void mlk_copy(void *y, const void *x, size_t nbytes)
{
    if (y != x) {
        memmove(y, x, nbytes);
    }
}

#endif /* MICROLITH_KERNELS_DATA_H */
