/* The float32 backward kernels of pointwise convs, register-blocked: a block of BLOCK independent
 * output elements (pixels or channels) is computed together, so an operand loaded once (a weight,
 * a gradient, an input value) serves the whole block from registers, and each element's
 * accumulator stays in a register across the reduction. Every element still sees the float
 * operations of the plain loop in the same order (host_tools/reference/oracle.py repeats them),
 * separately rounded; blocks of independent elements are also what GCC vectorizes on x86-64, and
 * where it leaves them scalar, mct_backward_pw_sse2.h's SSE2 loops take them. The int8 weights are
 * converted to float once per chunk onto the stack, not once per use. */
#include "mct_backward_pw_f32.h"
#include "mct_requant.h"     /* MCT_HOT */
#include "mct_mla_f32.h"
#include "mct_backward_vldm_f32.h"
#include "mct_backward_pw_sse2.h"

#define BLOCK 8u


void mct_pw_input_grad_f32(uint32_t hw, uint32_t n_in, const int8_t *w, const float *g, float wscale,
    float *gin) {
    float wf[MCT_BWD_CHUNK];
    for (uint32_t c0 = 0; c0 < n_in; c0 += MCT_BWD_CHUNK) {
        const uint32_t n = n_in - c0 < MCT_BWD_CHUNK ? n_in - c0 : MCT_BWD_CHUNK;
        float *gc = gin + (size_t)c0 * hw;
        for (uint32_t j = 0; j < n; j++) {
            wf[j] = (float)w[c0 + j];
        }
        uint32_t p = 0;
        for (; p + BLOCK <= hw; p += BLOCK) {
            float s[BLOCK];           /* g * w_scale of the block's pixels, in registers */
MCT_UNROLL(8)
            for (uint32_t i = 0; i < BLOCK; i++) {
                s[i] = g[p + i] * wscale;
            }
            for (uint32_t j = 0; j < n; j++) {
                float *q = gc + (size_t)j * hw + p;
                const float wj = wf[j];
MCT_UNROLL(8)
                for (uint32_t i = 0; i < BLOCK; i++) {
                    q[i] = mct_mla_f32(q[i], wj, s[i]);
                }
            }
        }
        for (; p < hw; p++) {
            const float s = g[p] * wscale;
            for (uint32_t j = 0; j < n; j++) {
                gc[(size_t)j * hw + p] = mct_mla_f32(gc[(size_t)j * hw + p], wf[j], s);
            }
        }
    }
}

/* Column e of rows [o0, o0 + n) of the weights as floats, wf0[j * step] = W[o0 + j][e], and column e + 1
 * into wf1 unless NULL: a pointer steps down the rows (those in SRAM, then those in Flash). */
MCT_HOT void weight_columns(const mct_rows_t *w, uint32_t o0, uint32_t n, uint32_t e, float *wf0, float *wf1,
    uint32_t step) {
    const uint32_t in_sram = o0 >= w->n_sram ? 0 : (w->n_sram - o0 < n ? w->n_sram - o0 : n);
    for (uint32_t j0 = 0, j1 = in_sram; j0 < n; j0 = j1, j1 = n) {
        const int8_t *p = mct_row(w, o0 + j0) + e;
MCT_UNROLL(4)
        for (uint32_t j = j0; j < j1; j++, p += w->row_len) {
            wf0[j * step] = (float)p[0];
            if (wf1 != NULL) {
                wf1[j * step] = (float)p[1];
            }
        }
    }
}

/* acc[p] += wf[j] * (g[j][p] * ws[j]) (ws NULL: * g[j][p]) for j < n in order, p < hw. */
static void col_chunk(uint32_t hw, uint32_t n, const float *wf, const float *g, const float *ws, float *acc) {
    uint32_t p = 0;
    for (; p + BLOCK <= hw; p += BLOCK) {
        float a[BLOCK];
MCT_UNROLL(8)
        for (uint32_t i = 0; i < BLOCK; i++) {
            a[i] = acc[p + i];
        }
        const float *gp = g + p;
        if (ws != NULL) {
            for (uint32_t j = 0; j < n; j++, gp += hw) {
                const float wj = wf[j], sj = ws[j];
MCT_UNROLL(8)
                for (uint32_t i = 0; i < BLOCK; i++) {
                    a[i] = mct_mla_f32(a[i], wj, gp[i] * sj);
                }
            }
        } else {
            for (uint32_t j = 0; j < n; j++, gp += hw) {
                const float wj = wf[j];
MCT_UNROLL(8)
                for (uint32_t i = 0; i < BLOCK; i++) {
                    a[i] = mct_mla_f32(a[i], wj, gp[i]);
                }
            }
        }
MCT_UNROLL(8)
        for (uint32_t i = 0; i < BLOCK; i++) {
            acc[p + i] = a[i];
        }
    }
    for (; p < hw; p++) {
        float a = acc[p];
        for (uint32_t j = 0; j < n; j++) {
            const float v = g[(size_t)j * hw + p];
            a = mct_mla_f32(a, wf[j], ws != NULL ? v * ws[j] : v);
        }
        acc[p] = a;
    }
}

void mct_pw_input_grad_col_f32(uint32_t hw, const mct_rows_t *w, uint32_t e, uint32_t o0, uint32_t o1,
    const float *g, const float *ws, float *acc) {
    float wf[MCT_BWD_CHUNK];
    for (uint32_t c0 = o0; c0 < o1; c0 += MCT_BWD_CHUNK) {
        const uint32_t n = o1 - c0 < MCT_BWD_CHUNK ? o1 - c0 : MCT_BWD_CHUNK;
        weight_columns(w, c0, n, e, wf, NULL, 1);
        col_chunk(hw, n, wf, g + (size_t)c0 * hw, ws != NULL ? ws + c0 : NULL, acc);
    }
}

void mct_pw_weight_grad_f32(uint32_t hw, uint32_t n, const int8_t *x, uint32_t stride, int32_t zero,
    const float *g, float *total) {
    uint32_t j = 0;
    for (; j + BLOCK <= n; j += BLOCK) {
        float a[BLOCK];
MCT_UNROLL(8)
        for (uint32_t i = 0; i < BLOCK; i++) {
            a[i] = 0.0f;
        }
        const int8_t *xp = x + j;
        for (uint32_t p = 0; p < hw; p++, xp += stride) {
            const float gp = g[p];
MCT_UNROLL(8)
            for (uint32_t i = 0; i < BLOCK; i++) {
                a[i] = mct_mla_f32(a[i], gp, (float)(xp[i] - zero));
            }
        }
MCT_UNROLL(8)
        for (uint32_t i = 0; i < BLOCK; i++) {
            total[j + i] = a[i];
        }
    }
    for (; j < n; j++) {
        float a = 0.0f;
        for (uint32_t p = 0; p < hw; p++) {
            a = mct_mla_f32(a, g[p], (float)(x[(size_t)p * stride + j] - zero));
        }
        total[j] = a;
    }
}

/* The same for two output channels at once (the fused block's pairs of expanded channels): each
 * gin element gets channel 0's product, then channel 1's, loaded and stored once. */
void mct_pw_input_grad2_f32(uint32_t hw, uint32_t n_in, const int8_t *w0, const int8_t *w1, const float *g0,
    const float *g1, float ws0, float ws1, float *gin) {
    float wf0[MCT_BWD_CHUNK], wf1[MCT_BWD_CHUNK];
    for (uint32_t c0 = 0; c0 < n_in; c0 += MCT_BWD_CHUNK) {
        const uint32_t n = n_in - c0 < MCT_BWD_CHUNK ? n_in - c0 : MCT_BWD_CHUNK;
        float *gc = gin + (size_t)c0 * hw;
        for (uint32_t j = 0; j < n; j++) {
            wf0[j] = (float)w0[c0 + j];
            wf1[j] = (float)w1[c0 + j];
        }
        uint32_t p = 0;
        for (; p + BLOCK <= hw; p += BLOCK) {
            float s0[BLOCK], s1[BLOCK];
MCT_UNROLL(8)
            for (uint32_t i = 0; i < BLOCK; i++) {
                s0[i] = g0[p + i] * ws0;
                s1[i] = g1[p + i] * ws1;
            }
            for (uint32_t j = 0; j < n; j++) {
                float *q = gc + (size_t)j * hw + p;
                const float a = wf0[j], b = wf1[j];
MCT_UNROLL(8)
                for (uint32_t i = 0; i < BLOCK; i++) {
                    q[i] = mct_mla_f32(mct_mla_f32(q[i], a, s0[i]), b, s1[i]);
                }
            }
        }
        for (; p < hw; p++) {
            const float s0 = g0[p] * ws0, s1 = g1[p] * ws1;
            for (uint32_t j = 0; j < n; j++) {
                float *q = gc + (size_t)j * hw + p;
                *q = mct_mla_f32(mct_mla_f32(*q, wf0[j], s0), wf1[j], s1);
            }
        }
    }
}

#ifndef MCT_VLDM_F32     /* on a Cortex-M7, the rows' loop is mct_vldm_col2_rows */
/* Two input channels' columns at once: acc0[p] += wf0[j] * g[j][p], acc1[p] += wf1[j] * g[j][p]
 * (times ws[j] first when ws is not NULL). */
static void col2_chunk(uint32_t hw, uint32_t n, const float *wf0, const float *wf1, const float *g, const float *ws,
    float *acc0, float *acc1) {
    uint32_t p = 0;
#if MCT_PW_SSE2
    for (; p + 8 <= hw; p += 8) {
        mct_sse2_col2_block8(acc0 + p, acc1 + p, wf0, wf1, g + p, ws, n, hw);
    }
#endif
    for (; p + BLOCK <= hw; p += BLOCK) {
        float a[BLOCK], b[BLOCK];
MCT_UNROLL(8)
        for (uint32_t i = 0; i < BLOCK; i++) {
            a[i] = acc0[p + i];
            b[i] = acc1[p + i];
        }
        const float *gp = g + p;
        if (ws != NULL) {
            for (uint32_t j = 0; j < n; j++, gp += hw) {
                const float u = wf0[j], v = wf1[j], sj = ws[j];
MCT_UNROLL(8)
                for (uint32_t i = 0; i < BLOCK; i++) {
                    const float t = gp[i] * sj;
                    a[i] = mct_mla_f32(a[i], u, t);
                    b[i] = mct_mla_f32(b[i], v, t);
                }
            }
        } else {
            for (uint32_t j = 0; j < n; j++, gp += hw) {
                const float u = wf0[j], v = wf1[j];
MCT_UNROLL(8)
                for (uint32_t i = 0; i < BLOCK; i++) {
                    a[i] = mct_mla_f32(a[i], u, gp[i]);
                    b[i] = mct_mla_f32(b[i], v, gp[i]);
                }
            }
        }
MCT_UNROLL(8)
        for (uint32_t i = 0; i < BLOCK; i++) {
            acc0[p + i] = a[i];
            acc1[p + i] = b[i];
        }
    }
    for (; p < hw; p++) {
        float a = acc0[p], b = acc1[p];
        for (uint32_t j = 0; j < n; j++) {
            const float v = g[(size_t)j * hw + p];
            const float t = ws != NULL ? v * ws[j] : v;
            a = mct_mla_f32(a, wf0[j], t);
            b = mct_mla_f32(b, wf1[j], t);
        }
        acc0[p] = a;
        acc1[p] = b;
    }
}
#endif

void mct_pw_input_grad_col2_f32(uint32_t hw, const mct_rows_t *w, uint32_t e, uint32_t o0, uint32_t o1,
    const float *g, const float *ws, float *acc0, float *acc1) {
#ifdef MCT_VLDM_F32
    float wq[3u * MCT_BWD_CHUNK];
#else
    float wf0[MCT_BWD_CHUNK], wf1[MCT_BWD_CHUNK];
#endif
    for (uint32_t c0 = o0; c0 < o1; c0 += MCT_BWD_CHUNK) {
        const uint32_t n = o1 - c0 < MCT_BWD_CHUNK ? o1 - c0 : MCT_BWD_CHUNK;
#ifdef MCT_VLDM_F32
        /* the rows' two weights (and w_scale) side by side, one VLDM per row */
        const uint32_t step = ws != NULL ? 3u : 2u;
        weight_columns(w, c0, n, e, wq, wq + 1, step);
        for (uint32_t j = 0; j < n && ws != NULL; j++) {
            wq[3u * j + 2u] = ws[c0 + j];
        }
        const float *gc = g + (size_t)c0 * hw;
        uint32_t p = 0;
        for (; p + 8 <= hw; p += 8) {
            if (ws != NULL) {
                mct_vldm_col2_rows_scaled(acc0 + p, acc1 + p, wq, gc + p, n, 4u * hw);
            } else {
                mct_vldm_col2_rows(acc0 + p, acc1 + p, wq, gc + p, n, 4u * hw);
            }
        }
        for (; p < hw; p++) {
            float a = acc0[p], b = acc1[p];
            for (uint32_t j = 0; j < n; j++) {
                const float v = gc[(size_t)j * hw + p];
                const float t = ws != NULL ? v * wq[step * j + 2u] : v;
                a = mct_mla_f32(a, wq[step * j], t);
                b = mct_mla_f32(b, wq[step * j + 1u], t);
            }
            acc0[p] = a;
            acc1[p] = b;
        }
#else
        weight_columns(w, c0, n, e, wf0, wf1, 1);
        col2_chunk(hw, n, wf0, wf1, g + (size_t)c0 * hw, ws != NULL ? ws + c0 : NULL, acc0, acc1);
#endif
    }
}

void mct_pw_weight_grad2_f32(uint32_t hw, uint32_t n, const int8_t *x, uint32_t stride, int32_t zero,
    const float *g0, const float *g1, float *total0, float *total1) {
    uint32_t j = 0;
    for (; j + BLOCK <= n; j += BLOCK) {
        float a[BLOCK], b[BLOCK];
MCT_UNROLL(8)
        for (uint32_t i = 0; i < BLOCK; i++) {
            a[i] = 0.0f;
            b[i] = 0.0f;
        }
        const int8_t *xp = x + j;
        for (uint32_t p = 0; p < hw; p++, xp += stride) {
            const float u = g0[p], v = g1[p];
MCT_UNROLL(8)
            for (uint32_t i = 0; i < BLOCK; i++) {
                const float xv = (float)(xp[i] - zero);
                a[i] = mct_mla_f32(a[i], u, xv);
                b[i] = mct_mla_f32(b[i], v, xv);
            }
        }
MCT_UNROLL(8)
        for (uint32_t i = 0; i < BLOCK; i++) {
            total0[j + i] = a[i];
            total1[j + i] = b[i];
        }
    }
    for (; j < n; j++) {
        float a = 0.0f, b = 0.0f;
        for (uint32_t p = 0; p < hw; p++) {
            const float xv = (float)(x[(size_t)p * stride + j] - zero);
            a = mct_mla_f32(a, g0[p], xv);
            b = mct_mla_f32(b, g1[p], xv);
        }
        total0[j] = a;
        total1[j] = b;
    }
}

/* Four output channels at once (the fused block's quads of expanded channels), g their gradients
 * [4][hw]: each gin element gets channel 0's product, then 1's, 2's and 3's, loaded and stored once;
 * four pixels at a time, the 16 factors g * w_scale in registers. */
void mct_pw_input_grad4_f32(uint32_t hw, uint32_t n_in, const int8_t *const *w, const float *g, const float *ws,
    float *gin) {
    float wf[MCT_BWD_QUAD_CHUNK][4];         /* [input channel][output channel k] */
    for (uint32_t c0 = 0; c0 < n_in; c0 += MCT_BWD_QUAD_CHUNK) {
        const uint32_t n = n_in - c0 < MCT_BWD_QUAD_CHUNK ? n_in - c0 : MCT_BWD_QUAD_CHUNK;
        float *gc = gin + (size_t)c0 * hw;
        for (uint32_t k = 0; k < 4; k++) {
MCT_UNROLL(4)
            for (uint32_t j = 0; j < n; j++) {
                wf[j][k] = (float)w[k][c0 + j];
            }
        }
        uint32_t p = 0;
        for (; p + 4 <= hw; p += 4) {
#ifdef MCT_VLDM_F32
            mct_vldm_quad_rows(gc + p, &wf[0][0], n, 4u * hw, g + p, ws);
            continue;
#endif
            float s[4][4];
MCT_UNROLL(4)
            for (uint32_t k = 0; k < 4; k++) {
MCT_UNROLL(4)
                for (uint32_t i = 0; i < 4; i++) {
                    s[k][i] = g[(size_t)k * hw + p + i] * ws[k];
                }
            }
            for (uint32_t j = 0; j < n; j++) {
                float *q = gc + (size_t)j * hw + p;
                const float a = wf[j][0], b = wf[j][1], c = wf[j][2], d = wf[j][3];
MCT_UNROLL(4)
                for (uint32_t i = 0; i < 4; i++) {
                    q[i] = mct_mla_f32(mct_mla_f32(mct_mla_f32(mct_mla_f32(q[i], a, s[0][i]), b, s[1][i]), c, s[2][i]), d, s[3][i]);
                }
            }
        }
        for (; p < hw; p++) {
            const float s0 = g[p] * ws[0], s1 = g[hw + p] * ws[1], s2 = g[2 * hw + p] * ws[2],
                        s3 = g[3 * hw + p] * ws[3];
            for (uint32_t j = 0; j < n; j++) {
                float *q = gc + (size_t)j * hw + p;
                *q = mct_mla_f32(mct_mla_f32(mct_mla_f32(mct_mla_f32(*q, wf[j][0], s0), wf[j][1], s1), wf[j][2], s2), wf[j][3], s3);
            }
        }
    }
}

/* Four output channels' weight gradients at once, g their gradients [4][hw]: total[k * t_stride + j],
 * four input channels at a time (16 accumulators), each x converted once for the four. */
void mct_pw_weight_grad4_f32(uint32_t hw, uint32_t n, const int8_t *x, uint32_t stride, int32_t zero,
    const float *g, float *total, uint32_t t_stride) {
    uint32_t j = 0;
#ifdef MCT_VLDM_F32
    for (; j + 4 <= n && hw != 0 && (((uintptr_t)(x + j) | stride) & 3u) == 0; j += 4) {
        float a[4][4];
        mct_vldm_weight_grad4(&a[0][0], x + j, stride, zero, g, hw, hw);
MCT_UNROLL(4)
        for (uint32_t k = 0; k < 4; k++) {
MCT_UNROLL(4)
            for (uint32_t i = 0; i < 4; i++) {
                total[k * t_stride + j + i] = a[k][i];
            }
        }
    }
#endif
#if MCT_PW_SSE2
    for (; j + 4 <= n; j += 4) {
        float a[4][4];
        mct_sse2_weight_grad4(&a[0][0], x + j, stride, zero, g, hw);
        for (uint32_t k = 0; k < 4; k++) {
            memcpy(total + k * t_stride + j, a[k], sizeof a[k]);
        }
    }
#endif
    for (; j + 4 <= n; j += 4) {
        float a[4][4] = {{0.0f}};
        const int8_t *xp = x + j;
        for (uint32_t p = 0; p < hw; p++, xp += stride) {
            const float u0 = g[p], u1 = g[hw + p], u2 = g[2 * hw + p], u3 = g[3 * hw + p];
MCT_UNROLL(4)
            for (uint32_t i = 0; i < 4; i++) {
                const float xv = (float)(xp[i] - zero);
                a[0][i] = mct_mla_f32(a[0][i], u0, xv);
                a[1][i] = mct_mla_f32(a[1][i], u1, xv);
                a[2][i] = mct_mla_f32(a[2][i], u2, xv);
                a[3][i] = mct_mla_f32(a[3][i], u3, xv);
            }
        }
MCT_UNROLL(4)
        for (uint32_t k = 0; k < 4; k++) {
MCT_UNROLL(4)
            for (uint32_t i = 0; i < 4; i++) {
                total[k * t_stride + j + i] = a[k][i];
            }
        }
    }
    for (; j < n; j++) {
        float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;
        for (uint32_t p = 0; p < hw; p++) {
            const float xv = (float)(x[(size_t)p * stride + j] - zero);
            a0 = mct_mla_f32(a0, g[p], xv);
            a1 = mct_mla_f32(a1, g[hw + p], xv);
            a2 = mct_mla_f32(a2, g[2 * hw + p], xv);
            a3 = mct_mla_f32(a3, g[3 * hw + p], xv);
        }
        total[j] = a0;
        total[t_stride + j] = a1;
        total[2 * t_stride + j] = a2;
        total[3 * t_stride + j] = a3;
    }
}
