/* Shared by the core's own files: file layout, little-endian reads, tensor access, kernels. */
#ifndef MCT_INTERNAL_H
#define MCT_INTERNAL_H

#include <string.h>
#include "mct_config.h"
#include "mcutrain.h"

/* The one error return of the core: record the status and its details (index, a, b: see
 * mct_status) for the binding's message, and return the status. */
#define MCT_FAIL(m, c, i, va, vb) do { \
        (m)->error.code = (c); (m)->error.index = (int)(i); (m)->error.a = (uint32_t)(va); (m)->error.b = (uint32_t)(vb); \
        return (c); \
} while (0)

/* The largest float32 below 2^31: an int32 bias is kept within it (the float32 master rounds to it). */
#define MCT_BIAS_LIMIT 2147483520

/* Header fields: byte offsets in the file's first MCT_HEADER_SIZE bytes (host_tools/model/mct_format.py HEADER). */
enum mct_header_field {
    MCT_H_MAGIC = 0,            /* "MCTR" */
    MCT_H_VERSION = 4,          /* u16 */
    MCT_H_HEADER_SIZE = 6,      /* u16 */
    MCT_H_FILE_SIZE = 8,        /* u32 */
    MCT_H_CRC = 12,             /* u32: CRC32 of the bytes after it */
    MCT_H_CRC_END = 16,
    MCT_H_N_TENSORS = 16,       /* u16 */
    MCT_H_N_ACTS = 18,          /* u16 */
    MCT_H_N_OPS = 20,           /* u16 */
    MCT_H_INPUT = 22,           /* u16: activation */
    MCT_H_OUTPUT = 24,          /* u16: activation */
    MCT_H_EXP_TABLE = 26,       /* u16: tensor */
    MCT_H_TENSOR_OFF = 28,      /* u32 */
    MCT_H_ACT_OFF = 32,         /* u32 */
    MCT_H_OP_OFF = 36,          /* u32 */
    MCT_H_ARENA = 40,           /* u32: arena bytes */
    MCT_H_INPUT_SCALE = 44,     /* f32 */
    MCT_H_INPUT_ZERO = 48,      /* i16 */
    MCT_H_TRAIN_FLAGS = 50,     /* u8: update rule, integer backward */
    MCT_H_PATCH_GRID = 51,      /* u8: rows << 4 | columns of the patch-based stage */
    MCT_H_SAVED = 52,           /* u32 */
    MCT_H_META_OFF = 56,        /* u32: layer names for the host */
    MCT_H_META_LEN = 60,        /* u32 */
};

/* Op record fields read without decoding the whole record (mct_op_decode reads them all). */
#define MCT_OPE_FLAGS 1         /* u8: MCT_OF_* */
#define MCT_OPE_OUT 6           /* u16: output activation */

#define MCT_HEADER_SIZE 64
#define MCT_TENSOR_ENTRY 16
#define MCT_ACT_ENTRY 24
#define MCT_OP_ENTRY 64
#define MCT_DATA_ALIGN 16
#define MCT_TF_TRAINABLE 1
#define MCT_ARENA_FILL 0xA5
#define MCT_OF_PATCH 1          /* op flags (op entry byte 1): runs in the patch-based stage */
#define MCT_OF_FUSED 2          /* the head of a block whose backward runs fused (mct_block_backward.c) */
#define MCT_OF_ROWS_FIRST 4     /* the first op of a row-streamed frozen block (mct_rows.c) */
#define MCT_OF_ROWS 8           /* the block's other ops */
#define MCT_OF_IN_PLACE 16      /* a depthwise conv writing its output over its input (mct_dw_in_place.c) */
#define MCT_OF_RECOMPUTE 32     /* with MCT_OF_FUSED: the expansion's clamp mask is not kept, the fused
                                 * backward recomputes it from the block input (mct_block_backward.c) */

static inline uint16_t mct_rd16(const uint8_t *p) {
    return (uint16_t)(p[0] | (p[1] << 8));
}
static inline uint32_t mct_rd32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline float mct_rdf32(const uint8_t *p) {
    uint32_t u = mct_rd32(p);
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static inline int mct_isfinite(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return (u & 0x7f800000u) != 0x7f800000u;
}

static inline uint32_t mct_align4(uint32_t n) {
    return (n + 3u) & ~3u;
}

/* Op k's record, its flags (MCT_OF_*) and its output activation. */
static inline const uint8_t *mct_op_entry(const mct_model_t *m, uint16_t k) {
    return m->buf + m->op_off + (uint32_t)k * MCT_OP_ENTRY;
}
static inline uint8_t mct_op_flags(const mct_model_t *m, uint16_t k) {
    return mct_op_entry(m, k)[MCT_OPE_FLAGS];
}
static inline uint16_t mct_op_out(const mct_model_t *m, uint16_t k) {
    return mct_rd16(mct_op_entry(m, k) + MCT_OPE_OUT);
}

/* Tensor table entry fields. */
static inline const uint8_t *mct_tentry(const mct_model_t *m, uint16_t t) {
    return m->buf + m->tensor_off + (uint32_t)t * MCT_TENSOR_ENTRY;
}
static inline uint32_t mct_tcount(const mct_model_t *m, uint16_t t) {
    return mct_rd32(mct_tentry(m, t) + 4);
}
static inline uint8_t mct_tdtype(const mct_model_t *m, uint16_t t) {
    return mct_tentry(m, t)[8];
}
static inline uint32_t mct_dtype_size(uint8_t dtype) {
    return dtype == MCT_INT8 ? 1 : 4;
}

/* Elements of tensor t that are trained: a prefix (the first output channels of a weight). */
static inline uint32_t mct_ttrained(const mct_model_t *m, uint16_t t) {
    return (mct_tentry(m, t)[9] & MCT_TF_TRAINABLE) ? mct_rd32(mct_tentry(m, t) + 12) : 0;
}

/* The file from byte pos on as saved (pos >= 16): the next piece of it, in the file or, for the
 * trained elements of a trained tensor, from its SRAM copy (then returns 1). */
int mct_file_piece(const mct_model_t *m, uint32_t pos, const uint8_t **ptr, uint32_t *len);
/* The data of tensor t: the SRAM copy when it is trained (whole), else the file (Flash) in place. */
const void *mct_tensor(const mct_model_t *m, uint16_t t);
/* The shadow of a trained tensor's trained prefix under the update rule (float32 master, int8
 * fraction), NULL when it is not trained or the rule keeps none. */
void *mct_shadow(const mct_model_t *m, uint16_t t);
/* The float32 master (update rule `master`), else NULL. */
float *mct_master(const mct_model_t *m, uint16_t t);

/* The rows (output channels) of a weight tensor: the first n_sram, which are trained, from their
 * SRAM copy; the others in place in the file. */
typedef struct {
    int8_t *sram;
    const int8_t *flash;
    uint32_t n_sram;
    uint32_t row_len;
} mct_rows_t;

mct_rows_t mct_weight_rows(const mct_model_t *m, uint16_t t, uint32_t row_len);
static inline const int8_t *mct_row(const mct_rows_t *w, uint32_t o) {
    return (o < w->n_sram ? (const int8_t *)w->sram : w->flash) + (size_t)o * w->row_len;
}
void mct_op_decode(const mct_model_t *m, uint16_t k, mct_op_t *op);
/* Bytes of the patch buffer of an activation inside the patch-based stage, 0 for a whole tensor. */
static inline uint32_t mct_act_capacity(const mct_model_t *m, uint16_t a) {
    return mct_rd32(m->buf + m->act_off + (uint32_t)a * MCT_ACT_ENTRY + 20);
}
void mct_act_decode(const mct_model_t *m, uint16_t a, mct_act_t *act);

/* Forward kernels never write the model input, the one activation that may be the caller's. */
static inline int8_t *mct_act_data(const mct_model_t *m, const mct_act_t *a) {
    return a->offset == MCT_IN_PLACE ? (int8_t *)m->input_data : (int8_t *)(m->workspace + a->offset);
}
static inline float *mct_act_grad(const mct_model_t *m, const mct_act_t *a) {
    return a->grad_offset == MCT_NO_GRAD ? NULL : (float *)(m->workspace + a->grad_offset);
}
static inline uint8_t *mct_act_mask(const mct_model_t *m, const mct_act_t *a) {
    return a->mask_offset == MCT_NO_GRAD ? NULL : m->workspace + a->mask_offset;
}

/* A window onto an int8 activation of shape (H, W, C), channels last: rows [y0, y0 + h) and columns
 * [x0, x0 + w), every channel. Element (y, x, c) is at data[(y - y0) * row_stride + (x - x0) * C + c].
 * A whole tensor is the window (0, 0, H, W) with row stride W*C; a patch buffer of the patch-based
 * forward holds just its window, densely (w*C); a tile of a whole tensor keeps the tensor's stride. */
typedef struct {
    int8_t *data;
    int32_t y0, x0;
    uint32_t h, w;
    uint32_t row_stride;
} mct_view_t;

static inline mct_view_t mct_view_whole(const mct_model_t *m, const mct_act_t *a) {
    mct_view_t v = { mct_act_data(m, a), 0, 0, a->h, a->w, (uint32_t)a->w * a->c };
    return v;
}
/* Are the window's rows back to back (c channels a pixel)? */
static inline int mct_view_contiguous(const mct_view_t *v, uint32_t c) {
    return v->row_stride == v->w * c;
}

/* Forward kernels (int8, bit-exact with host_tools/reference/oracle.py). The spatial kernels compute the
 * outputs of the window y, reading the window x of their input; `in` and `out` give the whole
 * tensors' shapes (where the padding is). x must hold every input position those outputs read. */
void mct_conv2d_s8(const mct_op_t *op, const mct_act_t *in, const mct_view_t *x, const mct_act_t *out,
    const mct_view_t *y, const mct_rows_t *weight, const int32_t *bias, const int32_t *mult, const int32_t *shift);
/* The engine's conv (mct_conv2d.c): the fast kernel for the op's shape, or mct_conv2d_s8. */
void mct_conv2d_forward(const mct_op_t *op, const mct_act_t *in, const mct_view_t *x, const mct_act_t *out,
    const mct_view_t *y, const mct_rows_t *weight, const int32_t *bias, const int32_t *mult, const int32_t *shift);
/* FC: its weights' columns in PyTorch's flatten order (c, y, x), its input channels last. */
void mct_fc_s8(const mct_op_t *op, const mct_act_t *in, const int8_t *x, uint32_t n_out, int8_t *y,
    const mct_rows_t *weight, const int32_t *bias, const int32_t *mult, const int32_t *shift);
/* y = a + b over y's window; a and b hold at least that window. */
void mct_add_s8(const mct_op_t *op, uint16_t c, const mct_view_t *a, const mct_view_t *b, const mct_view_t *y);
void mct_avgpool_global_s8(uint16_t c, uint32_t hw, const int8_t *x, int8_t *y);
/* The input element at (c, y, x) flat index i = c * H*W + y * W + x (PyTorch's flatten order). */
static inline uint32_t mct_flat_to_hwc(const mct_act_t *a, uint32_t i) {
    const uint32_t hw = (uint32_t)a->h * a->w;
    return hw == 1 ? i : (i % hw) * a->c + i / hw;
}
void mct_maxpool2d_s8(const mct_op_t *op, const mct_act_t *in, const mct_view_t *x, const mct_act_t *out,
    const mct_view_t *y);
void mct_avgpool2d_s8(const mct_op_t *op, const mct_act_t *in, const mct_view_t *x, const mct_act_t *out,
    const mct_view_t *y);
/* Lookup-table activation (mct_lut_s8.c): y = table[x + 128] over y's window; x holds that window. */
void mct_lut_s8(const int8_t *table, uint16_t c, const mct_view_t *x, const mct_view_t *y);
int mct_lut_check(mct_model_t *m, uint16_t k, const mct_op_t *op, const mct_act_t *in, const mct_act_t *out);
/* Channel concatenation (mct_concat_s8.c): y's window = [a, b] per pixel, each requantized. */
void mct_concat_s8(const mct_op_t *op, uint16_t ca, uint16_t cb, const mct_view_t *a, const mct_view_t *b,
    const mct_view_t *y);
int mct_concat_check(mct_model_t *m, uint16_t k, const mct_op_t *op, const mct_act_t *a, const mct_act_t *b,
    const mct_act_t *out);
/* Gate multiply (mct_mul_s8.c): y's window = x * gate[c], requantized; gate: C int8 values. */
void mct_mul_s8(const mct_op_t *op, uint16_t c, const mct_view_t *x, const int8_t *gate, const mct_view_t *y);
int mct_mul_check(mct_model_t *m, uint16_t k, const mct_op_t *op, const mct_act_t *x, const mct_act_t *gate,
    const mct_act_t *out);
/* Ops reading a second input (in1): add, concatenation, gate multiply. */
static inline int mct_two_inputs(const mct_op_t *op) {
    return op->type == MCT_OP_ADD || op->type == MCT_OP_CONCAT || op->type == MCT_OP_MUL;
}

/* Patch-based forward of the frozen first stage (mct_patch.c). */
typedef struct {
    int32_t y0, x0, h, w;
} mct_region_t;
/* The window of op k's output that patch p (row-major in the grid) needs, for every op k of the
 * stage: regions[k], h == 0 where none. */
void mct_patch_regions(const mct_model_t *m, uint32_t p, mct_region_t *regions);
int mct_forward_stage(mct_model_t *m);
/* The rows [*y0, *y1) of the model input that the stage ops reading it need in a patch (regions). */
void mct_patch_input_rows(const mct_model_t *m, const mct_region_t *regions, int32_t *y0, int32_t *y1);
/* The model input's band (mct_band.c): rows [y0, y1) of the frame at data, at most `rows` of them. */
typedef struct {
    int8_t *data;
    uint32_t rows, row_bytes;
    int32_t y0, y1, h;
} mct_band_t;
void mct_band_start(mct_model_t *m, mct_band_t *b);
mct_view_t mct_band_view(const mct_band_t *b, uint16_t w);
/* Move the band down to rows [y0, y1) (y0 and y1 never decrease), reading the new rows. */
int mct_band_move(mct_model_t *m, mct_band_t *b, int32_t y0, int32_t y1);
/* Read the frame's rows below the band that no tile needed. */
int mct_band_finish(mct_model_t *m, mct_band_t *b);
/* Op's forward on windows: x (and x1, the add's second input) of its inputs, y of its output. */
void mct_forward_views(mct_model_t *m, const mct_op_t *op, const mct_view_t *x, const mct_view_t *x1,
    const mct_view_t *y);

/* Backward kernels (float32, gradients in real units). Gradients are channel-planar, [C][H][W] (the
 * backward works output channel by channel); activations are channels last. */
/* Pixels or channels a backward loop takes at a time with a float32 buffer on the stack. */
#define MCT_BWD_CHUNK 32u
static inline int mct_pointwise_op(const mct_op_t *op) {
    return op->kh == 1 && op->kw == 1 && op->sh == 1 && op->sw == 1 && op->ph == 0 && op->pw == 0;
}
/* The clamp mask of op's output y (channels last), kept channel-planar like the gradients. */
void mct_clamp_mask_save(const mct_op_t *op, const mct_act_t *out, const int8_t *y, uint8_t *mask);
void mct_clamp_mask_f32(uint32_t n, const uint8_t *mask, float *g);
/* The clamp mask of the n gradient elements from element `first` on. */
void mct_clamp_mask_range_f32(const uint8_t *mask, uint32_t first, uint32_t n, float *g);
void mct_conv2d_input_grad_f32(const mct_op_t *op, const mct_act_t *in, const mct_act_t *out,
    uint32_t o, const int8_t *w_row, const float *g_row, float wscale, float *gin);
float mct_conv2d_weight_grad_f32(const mct_op_t *op, const mct_act_t *in, const int8_t *x,
    const mct_act_t *out, uint32_t c, int32_t ky, int32_t kx, const float *g_row);
void mct_fc_input_grad_f32(uint32_t n_in, uint32_t n_out, const mct_rows_t *weight, const float *g,
    const float *wscale, float *gin);
void mct_maxpool2d_input_grad_f32(const mct_op_t *op, const mct_act_t *in, const int8_t *x,
    const mct_act_t *out, const float *gout, float *gin);
void mct_avgpool2d_input_grad_f32(const mct_op_t *op, const mct_act_t *in, const mct_act_t *out,
    const float *gout, float *gin);
float mct_softmax_xent_f32(const int32_t *z, uint32_t n, uint32_t label, float out_scale,
    const float *exp_table, float *g);

/* The unclamped logits (mct_logits.c): the last op's output before its int8 clamp, int32 steps of
 * its scale from its zero point, kept after the output's int8 values in its arena buffer. */
int32_t *mct_logits32(const mct_model_t *m, uint32_t *n);
void mct_logits_save(mct_model_t *m, const mct_op_t *op, const int8_t *x, const int8_t *x1);
int32_t mct_logits_max(const int32_t *z, uint32_t n, uint32_t *at);
float mct_exp_neg(const float *table, uint32_t d);

/* Update rules (mct_update_rule.c). */
int32_t mct_round_clamp(float x, float lo, float hi);
uint32_t mct_rng_at(uint32_t seed, uint32_t i);
int32_t mct_apply_step(mct_model_t *m, int32_t w, void *shadow, uint32_t i, float step, int32_t lo,
    int32_t hi, uint32_t *skipped);
uint64_t mct_shadow_bytes(uint8_t train_flags, uint32_t n);
void mct_shadow_init(uint8_t train_flags, void *shadow, const void *src, uint8_t dtype, uint32_t n);

uint32_t mct_rng_draw(mct_model_t *m);
int32_t mct_apply_step_q8(mct_model_t *m, int32_t w, void *shadow, uint32_t i, int64_t s, int valid,
    int32_t lo, int32_t hi, uint32_t *skipped);
/* mct_apply_step_q8 on the n int8 weights w[0..n) (elements i0 + j of the tensor), every step valid,
 * clamped to [-127, 127]: one call for a run of them. */
void mct_apply_steps_q8_s8(mct_model_t *m, int8_t *w, void *shadow, uint32_t i0, uint32_t n, const int64_t *s);

/* Integer backward (mct_backward_int.c), header byte 50 bit 2. */
int16_t *mct_gexp(const mct_model_t *m);
int64_t mct_shift_round(int64_t v, int32_t s);
void mct_f32_split(float f, int32_t *mant, int32_t *exp);
float mct_softmax_xent_int(mct_model_t *m, const int32_t *logits, uint32_t n, uint32_t label, float out_scale,
    const float *exp_table, int32_t *g, uint16_t out_act);
int mct_backward_op_int(mct_model_t *m, uint16_t k, const mct_op_t *op, float lr);
/* The gradient buffer of activation a for op k (mct_train.c): zeroed by its first writer. */
void *mct_input_grad(mct_model_t *m, uint16_t k, uint16_t a);
/* Is op k the head of a block with a fused backward, or one of the two ops before such a head? */
static inline int mct_fused_head(const mct_model_t *m, uint16_t k) {
    return k < m->n_ops && (mct_op_flags(m, k) & MCT_OF_FUSED);
}
/* Is op k the expansion of a fused block whose backward recomputes its clamp mask (it has none)? */
static inline int mct_mask_recomputed(const mct_model_t *m, uint16_t k) {
    return k + 2u < m->n_ops && mct_op_flags(m, (uint16_t)(k + 2)) == (MCT_OF_FUSED | MCT_OF_RECOMPUTE);
}
static inline int mct_fused_member(const mct_model_t *m, uint16_t k) {
    return mct_fused_head(m, k + 1) || mct_fused_head(m, k + 2);
}
/* The backward of a fused block, at its head k (mct_block_backward.c). */
int mct_block_backward_f32(mct_model_t *m, uint16_t k, float lr);
/* Row-streamed frozen blocks (mct_rows.c): the first and last op of the block op k belongs to,
 * its forward, and the loader's check of its records. */
uint16_t mct_rows_first(const mct_model_t *m, uint16_t k);
uint16_t mct_rows_last(const mct_model_t *m, uint16_t first);
int mct_forward_rows(mct_model_t *m, uint16_t first);
int mct_rows_check(mct_model_t *m, uint16_t first, uint16_t stage_ops);
void mct_forward_in_place(mct_model_t *m, const mct_op_t *op, const mct_act_t *in, const mct_act_t *out);
uint32_t mct_in_place_ring_bytes(const mct_op_t *op, const mct_act_t *out);
int mct_in_place_check(mct_model_t *m, uint16_t k);
/* Is activation a read by an op other than k (mct_model.c)? */
int mct_read_elsewhere(const mct_model_t *m, uint16_t a, uint16_t k);
/* Does depthwise conv k write its input gradient one channel below its output gradient (mct_backward_conv2d.c)? */
int mct_in_place(const mct_model_t *m, uint16_t k, const mct_op_t *op, const mct_act_t *in, const mct_act_t *out);

/* The float32 backward of op k of each type (mct_backward_<op>.c), called by mct_backward_op with
 * the op, its input and output activations and the output's gradient (for conv, FC and add with
 * the clamp mask applied): input gradients, then the in-place updates of its trained tensors. */
int mct_backward_pool_f32(mct_model_t *m, uint16_t k, const mct_op_t *op, const mct_act_t *in,
    const mct_act_t *out, float *gout, float lr);
int mct_backward_add_f32(mct_model_t *m, uint16_t k, const mct_op_t *op, const mct_act_t *in,
    const mct_act_t *out, float *gout, float lr);
int mct_backward_conv2d_f32(mct_model_t *m, uint16_t k, const mct_op_t *op, const mct_act_t *in,
    const mct_act_t *out, float *gout, float lr);
int mct_backward_fc_f32(mct_model_t *m, uint16_t k, const mct_op_t *op, const mct_act_t *in,
    const mct_act_t *out, float *gout, float lr);
int mct_backward_lut_f32(mct_model_t *m, uint16_t k, const mct_op_t *op, const mct_act_t *in,
    const mct_act_t *out, float *gout, float lr);
/* The lookup table's integer backward (mct_backward_lut.c), with the block floating point of
 * mct_backward_int.c: its exponent alignment and renormalization of a gradient buffer. */
int mct_backward_lut_int(mct_model_t *m, uint16_t k, const mct_op_t *op, const mct_act_t *in, const int32_t *g);
int32_t mct_align_grad(mct_model_t *m, uint16_t a, int32_t e_t);
void mct_normalize_grad(mct_model_t *m, uint16_t a);
int32_t mct_bitlen64(uint64_t v);
void mct_weighted_grad_int(mct_model_t *m, uint16_t a, const int32_t *g, uint32_t n, int32_t e_g,
    float (*w)(const void *ctx, uint32_t i), const void *ctx, int32_t *gin);
/* The gate multiply's backward (mct_backward_mul.c): to the tensor and to the gate. */
int mct_backward_mul_f32(mct_model_t *m, uint16_t k, const mct_op_t *op, const mct_act_t *in,
    const mct_act_t *out, float *gout, float lr);
int mct_backward_mul_int(mct_model_t *m, uint16_t k, const mct_op_t *op, const mct_act_t *in, const int32_t *g);
void mct_add_plain_grad(mct_model_t *m, uint16_t a, const int32_t *g, uint32_t n, int32_t e_g, int32_t *gin);
/* The concatenation's backward (mct_backward_concat.c): the output gradient split into its inputs'. */
int mct_backward_concat_f32(mct_model_t *m, uint16_t k, const mct_op_t *op, const float *gout);
int mct_backward_concat_int(mct_model_t *m, uint16_t k, const mct_op_t *op, const int32_t *g);

/* In-place SGD updates with Quantization-Aware Scaling (mct_sgd_qas.c). */
/* Each returns how many element updates it skipped because they were not finite. */
uint32_t mct_update_bias(mct_model_t *m, const mct_op_t *op, uint32_t o, float grad, float lr);
uint32_t mct_update_fc_weight(mct_model_t *m, const mct_op_t *op, const mct_act_t *in, const int8_t *x,
    const float *gpre, float lr);
uint32_t mct_update_conv_weight(mct_model_t *m, const mct_op_t *op, const mct_act_t *in,
    const int8_t *x, const mct_act_t *out, uint32_t o, const float *g_row, float lr);

float mct_logf(float x);

#endif
