/* Model loading: every offset, size, index and parameter of the file is checked here, once, so
 * that the kernels can trust them (mct_model.c then gives access to what was checked). */
#include "mct_internal.h"

/* A trained tensor: a weight may train a prefix of whole rows (its first output channels), any
 * other tensor all of its elements. */
static int trained_ok(const mct_model_t *m, uint16_t t, uint32_t row_len) {
    const uint32_t n = mct_ttrained(m, t);
    return !mct_tensor_trained(m, t) || (row_len ? n % row_len == 0 : n == mct_tcount(m, t));
}

static int scale_ok(float s) {
    return mct_isfinite(s) && s > 0.0f;
}

static int zero_ok(int32_t z) {
    return z >= -128 && z <= 127;
}

/* Does tensor t exist, with this dtype and element count? */
static int tensor_is(const mct_model_t *m, uint16_t t, uint8_t dtype, uint64_t count) {
    return t < m->n_tensors && mct_tdtype(m, t) == dtype && mct_tcount(m, t) == count;
}

static int check_requant(mct_model_t *m, uint16_t k, uint16_t mult, uint16_t shift, uint16_t wscale, uint32_t n) {
    const uint8_t *mp = m->buf + mct_rd32(mct_tentry(m, mult));
    const uint8_t *sp = m->buf + mct_rd32(mct_tentry(m, shift));
    const uint8_t *wp = m->buf + mct_rd32(mct_tentry(m, wscale));
    for (uint32_t i = 0; i < n; i++) {
        int32_t mv = (int32_t)mct_rd32(mp + 4 * i), sv = (int32_t)mct_rd32(sp + 4 * i);
        if (mv < 0 || sv < -31 || sv > 30) {
            MCT_FAIL(m, MCT_E_OP, k, MCT_P_MULTIPLIER, i);
        }
        if (!scale_ok(mct_rdf32(wp + 4 * i))) {
            MCT_FAIL(m, MCT_E_OP, k, MCT_P_SCALE, i);
        }
    }
    return MCT_OK;
}

static int produced_before(const mct_model_t *m, uint16_t a, uint16_t k) {
    if (a == m->input) {
        return 1;
    }
    for (uint16_t j = 0; j < k; j++) {
        if (mct_op_out(m, j) == a) {
            return 1;
        }
    }
    return 0;
}

static int check_op(mct_model_t *m, uint16_t k) {
    mct_op_t op;
    mct_act_t in, in1, out;
    mct_op_decode(m, k, &op);
    if (op.in0 >= m->n_acts || op.out >= m->n_acts || op.out == m->input) {
        MCT_FAIL(m, MCT_E_OP, k, MCT_P_ACT_INDEX, 0);
    }
    if (!produced_before(m, op.in0, k) || produced_before(m, op.out, k)) {
        MCT_FAIL(m, MCT_E_OP, k, MCT_P_ORDER, 0);
    }
    mct_act_decode(m, op.in0, &in);
    mct_act_decode(m, op.out, &out);
    if (!zero_ok(op.in0_zero) || !zero_ok(op.in1_zero) || !zero_ok(op.out_zero) || op.act_min > op.act_max) {
        MCT_FAIL(m, MCT_E_OP, k, MCT_P_ZERO, 0);
    }
    if (!scale_ok(op.in0_scale) || !scale_ok(op.out_scale)) {
        MCT_FAIL(m, MCT_E_OP, k, MCT_P_SCALE, 0);
    }
    /* a trained tensor's update runs in its op's backward, which needs the output's gradient */
    const int trains = (op.type == MCT_OP_CONV2D || op.type == MCT_OP_FC) &&
        (mct_tensor_trained(m, op.weight) || mct_tensor_trained(m, op.bias));
    if (trains && out.grad_offset == MCT_NO_GRAD) {
        MCT_FAIL(m, MCT_E_OP, k, MCT_P_GRAD, 0);
    }
    /* a clamped op whose output is differentiated needs its mask; the others have none, nor has the
     * model output (the loss reads its logits before the clamp, mct_logits.c), nor the expansion of a
     * fused block that recomputes it */
    const int clamped = op.type == MCT_OP_CONV2D || op.type == MCT_OP_FC || op.type == MCT_OP_ADD ||
        op.type == MCT_OP_MUL;
    if ((clamped && out.grad_offset != MCT_NO_GRAD && op.out != m->output && !mct_mask_recomputed(m, k)) !=
        (out.mask_offset != MCT_NO_GRAD)) {
        MCT_FAIL(m, MCT_E_OP, k, MCT_P_GRAD, 2);
    }
    switch (op.type) {
        case MCT_OP_CONV2D: {
            if (op.groups == 0 || in.c % op.groups || out.c % op.groups || !op.kh || !op.kw || !op.sh || !op.sw) {
                MCT_FAIL(m, MCT_E_OP, k, MCT_P_PARAM, 0);
            }
            if ((uint32_t)in.h + 2u * op.ph < op.kh || (uint32_t)in.w + 2u * op.pw < op.kw ||
                out.h != ((uint32_t)in.h + 2u * op.ph - op.kh) / op.sh + 1 ||
                out.w != ((uint32_t)in.w + 2u * op.pw - op.kw) / op.sw + 1) {
                MCT_FAIL(m, MCT_E_OP, k, MCT_P_SHAPE, 0);
            }
            /* 64 bits: 65535 channels x 65535 per group x 255 x 255 does not fit 32 */
            const uint64_t fan_in = (uint64_t)(in.c / op.groups) * op.kh * op.kw;
            if (fan_in > MCT_MAX_FAN_IN) {
                MCT_FAIL(m, MCT_E_OP, k, MCT_P_FAN_IN, 0);
            }
            if (!tensor_is(m, op.weight, MCT_INT8, out.c * fan_in)) {
                MCT_FAIL(m, MCT_E_OP, k, MCT_P_TENSOR_KIND, op.weight);
            }
            if (!trained_ok(m, op.weight, (in.c / op.groups) * op.kh * op.kw)) {
                MCT_FAIL(m, MCT_E_TRAIN, op.weight, 0, 0);
            }
            break;
        }
        case MCT_OP_FC:
            if (in.size > MCT_MAX_FAN_IN) {
                MCT_FAIL(m, MCT_E_OP, k, MCT_P_FAN_IN, 0);
            }
            if (!tensor_is(m, op.weight, MCT_INT8, (uint64_t)in.size * out.size)) {
                MCT_FAIL(m, MCT_E_OP, k, MCT_P_TENSOR_KIND, op.weight);
            }
            if (!trained_ok(m, op.weight, in.size)) {
                MCT_FAIL(m, MCT_E_TRAIN, op.weight, 0, 0);
            }
            break;
        case MCT_OP_ADD:
            if (op.in1 >= m->n_acts || !produced_before(m, op.in1, k)) {
                MCT_FAIL(m, MCT_E_OP, k, MCT_P_ORDER, 1);
            }
            mct_act_decode(m, op.in1, &in1);
            if (in1.size != out.size || in.size != out.size) {
                MCT_FAIL(m, MCT_E_OP, k, MCT_P_SHAPE, 0);
            }
            if (!scale_ok(op.in1_scale) || op.add_left_shift > 22) {
                MCT_FAIL(m, MCT_E_OP, k, MCT_P_SCALE, 1);
            }
            for (int i = 0; i < 3; i++) {
                if (op.add_mult[i] < 0 || op.add_shift[i] < -31 || op.add_shift[i] > 30) {
                    MCT_FAIL(m, MCT_E_OP, k, MCT_P_MULTIPLIER, i);
                }
            }
            return MCT_OK;
        case MCT_OP_AVGPOOL:
            /* the kernel sums a channel in int32: at most 2^24 values of +-128 */
            if (out.c != in.c || out.h != 1 || out.w != 1 || (uint32_t)in.h * in.w > (1u << 24)) {
                MCT_FAIL(m, MCT_E_OP, k, MCT_P_SHAPE, 0);
            }
            return MCT_OK;
        case MCT_OP_MAXPOOL2D:
        case MCT_OP_AVGPOOL2D:
            /* PyTorch's own limit, padding at most half the kernel: no window lies in the padding */
            if (!op.kh || !op.kw || !op.sh || !op.sw || 2u * op.ph > op.kh || 2u * op.pw > op.kw) {
                MCT_FAIL(m, MCT_E_OP, k, MCT_P_PARAM, 0);
            }
            if (out.c != in.c || (uint32_t)in.h + 2u * op.ph < op.kh || (uint32_t)in.w + 2u * op.pw < op.kw ||
                out.h != ((uint32_t)in.h + 2u * op.ph - op.kh) / op.sh + 1 ||
                out.w != ((uint32_t)in.w + 2u * op.pw - op.kw) / op.sw + 1) {
                MCT_FAIL(m, MCT_E_OP, k, MCT_P_SHAPE, 0);
            }
            return MCT_OK;
        case MCT_OP_LUT:
            return mct_lut_check(m, k, &op, &in, &out);
        case MCT_OP_CONCAT:
            if (op.in1 >= m->n_acts || !produced_before(m, op.in1, k)) {
                MCT_FAIL(m, MCT_E_OP, k, MCT_P_ORDER, 1);
            }
            mct_act_decode(m, op.in1, &in1);
            return mct_concat_check(m, k, &op, &in, &in1, &out);
        case MCT_OP_MUL:
            if (op.in1 >= m->n_acts || !produced_before(m, op.in1, k)) {
                MCT_FAIL(m, MCT_E_OP, k, MCT_P_ORDER, 1);
            }
            mct_act_decode(m, op.in1, &in1);
            return mct_mul_check(m, k, &op, &in, &in1, &out);
        default:
            MCT_FAIL(m, MCT_E_OP, k, MCT_P_TYPE, op.type);
    }
    /* conv and FC: bias and per-channel requantization */
    if (!tensor_is(m, op.bias, MCT_INT32, out.c) || !tensor_is(m, op.mult, MCT_INT32, out.c) ||
        !tensor_is(m, op.shift, MCT_INT32, out.c) || !tensor_is(m, op.wscale, MCT_FLOAT32, out.c) ||
        (op.type == MCT_OP_FC && (out.h != 1 || out.w != 1))) {
        MCT_FAIL(m, MCT_E_OP, k, MCT_P_TENSOR_KIND, 0);
    }
    if (mct_tensor_trained(m, op.mult) || mct_tensor_trained(m, op.shift) || mct_tensor_trained(m, op.wscale) ||
        !trained_ok(m, op.bias, 0)) {
        MCT_FAIL(m, MCT_E_TRAIN, op.mult, 0, 0);
    }
    return check_requant(m, k, op.mult, op.shift, op.wscale, out.c);
}

static uint32_t tensor_bytes(const mct_model_t *m, uint16_t t) {
    return mct_tcount(m, t) * mct_dtype_size(mct_tdtype(m, t));
}

static int overlap(uint32_t a, uint32_t an, uint32_t b, uint32_t bn) {
    return an && bn && a < b + bn && b < a + an;
}

/* A trained tensor is saved from its SRAM copy: its bytes must be its own, or saving the model
 * would change a table or another tensor (and could write a file that no longer loads). */
static int trained_alone(const mct_model_t *m, uint16_t t, const uint32_t offs[3], const uint32_t counts[3],
    const uint32_t entry[3]) {
    const uint32_t off = mct_rd32(mct_tentry(m, t)), n = tensor_bytes(m, t);
    for (int i = 0; i < 3; i++) {
        if (overlap(off, n, offs[i], counts[i] * entry[i])) {
            return 0;
        }
    }
    for (uint16_t u = 0; u < m->n_tensors; u++) {
        if (u != t && overlap(off, n, mct_rd32(mct_tentry(m, u)), tensor_bytes(m, u))) {
            return 0;
        }
    }
    return 1;
}

/* An input read in place (offset MCT_IN_PLACE) is the caller's only during the forward: no backward
 * may read it (a trained weight's gradient, a max pool's backward). */
static int input_read_in_forward_only(const mct_model_t *m) {
    mct_act_t in;
    mct_act_decode(m, m->input, &in);
    if (in.offset != MCT_IN_PLACE) {
        return 1;
    }
    for (uint16_t k = 0; k < m->n_ops; k++) {
        mct_op_t op;
        mct_act_t out;
        mct_op_decode(m, k, &op);
        mct_act_decode(m, op.out, &out);
        if (op.in0 != m->input && !(mct_two_inputs(&op) && op.in1 == m->input)) {
            continue;
        }
        if (((op.type == MCT_OP_CONV2D || op.type == MCT_OP_FC) && mct_tensor_trained(m, op.weight)) ||
            ((op.type == MCT_OP_MAXPOOL2D || op.type == MCT_OP_LUT || op.type == MCT_OP_MUL) &&
             out.grad_offset != MCT_NO_GRAD)) {
            return 0;
        }
    }
    return 1;
}

static int pointwise(const mct_op_t *op) {
    return op->type == MCT_OP_CONV2D && op->groups == 1 && op->kh == 1 && op->kw == 1 && op->sh == 1 &&
        op->sw == 1 && op->ph == 0 && op->pw == 0;
}

/* A block with a fused backward (op byte 1 bit 1 on its head k, mct_block_backward.c): ops k-2,
 * k-1, k a pointwise, a depthwise and a pointwise conv after the patch-based stage, each reading
 * the previous one's output and nothing else reading it, with the float32 backward; the expanded
 * gradients are one channel each (act_grad_bytes), apart from each other. */
static int check_fused(mct_model_t *m, uint16_t k, uint16_t stage_ops) {
    mct_op_t pw1, dw, pw2;
    mct_act_t ex, dx;
    if (k < stage_ops + 2u || (m->train_flags & MCT_TRAIN_INT_BACKWARD) || mct_fused_head(m, k - 1) ||
        mct_fused_head(m, k - 2)) {
        MCT_FAIL(m, MCT_E_OP, k, MCT_P_FUSED, 0);
    }
    mct_op_decode(m, k - 2, &pw1);
    mct_op_decode(m, k - 1, &dw);
    mct_op_decode(m, k, &pw2);
    mct_act_decode(m, dw.in0, &ex);
    mct_act_decode(m, dw.out, &dx);
    if (!pointwise(&pw1) || !pointwise(&pw2) || dw.type != MCT_OP_CONV2D || dw.groups != ex.c ||
        dx.c != ex.c || dw.in0 != pw1.out || pw2.in0 != dw.out) {
        MCT_FAIL(m, MCT_E_OP, k, MCT_P_FUSED, 1);
    }
    if (mct_read_elsewhere(m, pw1.out, k - 1) || mct_read_elsewhere(m, dw.out, k) || pw1.out == m->output ||
        dw.out == m->output) {
        MCT_FAIL(m, MCT_E_OP, k, MCT_P_FUSED, 2);
    }
    const uint64_t gd = dx.grad_offset, ge = ex.grad_offset;
    const uint64_t nd = 4ull * dx.h * dx.w, ne = 4ull * ex.h * ex.w;
    if (dx.grad_offset == MCT_NO_GRAD || (ex.grad_offset != MCT_NO_GRAD && gd < ge + ne && ge < gd + nd)) {
        MCT_FAIL(m, MCT_E_OP, k, MCT_P_FUSED, 3);
    }
    /* recomputing the expansion's mask reads the block input in the arena, for an expansion with a gradient */
    if (mct_op_flags(m, k) & MCT_OF_RECOMPUTE && (ex.grad_offset == MCT_NO_GRAD || pw1.in0 == m->input)) {
        MCT_FAIL(m, MCT_E_OP, k, MCT_P_FUSED, 4);
    }
    return MCT_OK;
}

/* Bytes of activation a's gradient: one channel for the expanded tensors of a fused block. */
static uint64_t act_grad_bytes(const mct_model_t *m, uint16_t a, const mct_act_t *act) {
    for (uint16_t j = 0; j < m->n_ops; j++) {
        if (mct_op_out(m, j) == a) {
            return mct_fused_member(m, j) ? 4ull * act->h * act->w : 4ull * act->size;
        }
    }
    return 4ull * act->size;
}

/* The model input fed row by row (mct_band.c): its capacity is a band of whole rows in the arena,
 * read by the n ops of the patch-based stage only, and each tile row's input rows fit it, moving
 * down (y0 and y1 never decrease). */
static int band_ok(mct_model_t *m, uint16_t n) {
    mct_act_t in;
    mct_act_decode(m, m->input, &in);
    const uint32_t row_bytes = (uint32_t)in.w * in.c, rows = mct_act_capacity(m, m->input) / row_bytes;
    if (n == 0 || in.offset == MCT_IN_PLACE || rows == 0 || rows * row_bytes != mct_act_capacity(m, m->input)) {
        return 0;
    }
    for (uint16_t k = n; k < m->n_ops; k++) {
        mct_op_t op;
        mct_op_decode(m, k, &op);
        if (op.in0 == m->input || (mct_two_inputs(&op) && op.in1 == m->input)) {
            return 0;
        }
    }
    mct_act_t last;     /* (check_stage has set the stage and grid mct_patch_regions reads) */
    mct_act_decode(m, mct_op_out(m, n - 1), &last);
    if (m->patch_rows == 0 || m->patch_cols == 0 || m->patch_rows > last.h || m->patch_cols > last.w) {
        return 0;
    }
    mct_region_t regions[MCT_MAX_STAGE_OPS];
    int32_t prev0 = 0, prev1 = 0;
    for (uint32_t py = 0; py < m->patch_rows; py++) {
        int32_t y0, y1;
        mct_patch_regions(m, py * m->patch_cols, regions);
        mct_patch_input_rows(m, regions, &y0, &y1);
        if (y0 < prev0 || y1 < prev1 || y1 <= y0 || (uint32_t)(y1 - y0) > rows) {
            return 0;
        }
        prev0 = y0;
        prev1 = y1;
    }
    return 1;
}

/* The patch-based first stage (mct_patch.c): header byte 51 is its grid (rows << 4 | columns), op
 * byte 1 bit 0 marks its ops, a prefix of the graph. They must be spatial ops of frozen layers
 * reading only the model input and each other; their outputs but the last live in patch buffers
 * (act entry byte 20: capacity), which every patch's windows must fit. */
static int check_stage(mct_model_t *m) {
    const uint8_t grid = m->buf[MCT_H_PATCH_GRID];
    uint16_t n = 0;
    while (n < m->n_ops && (mct_op_flags(m, n) & MCT_OF_PATCH)) {
        n++;
    }
    uint16_t rows_end = 0;      /* one past the last op of the row-streamed block being read */
    for (uint16_t k = 0; k < m->n_ops; k++) {
        const uint8_t flags = mct_op_flags(m, k);
        const int known = k < n ? flags == MCT_OF_PATCH
                                : flags == 0 || flags == MCT_OF_FUSED || flags == (MCT_OF_FUSED | MCT_OF_RECOMPUTE) ||
                                  flags == MCT_OF_ROWS_FIRST ||
                                  (flags == MCT_OF_ROWS && k < rows_end) || flags == MCT_OF_IN_PLACE;
        if (!known) {
            MCT_FAIL(m, MCT_E_OP, k, MCT_P_PATCH, 0);          /* not a prefix, or unknown or stray flags */
        }
        int r = flags & MCT_OF_FUSED ? check_fused(m, k, n) : flags == MCT_OF_ROWS_FIRST ? mct_rows_check(m, k, n) : MCT_OK;
        if (r != MCT_OK) {
            return r;
        }
        if (flags == MCT_OF_ROWS_FIRST) {
            rows_end = mct_rows_last(m, k) + 1u;
        }
    }
    if ((grid == 0) != (n == 0) || n > MCT_MAX_STAGE_OPS) {
        MCT_FAIL(m, MCT_E_OP, 0, MCT_P_PATCH, 1);
    }
    m->stage_ops = n;
    m->patch_rows = grid >> 4;
    m->patch_cols = grid & 15;
    for (uint16_t k = n; k < m->n_ops; k++) {
        if (mct_op_flags(m, k) == MCT_OF_IN_PLACE && mct_in_place_check(m, k) != MCT_OK) {
            return MCT_E_OP;
        }
    }
    for (uint16_t k = 0; k < m->n_ops; k++) {
        mct_op_t op;
        mct_act_t out;
        mct_op_decode(m, k, &op);
        mct_act_decode(m, op.out, &out);
        /* in a patch buffer, or a row-streamed block's ring or row buffer */
        const int row_op = mct_op_flags(m, k) & (MCT_OF_ROWS_FIRST | MCT_OF_ROWS);
        const int internal = k + 1 < n || (row_op && k + 1u < m->n_ops && mct_op_flags(m, k + 1) == MCT_OF_ROWS);
        if (k < n) {
            const int spatial = op.type == MCT_OP_CONV2D || op.type == MCT_OP_ADD || op.type == MCT_OP_MAXPOOL2D ||
                op.type == MCT_OP_AVGPOOL2D || op.type == MCT_OP_LUT || op.type == MCT_OP_CONCAT;
            if (!spatial || out.grad_offset != MCT_NO_GRAD || out.mask_offset != MCT_NO_GRAD) {
                MCT_FAIL(m, MCT_E_OP, k, MCT_P_PATCH, 2);      /* frozen spatial ops only */
            }
            if (op.out == m->output) {
                MCT_FAIL(m, MCT_E_OP, k, MCT_P_PATCH, 3);
            }
        }
        if ((mct_act_capacity(m, op.out) != 0) != internal) {
            MCT_FAIL(m, MCT_E_OP, k, MCT_P_PATCH, 4);          /* a patch buffer exactly for those */
        }
        /* the stage reads the model input and its own outputs; nothing after it reads a patch buffer */
        const uint16_t ins[2] = { op.in0, mct_two_inputs(&op) ? op.in1 : op.in0 };
        for (int i = 0; i < 2; i++) {
            const int from_stage = mct_act_capacity(m, ins[i]) != 0;
            if ((k >= n && from_stage && !row_op) || (k < n && !from_stage && ins[i] != m->input)) {
                MCT_FAIL(m, MCT_E_OP, k, MCT_P_PATCH, 5);
            }
        }
    }
    if (mct_act_capacity(m, m->input) != 0 && !band_ok(m, n)) {
        MCT_FAIL(m, MCT_E_ACT, m->input, 0, 0);
    }
    if (n == 0) {
        return MCT_OK;
    }
    mct_act_t last;
    mct_act_decode(m, mct_op_out(m, n - 1), &last);
    if (m->patch_rows == 0 || m->patch_cols == 0 || m->patch_rows > last.h || m->patch_cols > last.w) {
        MCT_FAIL(m, MCT_E_OP, n - 1, MCT_P_PATCH, 6);
    }
    /* every patch's windows fit their buffers */
    mct_region_t regions[MCT_MAX_STAGE_OPS];
    for (uint32_t p = 0; p < (uint32_t)m->patch_rows * m->patch_cols; p++) {
        mct_patch_regions(m, p, regions);
        for (uint16_t k = 0; k + 1 < n; k++) {
            mct_op_t op;
            mct_act_t out;
            mct_op_decode(m, k, &op);
            mct_act_decode(m, op.out, &out);
            if ((uint64_t)out.c * (uint32_t)regions[k].h * (uint32_t)regions[k].w > mct_act_capacity(m, op.out)) {
                MCT_FAIL(m, MCT_E_OP, k, MCT_P_PATCH, 7);
            }
        }
    }
    return MCT_OK;
}

int mct_model_init(mct_model_t *m, const uint8_t *buf, size_t len) {
    memset(m, 0, sizeof(*m));
    m->buf = buf;
    m->qas = 1;
    if (len < MCT_HEADER_SIZE) {
        MCT_FAIL(m, MCT_E_TRUNCATED, 0, len, MCT_HEADER_SIZE);
    }
    if (buf[MCT_H_MAGIC] != 'M' || buf[MCT_H_MAGIC + 1] != 'C' || buf[MCT_H_MAGIC + 2] != 'T' || buf[MCT_H_MAGIC + 3] != 'R') {
        MCT_FAIL(m, MCT_E_MAGIC, 0, 0, 0);
    }
    if (mct_rd16(buf + MCT_H_VERSION) != MCT_VERSION || mct_rd16(buf + MCT_H_HEADER_SIZE) != MCT_HEADER_SIZE) {
        MCT_FAIL(m, MCT_E_VERSION, 0, mct_rd16(buf + MCT_H_VERSION), MCT_VERSION);
    }
    m->file_size = mct_rd32(buf + MCT_H_FILE_SIZE);
    if (m->file_size > len) {
        MCT_FAIL(m, MCT_E_TRUNCATED, 0, len, m->file_size);
    }
    if (m->file_size != len || m->file_size < MCT_HEADER_SIZE) {
        MCT_FAIL(m, MCT_E_SIZE, 0, len, m->file_size);
    }
    uint32_t crc = mct_crc32(0, buf + MCT_H_CRC_END, m->file_size - MCT_H_CRC_END);
    if (crc != mct_rd32(buf + MCT_H_CRC)) {
        MCT_FAIL(m, MCT_E_CRC, 0, mct_rd32(buf + MCT_H_CRC), crc);
    }
    m->n_tensors = mct_rd16(buf + MCT_H_N_TENSORS);
    m->n_acts = mct_rd16(buf + MCT_H_N_ACTS);
    m->n_ops = mct_rd16(buf + MCT_H_N_OPS);
    m->input = mct_rd16(buf + MCT_H_INPUT);
    m->output = mct_rd16(buf + MCT_H_OUTPUT);
    m->exp_table = mct_rd16(buf + MCT_H_EXP_TABLE);
    m->tensor_off = mct_rd32(buf + MCT_H_TENSOR_OFF);
    m->act_off = mct_rd32(buf + MCT_H_ACT_OFF);
    m->op_off = mct_rd32(buf + MCT_H_OP_OFF);
    m->arena_size = mct_rd32(buf + MCT_H_ARENA);
    m->input_scale = mct_rdf32(buf + MCT_H_INPUT_SCALE);
    m->input_zero = (int16_t)mct_rd16(buf + MCT_H_INPUT_ZERO);
    m->saved_bytes = mct_rd32(buf + MCT_H_SAVED);
    m->train_flags = buf[MCT_H_TRAIN_FLAGS];
    if ((m->train_flags & ~MCT_TRAIN_FLAGS_KNOWN) ||
        ((m->train_flags & MCT_TRAIN_INT_BACKWARD) && (m->train_flags & MCT_TRAIN_RULE_MASK) == MCT_RULE_MASTER)) {
        MCT_FAIL(m, MCT_E_FLAGS, 0, m->train_flags, MCT_TRAIN_FLAGS_KNOWN);
    }
    m->rng_seed = mct_rd32(buf + MCT_H_CRC);      /* the CRC: a different stream for each saved model */
    /* metadata (layer names for the host) is not used here, but must lie inside the file too */
    if ((uint64_t)mct_rd32(buf + MCT_H_META_OFF) + mct_rd32(buf + MCT_H_META_LEN) > m->file_size) {
        MCT_FAIL(m, MCT_E_TABLE, 3, mct_rd32(buf + MCT_H_META_OFF), mct_rd32(buf + MCT_H_META_LEN));
    }
    if (m->n_ops == 0 || m->n_ops > MCT_MAX_OPS) {
        MCT_FAIL(m, MCT_E_TOO_MANY, 2, m->n_ops, MCT_MAX_OPS);
    }
    if (m->n_acts > MCT_MAX_ACTS) {
        MCT_FAIL(m, MCT_E_TOO_MANY, 1, m->n_acts, MCT_MAX_ACTS);
    }
    const uint32_t offs[3] = { m->tensor_off, m->act_off, m->op_off };
    const uint32_t counts[3] = { m->n_tensors, m->n_acts, m->n_ops };
    const uint32_t entry[3] = { MCT_TENSOR_ENTRY, MCT_ACT_ENTRY, MCT_OP_ENTRY };
    for (int i = 0; i < 3; i++) {
        if (offs[i] < MCT_HEADER_SIZE || (uint64_t)offs[i] + (uint64_t)counts[i] * entry[i] > m->file_size) {
            MCT_FAIL(m, MCT_E_TABLE, i, offs[i], counts[i]);
        }
    }
    if (m->arena_size > 0x7fffffffu) {
        MCT_FAIL(m, MCT_E_ACT, 0, m->arena_size, 0);
    }
    for (uint16_t t = 0; t < m->n_tensors; t++) {
        const uint8_t *e = mct_tentry(m, t);
        uint32_t off = mct_rd32(e), count = mct_rd32(e + 4);
        uint8_t dtype = e[8];
        if (dtype < MCT_INT8 || dtype > MCT_FLOAT32 || off % MCT_DATA_ALIGN || off < MCT_HEADER_SIZE ||
            (uint64_t)off + (uint64_t)count * mct_dtype_size(dtype) > m->file_size) {
            MCT_FAIL(m, MCT_E_TENSOR, t, off, count);
        }
        if (((uintptr_t)(buf + off)) % 4) {
            MCT_FAIL(m, MCT_E_ALIGN, t, 0, 0);
        }
        if (e[9] & MCT_TF_TRAINABLE) {
            const uint32_t n = mct_rd32(e + 12);        /* trained prefix, checked per op below */
            if (dtype == MCT_FLOAT32 || n == 0 || n > count) {
                MCT_FAIL(m, MCT_E_TRAIN, t, 0, 0);
            }
            m->n_trained++;
            uint64_t bytes = (uint64_t)mct_align4(n * mct_dtype_size(dtype)) + mct_shadow_bytes(m->train_flags, n);
            if (bytes + m->trained_bytes > 0x7fffffffu) {
                MCT_FAIL(m, MCT_E_TENSOR, t, off, count);
            }
            m->trained_bytes += (uint32_t)bytes;
        }
    }
    if (m->n_trained) {
        /* the index (mct_model.c): u16 entries where every copy's offset fits them */
        const uint32_t index16 = mct_align4(2u * m->n_tensors);
        m->index16 = (index16 + m->trained_bytes) / 4u <= 0xFFFFu;
        m->trained_bytes += m->index16 ? index16 : 4u * m->n_tensors;
        /* the integer backward's gradient exponents (int16 per activation) come last */
        m->gexp_offset = mct_align4(m->arena_size) + m->trained_bytes;
        if (m->train_flags & MCT_TRAIN_INT_BACKWARD) {
            m->trained_bytes += mct_align4(2u * m->n_acts);
        }
    }
    for (uint16_t t = 0; m->n_trained && t < m->n_tensors; t++) {
        if (mct_tensor_trained(m, t) && !trained_alone(m, t, offs, counts, entry)) {
            MCT_FAIL(m, MCT_E_TENSOR, t, mct_rd32(mct_tentry(m, t)), mct_tcount(m, t));
        }
    }
    for (uint16_t a = 0; a < m->n_acts; a++) {
        mct_act_t act;
        mct_act_decode(m, a, &act);
        /* an activation inside the patch-based stage has a patch buffer (its capacity), not a whole one */
        const uint32_t capacity = mct_act_capacity(m, a);
        const int in_place = a == m->input && act.offset == MCT_IN_PLACE;     /* the caller's buffer */
        if (act.size == 0 || capacity > act.size ||
            (!in_place && (uint64_t)act.offset + (capacity ? capacity : act.size) > m->arena_size) ||
            (act.grad_offset != MCT_NO_GRAD &&
             (act.grad_offset % 4 || (uint64_t)act.grad_offset + act_grad_bytes(m, a, &act) > m->arena_size)) ||
            (act.mask_offset != MCT_NO_GRAD && (uint64_t)act.mask_offset + (act.size + 7) / 8 > m->arena_size)) {
            MCT_FAIL(m, MCT_E_ACT, a, act.offset, act.size);
        }
    }
    if (m->input >= m->n_acts || m->output >= m->n_acts || !tensor_is(m, m->exp_table, MCT_FLOAT32, 256)) {
        MCT_FAIL(m, MCT_E_TABLE, 1, m->input, m->output);
    }
    if (!scale_ok(m->input_scale) || !zero_ok(m->input_zero)) {
        MCT_FAIL(m, MCT_E_ACT, m->input, 0, 0);
    }
    for (uint16_t k = 0; k < m->n_ops; k++) {
        int r = check_op(m, k);
        if (r != MCT_OK) {
            return r;
        }
    }
    if (!input_read_in_forward_only(m)) {
        MCT_FAIL(m, MCT_E_ACT, m->input, MCT_IN_PLACE, 0);
    }
    mct_act_t out;
    mct_act_decode(m, m->output, &out);
    if (!produced_before(m, m->output, m->n_ops) || m->output == m->input) {
        MCT_FAIL(m, MCT_E_TABLE, 1, m->output, 0);
    }
    if (m->n_trained && out.grad_offset == MCT_NO_GRAD) {
        MCT_FAIL(m, MCT_E_OP, m->n_ops - 1, MCT_P_GRAD, 1);
    }
    /* its int32 logits follow its int8 values, 4-aligned (mct_logits.c) */
    if (out.offset % 4 || (uint64_t)out.offset + mct_align4(out.size) + 4ull * out.size > m->arena_size) {
        MCT_FAIL(m, MCT_E_ACT, m->output, out.offset, out.size);
    }
    return check_stage(m);
}
