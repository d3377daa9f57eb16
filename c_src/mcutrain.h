/*
 * mcutrain: int8 inference and sparse on-device training, portable C99 core.
 *
 * No MicroPython header and no libc beyond memcpy/memset: the same sources build into firmware
 * and as a dynamic native module. The core never allocates: the caller gives it one workspace
 * of mct_workspace_size() bytes (arena of the static memory plan + trained copies).
 */
#ifndef MCUTRAIN_H
#define MCUTRAIN_H

#include <stddef.h>
#include <stdint.h>

#define MCT_VERSION 3
#define MCT_MAX_OPS 1024
#define MCT_MAX_ACTS 1024
/* The patch-based stage: at most this many ops, in at most 15 x 15 patches. */
#define MCT_MAX_STAGE_OPS 64
#define MCT_NONE 0xFFFFu

enum mct_op_type {
    MCT_OP_CONV2D = 1, MCT_OP_ADD = 2, MCT_OP_AVGPOOL = 3, MCT_OP_FC = 4,
    MCT_OP_MAXPOOL2D = 5, MCT_OP_AVGPOOL2D = 6, MCT_OP_LUT = 7, MCT_OP_CONCAT = 8, MCT_OP_MUL = 9,
};
enum mct_dtype { MCT_INT8 = 1, MCT_INT32 = 2, MCT_FLOAT32 = 3 };

/* Error codes; `index`, `a`, `b` of mct_error_t give the details the binding puts in its message. */
enum mct_status {
    MCT_OK = 0,
    MCT_E_TRUNCATED,        /* a: buffer length, b: bytes needed */
    MCT_E_MAGIC,
    MCT_E_VERSION,          /* a: version found */
    MCT_E_SIZE,             /* a: buffer length, b: file size in the header */
    MCT_E_CRC,              /* a: stored, b: computed */
    MCT_E_TABLE,            /* index: 0 tensors, 1 activations, 2 ops */
    MCT_E_TOO_MANY,         /* a: count, b: limit */
    MCT_E_TENSOR,           /* index: tensor; bad offset, size or dtype */
    MCT_E_ALIGN,            /* index: tensor whose data is not 4-byte aligned in memory */
    MCT_E_ACT,              /* index: activation; bad shape or outside the arena */
    MCT_E_OP,               /* index: op; inconsistent op (a: what, see mct_op_problem) */
    MCT_E_TRAIN,            /* index: tensor; a trained tensor this engine cannot train */
    MCT_E_NOT_TRAINABLE,    /* train_step on a model with no trained tensor */
    MCT_E_INPUT,            /* a: bytes given, b: bytes expected */
    MCT_E_LABEL,            /* a: label, b: classes */
    MCT_E_LR,               /* learning rate not finite or negative */
    MCT_E_NUMERIC,          /* loss not finite: step skipped, weights untouched (a non-finite update
                             * of one element is skipped alone, counted in skipped_updates) */
    MCT_E_OP_INDEX,         /* a: index, b: number of ops */
    MCT_E_NOT_ATTACHED,
    MCT_E_FLAGS,            /* a: header byte 50 (training flags) with an unknown value */
    MCT_E_BLOB,             /* an update blob refused: a: what (mct_blob_problem), index: entry,
                             * b: the detail named there */
    MCT_E_READ,             /* the input's reader (mct_forward_from): index 0: a short read (a: bytes
                             * received, b: bytes asked), 1: the reader failed, 2: the model has
                             * nowhere to read it into (its input is read in place) */
    MCT_E_COUNT             /* not an error: one more than the last code */
};

/* What MCT_E_OP found wrong (error.a). */
enum mct_op_problem {
    MCT_P_TYPE = 1, MCT_P_ACT_INDEX, MCT_P_ORDER, MCT_P_TENSOR_INDEX, MCT_P_TENSOR_KIND,
    MCT_P_SHAPE, MCT_P_PARAM, MCT_P_ZERO, MCT_P_SCALE, MCT_P_MULTIPLIER, MCT_P_GRAD,
    MCT_P_FAN_IN,           /* more inputs per output than an int32 accumulator holds */
    MCT_P_PATCH,            /* cannot run patch by patch in the first stage (b: which check) */
    MCT_P_FUSED,            /* not a block whose backward can run fused (b: which check) */
    MCT_P_ROWS,             /* not a frozen block that can run row by row (b: which check) */
    MCT_P_IN_PLACE,         /* not a depthwise conv that can write its output over its input (b: which check) */
};

/* What MCT_E_BLOB found wrong (error.a), and its error.b. */
enum mct_blob_problem {
    MCT_B_TRUNCATED = 1,    /* b: bytes given */
    MCT_B_MAGIC, MCT_B_VERSION, /* b: version found */
    MCT_B_SIZE,             /* b: bytes given, not the size in the header */
    MCT_B_CRC,
    MCT_B_MODEL,            /* b: the blob's model id (another model's trained tensors) */
    MCT_B_LAYOUT,           /* entry `index` is not this model's trained tensor */
    MCT_B_SCALE,            /* b: channel whose scale is not this model's */
    MCT_B_RANGE,            /* b: element outside the trained range (int8 +-127, bias +-2147483520) */
};

/* Header byte 50, training flags: bits 0-1 the update rule (how a step reaches the int the
 * forward reads, see c_src/mct_update_rule.c); bit 2 the integer backward (mct_backward_int.c,
 * not with the master rule); the other bits are 0. */
#define MCT_TRAIN_RULE_MASK 0x03u
enum mct_update_rule { MCT_RULE_MASTER = 0, MCT_RULE_FRAC8 = 1, MCT_RULE_STOCHASTIC = 2, MCT_RULE_NEAREST = 3 };
#define MCT_TRAIN_INT_BACKWARD 0x04u
#define MCT_TRAIN_FLAGS_KNOWN 0x07u

/* Inputs per output of a conv or fully connected layer: 255 * 128 * fan-in must fit an int32. */
#define MCT_MAX_FAN_IN 65793u

typedef struct {
    int code;
    int index;
    uint32_t a, b;
} mct_error_t;

typedef struct {
    uint16_t c, h, w;
    uint32_t size;          /* c*h*w */
    uint32_t offset;        /* int8 data in the arena */
    uint32_t grad_offset;   /* float32 gradient in the arena, or MCT_NO_GRAD */
    uint32_t mask_offset;   /* 1-bit clamp mask in the arena, or MCT_NO_GRAD */
} mct_act_t;

#define MCT_NO_GRAD 0xFFFFFFFFu
/* The model input's offset when the forward reads it where the caller keeps it (mct_set_input). */
#define MCT_IN_PLACE 0xFFFFFFFFu

/* One op record of the file, decoded. */
typedef struct {
    uint8_t type;
    uint16_t in0, in1, out;
    int32_t in0_zero, in1_zero, out_zero, act_min, act_max;
    uint16_t weight, bias, mult, shift, wscale;
    uint8_t kh, kw, sh, sw, ph, pw;
    uint16_t groups;
    float in0_scale, in1_scale, out_scale;
    int32_t add_mult[3];
    int32_t add_shift[3];
    int32_t add_left_shift;
} mct_op_t;

/* A reader of the model input (mct_forward_from): writes the next nbytes of the input's rows (H*W*C,
 * channels last, top to bottom) into dst; returns how many it wrote (0 at the end of its data, fewer
 * than asked: it is asked for the rest), or a negative number when it failed. */
typedef int (*mct_read_fn)(void *ctx, int8_t *dst, size_t nbytes);

typedef struct {
    const uint8_t *buf;
    uint32_t file_size;
    uint16_t n_tensors, n_acts, n_ops;
    uint16_t input, output, exp_table;
    uint32_t tensor_off, act_off, op_off;
    uint32_t arena_size, saved_bytes;
    float input_scale;
    int32_t input_zero;
    uint32_t n_trained;         /* trained tensors */
    uint32_t trained_bytes;     /* their int copies, shadows (update rule) and the index */
    uint8_t *workspace;         /* arena, then the trained-tensor index and copies */
    const int8_t *input_data;   /* the caller's input, when the forward reads it in place */
    mct_read_fn read;           /* or its reader (mct_forward_from), with read_ctx */
    void *read_ctx;
    uint8_t qas;                /* Quantization-Aware Scaling of the updates (default on) */
    uint8_t patch_rows, patch_cols;     /* the grid of the patch-based first stage, 0: none */
    uint16_t stage_ops;         /* ops 0 .. stage_ops-1 run patch by patch (mct_patch.c) */
    uint8_t train_flags;        /* header byte 50: the update rule */
    uint8_t index16;            /* the trained-tensor index has u16 entries (else u32) */
    uint32_t rng_seed;          /* stochastic rounding: number i of the stream is */
    uint32_t rng_counter;       /* mct_rng_at(rng_seed, i); the seed starts as the file's CRC */
    uint32_t gexp_offset;       /* integer backward: int16 gradient exponent per activation */
    uint32_t steps, skipped_steps;
    uint32_t skipped_updates;   /* element updates not written because they were not finite */
    float last_loss;
    mct_error_t error;
} mct_model_t;

/* Loading: validate every offset and size of the file, then attach a workspace. */
int mct_model_init(mct_model_t *m, const uint8_t *buf, size_t len);
size_t mct_workspace_size(const mct_model_t *m);
int mct_model_attach(mct_model_t *m, void *workspace);
/* The buffer may have moved (a GC'd bytes object): point the model at its new address. */
void mct_model_rebind(mct_model_t *m, const uint8_t *buf);
/* Quantization-Aware Scaling of the updates: on (the default) or off. */
void mct_set_qas(mct_model_t *m, int on);
/* Restart the random stream of stochastic rounding at `seed` (it starts as the file's CRC). */
void mct_set_seed(mct_model_t *m, uint32_t seed);

/* Inference and training on one int8 image. */
int mct_set_input(mct_model_t *m, const int8_t *x, size_t len);
/* Does the forward read the model input where the caller keeps it (in place, or row by row from it)?
 * Then x given to mct_set_input must stay valid and unchanged until the forward is done; mct_forward
 * needs it only while it runs. */
int mct_input_in_place(const mct_model_t *m);
/* Rows of the input band of a model converted with --input-buffer rows (its input is fed row by row
 * into a band of the arena, mct_band.c), 0 for any other model. */
uint32_t mct_input_band_rows(const mct_model_t *m);
/* The model input's bytes in the arena (a model whose input is not read in place), to be filled
 * before each forward, e.g. by a camera: the arena reuses them once the forward has read them. NULL
 * when the input is read in place; *len: its size. */
int8_t *mct_input_buffer(mct_model_t *m, size_t *len);
int mct_forward(mct_model_t *m, const int8_t *x, size_t len);
const int8_t *mct_logits(const mct_model_t *m, uint32_t *n);
int mct_argmax(const mct_model_t *m);
int mct_train_step(mct_model_t *m, const int8_t *x, size_t len, uint32_t label, float lr, float *loss);
/* The same with the input from a reader: a model with an input band (mct_input_band_rows) reads it
 * band by band as its first stage moves down, so the whole frame never sits in RAM; a model with its
 * input in the arena reads it whole first. Exactly H*W*C bytes are read. A short read or a failed
 * reader ends the call with MCT_E_READ, before any weight changed. */
int mct_set_reader(mct_model_t *m, mct_read_fn read, void *ctx);
int mct_forward_from(mct_model_t *m, mct_read_fn read, void *ctx);
int mct_train_step_from(mct_model_t *m, mct_read_fn read, void *ctx, uint32_t label, float lr, float *loss);

/* The same steps one op at a time, for custom loops. */
int mct_forward_op(mct_model_t *m, uint16_t k);
int mct_loss_backward(mct_model_t *m, uint32_t label, float *loss);
int mct_backward_op(mct_model_t *m, uint16_t k, float lr);
int mct_op_get(const mct_model_t *m, uint16_t k, mct_op_t *op);
int mct_act_get(const mct_model_t *m, uint16_t a, mct_act_t *act);
int mct_tensor_trained(const mct_model_t *m, uint16_t t);

/* Saving: the file with trained tensors replaced, as consecutive chunks; CRC first. */
uint32_t mct_save_crc(const mct_model_t *m);
/* Next chunk at `pos` (pos < file_size): *ptr/len; header bytes 12..15 hold the new CRC. */
void mct_save_chunk(const mct_model_t *m, uint32_t pos, uint32_t crc, uint8_t *crc_bytes,
    const uint8_t **ptr, uint32_t *len);

/* Memory: the highest arena byte written so far (a fill pattern is kept above it). */
uint32_t mct_arena_peak(const mct_model_t *m);

/* The update blob (c_src/mct_update_blob.c, docs/format.md): the trained tensors' values and
 * scales, what a fleet exchanges. mct_model_id: CRC-32 of the file without its trained values. */
uint32_t mct_model_id(const mct_model_t *m);
uint32_t mct_blob_size(const mct_model_t *m);
int mct_blob_write(mct_model_t *m, uint8_t *out, size_t len);
/* Checks everything (header, CRC, model id, layout, scales, range) before writing anything; the
 * update rule's shadow restarts at the loaded values. */
int mct_blob_load(mct_model_t *m, const uint8_t *blob, size_t len);

uint32_t mct_crc32(uint32_t crc, const uint8_t *p, size_t n);
/* A checksum of the header and tables (what each call re-reads): see whether a writable buffer
 * was modified after loading. */
uint32_t mct_meta_checksum(const mct_model_t *m);

#endif
