/* The engine's conv: picks the kernel for the op's shape (mct_kernels_hwc.h: pointwise GEMM,
 * depthwise, the first conv's im2col; else the portable mct_conv2d_s8), runs it on the windows of the
 * patch-based stage and the row-streamed blocks (mct_view_t to the kernels' geometry), and over the
 * trained output channels (their SRAM copy) and the frozen ones (in Flash) apart. */
#include "mct_internal.h"
#include "mct_kernels_hwc.h"
#include "mct_requant.h"

typedef enum { GENERIC, POINTWISE, DEPTHWISE, IM2COL } kernel_t;

#if !MCT_REFERENCE
static kernel_t kernel_for(const mct_op_t *op, const mct_act_t *in, const mct_act_t *out) {
    if (op->groups == 1 && mct_pointwise_op(op)) {
        return POINTWISE;
    }
    if (op->groups == in->c && out->c == in->c && (uint32_t)op->kh * op->kw <= MCT_HWC_TAPS_MAX) {
        return DEPTHWISE;
    }
    if (op->groups == 1 && (uint32_t)in->c * op->kh * op->kw <= MCT_HWC_COL_MAX) {
        return IM2COL;
    }
    return GENERIC;
}

/* Output channels [o0, o1), whose weight rows are contiguous from w on. */
static void channels(kernel_t kind, const mct_op_t *op, const mct_act_t *in, const mct_view_t *x,
    const mct_act_t *out, const mct_view_t *y, const int8_t *w, uint32_t o0, uint32_t o1, const int32_t *bias,
    const int32_t *mult, const int32_t *shift) {
    const mct_hwc_quant_t q = { op->in0_zero, op->out_zero, op->act_min, op->act_max, bias + o0, mult + o0,
                                shift + o0 };
    const uint32_t n = o1 - o0;
    if (kind == POINTWISE) {
        /* x holds y's window (1x1, stride 1, no padding): one GEMM when both hold the same whole rows
         * densely, else row by row */
        if (mct_view_contiguous(x, in->c) && mct_view_contiguous(y, out->c) && x->x0 == y->x0 && x->w == y->w) {
            mct_pointwise_s8_hwc(x->data + (size_t)(y->y0 - x->y0) * x->row_stride, y->h * y->w, in->c, w, n, &q,
                y->data + o0, out->c);
            return;
        }
        for (uint32_t r = 0; r < y->h; r++) {
            const int8_t *xr = x->data + (size_t)(y->y0 + (int32_t)r - x->y0) * x->row_stride +
                (size_t)(y->x0 - x->x0) * in->c;
            mct_pointwise_s8_hwc(xr, y->w, in->c, w, n, &q, y->data + (size_t)r * y->row_stride + o0, out->c);
        }
        return;
    }
    const mct_hwc_geom_t g = {
        in->h, in->w, kind == DEPTHWISE ? n : in->c, y->h, y->w, n,
        op->kh, op->kw, op->sh, op->sw, op->ph, op->pw,
        (uint32_t)y->y0, (uint32_t)y->x0, (uint32_t)x->y0, (uint32_t)x->x0,
        in->c, x->row_stride, out->c, y->row_stride,
    };
    if (kind == DEPTHWISE) {
        mct_depthwise_s8_hwc(x->data + o0, &g, w, &q, y->data + o0);
    } else {
        mct_conv_s8_hwc(x->data, &g, w, &q, y->data + o0);
    }
}
#endif

void mct_conv2d_forward(const mct_op_t *op, const mct_act_t *in, const mct_view_t *x, const mct_act_t *out,
    const mct_view_t *y, const mct_rows_t *weight, const int32_t *bias, const int32_t *mult, const int32_t *shift) {
#if MCT_REFERENCE
    /* the reference build links no fast kernel (the armv6m .mpy leaves them out) */
    mct_conv2d_s8(op, in, x, out, y, weight, bias, mult, shift);
#else
    const kernel_t kind = kernel_for(op, in, out);
    if (kind == GENERIC) {
        mct_conv2d_s8(op, in, x, out, y, weight, bias, mult, shift);
        return;
    }
    const uint32_t split = weight->n_sram < out->c ? weight->n_sram : out->c;
    if (split > 0) {
        channels(kind, op, in, x, out, y, mct_row(weight, 0), 0, split, bias, mult, shift);
    }
    if (split < out->c) {
        channels(kind, op, in, x, out, y, mct_row(weight, split), split, out->c, bias, mult, shift);
    }
#endif
}
