/* The update blob: the trained tensors' int values with their scales, read out of a model and
 * loaded back in place; what a fleet exchanges each round (docs/format.md, "Update blob").
 * Nothing frozen is in it: its model id (a CRC-32 of the file without the trained values) ties it
 * to one model, and a blob of another model, a corrupted or an out-of-range one is rejected
 * before anything is written. host_tools/fleet/blob.py writes and reads the same bytes. */
#include "mct_internal.h"

#define BLOB_MAGIC "MCTU"
#define BLOB_VERSION 1
#define BLOB_HEADER 24
#define BLOB_ENTRY 12
#define BLOB_WEIGHT 1           /* entry kinds: a weight's trained rows (one scale per row) */
#define BLOB_BIAS 2             /* a bias (one scale per element: w_scale * x_scale) */

static void wr16(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void wr32(uint8_t *p, uint32_t v) {
    wr16(p, v);
    wr16(p + 2, v >> 16);
}

/* The file's bytes [16, size) without the trained elements of trained tensors: the same before
 * and after training and saving. */
uint32_t mct_model_id(const mct_model_t *m) {
    uint32_t crc = 0, pos = MCT_H_CRC_END;
    while (pos < m->file_size) {
        const uint8_t *p;
        uint32_t n;
        if (!mct_file_piece(m, pos, &p, &n)) {
            crc = mct_crc32(crc, p, n);
        }
        pos += n;
    }
    return crc;
}

/* One entry of the blob: a trained tensor of a conv or fully connected op, in op order. */
typedef struct {
    uint16_t tensor;
    uint8_t dtype, kind;
    uint32_t channels, count;
    const float *wscale;
    float x_scale;
} entry_t;

/* Entry i (in op order: weight, then bias), or 0 when there are fewer. */
static int blob_entry(const mct_model_t *m, uint32_t i, entry_t *e) {
    for (uint16_t k = 0; k < m->n_ops; k++) {
        mct_op_t op;
        mct_op_decode(m, k, &op);
        if (op.type != MCT_OP_CONV2D && op.type != MCT_OP_FC) {
            continue;
        }
        const uint16_t parts[2] = { op.weight, op.bias };
        for (int p = 0; p < 2; p++) {
            if (parts[p] == MCT_NONE || !mct_tensor_trained(m, parts[p]) || i-- > 0) {
                continue;
            }
            mct_act_t out;
            mct_act_decode(m, op.out, &out);
            e->tensor = parts[p];
            e->dtype = mct_tdtype(m, parts[p]);
            e->kind = p == 0 ? BLOB_WEIGHT : BLOB_BIAS;
            e->count = mct_ttrained(m, parts[p]);
            /* a weight's trained rows: its first output channels */
            e->channels = p == 0 ? e->count / (mct_tcount(m, op.weight) / out.c) : e->count;
            e->wscale = (const float *)mct_tensor(m, op.wscale);
            e->x_scale = op.in0_scale;
            return 1;
        }
    }
    return 0;
}

static float entry_scale(const entry_t *e, uint32_t c) {
    return e->kind == BLOB_WEIGHT ? e->wscale[c] : e->wscale[c] * e->x_scale;
}

static uint32_t entry_bytes(const entry_t *e) {
    return BLOB_ENTRY + 4u * e->channels + mct_align4(e->count * mct_dtype_size(e->dtype));
}

uint32_t mct_blob_size(const mct_model_t *m) {
    entry_t e;
    uint32_t size = BLOB_HEADER;
    for (uint32_t i = 0; blob_entry(m, i, &e); i++) {
        size += entry_bytes(&e);
    }
    return size;
}

int mct_blob_write(mct_model_t *m, uint8_t *out, size_t len) {
    if (!m->n_trained) {
        MCT_FAIL(m, MCT_E_NOT_TRAINABLE, 0, 0, 0);
    }
    if (!m->workspace) {
        MCT_FAIL(m, MCT_E_NOT_ATTACHED, 0, 0, 0);
    }
    const uint32_t size = mct_blob_size(m);
    if (len < size) {
        MCT_FAIL(m, MCT_E_TRUNCATED, 0, (uint32_t)len, size);
    }
    memset(out, 0, size);
    memcpy(out, BLOB_MAGIC, 4);
    wr16(out + 4, BLOB_VERSION);
    wr16(out + 6, BLOB_HEADER);
    wr32(out + 8, size);
    wr32(out + 16, mct_model_id(m));
    entry_t e;
    uint32_t pos = BLOB_HEADER, n = 0;
    for (; blob_entry(m, n, &e); n++) {
        uint8_t *p = out + pos;
        wr16(p, e.tensor);
        p[2] = e.dtype;
        p[3] = e.kind;
        wr32(p + 4, e.channels);
        wr32(p + 8, e.count);
        p += BLOB_ENTRY;
        for (uint32_t c = 0; c < e.channels; c++, p += 4) {
            const float s = entry_scale(&e, c);
            uint32_t u;
            memcpy(&u, &s, 4);
            wr32(p, u);
        }
        const void *v = mct_tensor(m, e.tensor);
        for (uint32_t j = 0; j < e.count; j++) {
            if (e.dtype == MCT_INT8) {
                *p++ = (uint8_t)((const int8_t *)v)[j];
            } else {
                wr32(p, (uint32_t)((const int32_t *)v)[j]);
                p += 4;
            }
        }
        pos += entry_bytes(&e);
    }
    wr16(out + 20, n);
    wr32(out + 12, mct_crc32(0, out + 16, size - 16));
    return MCT_OK;
}

/* Every check of a blob, before anything is written: header, size, CRC, model, layout, scales,
 * values. */
static int blob_check(mct_model_t *m, const uint8_t *b, size_t len) {
    if (len < BLOB_HEADER) {
        MCT_FAIL(m, MCT_E_BLOB, 0, MCT_B_TRUNCATED, (uint32_t)len);
    }
    if (b[0] != BLOB_MAGIC[0] || b[1] != BLOB_MAGIC[1] || b[2] != BLOB_MAGIC[2] || b[3] != BLOB_MAGIC[3]) {
        MCT_FAIL(m, MCT_E_BLOB, 0, MCT_B_MAGIC, 0);
    }
    if (mct_rd16(b + 4) != BLOB_VERSION || mct_rd16(b + 6) != BLOB_HEADER || mct_rd16(b + 22) != 0) {
        MCT_FAIL(m, MCT_E_BLOB, 0, MCT_B_VERSION, mct_rd16(b + 4));
    }
    const uint32_t size = mct_rd32(b + 8);
    if (size != len) {
        MCT_FAIL(m, MCT_E_BLOB, 0, MCT_B_SIZE, (uint32_t)len);
    }
    if (mct_crc32(0, b + 16, size - 16) != mct_rd32(b + 12)) {
        MCT_FAIL(m, MCT_E_BLOB, 0, MCT_B_CRC, 0);
    }
    if (mct_rd32(b + 16) != mct_model_id(m)) {
        MCT_FAIL(m, MCT_E_BLOB, 0, MCT_B_MODEL, mct_rd32(b + 16));
    }
    if (size != mct_blob_size(m)) {
        MCT_FAIL(m, MCT_E_BLOB, 0, MCT_B_LAYOUT, 0);
    }
    entry_t e;
    uint32_t pos = BLOB_HEADER, n = 0;
    for (; blob_entry(m, n, &e); n++) {
        const uint8_t *p = b + pos;
        if (mct_rd16(p) != e.tensor || p[2] != e.dtype || p[3] != e.kind || mct_rd32(p + 4) != e.channels ||
            mct_rd32(p + 8) != e.count) {
            MCT_FAIL(m, MCT_E_BLOB, (int)n, MCT_B_LAYOUT, 0);
        }
        p += BLOB_ENTRY;
        for (uint32_t c = 0; c < e.channels; c++, p += 4) {
            const float s = entry_scale(&e, c);
            uint32_t u;
            memcpy(&u, &s, 4);
            if (mct_rd32(p) != u) {
                MCT_FAIL(m, MCT_E_BLOB, (int)n, MCT_B_SCALE, c);
            }
        }
        for (uint32_t j = 0; j < e.count; j++) {
            const int32_t v = e.dtype == MCT_INT8 ? (int8_t)p[j] : (int32_t)mct_rd32(p + 4u * j);
            const int32_t limit = e.dtype == MCT_INT8 ? 127 : MCT_BIAS_LIMIT;
            if (v < -limit || v > limit) {
                MCT_FAIL(m, MCT_E_BLOB, (int)n, MCT_B_RANGE, j);
            }
        }
        pos += entry_bytes(&e);
    }
    if (mct_rd16(b + 20) != n) {
        MCT_FAIL(m, MCT_E_BLOB, (int)n, MCT_B_LAYOUT, 0);
    }
    return MCT_OK;
}

int mct_blob_load(mct_model_t *m, const uint8_t *blob, size_t len) {
    if (!m->n_trained) {
        MCT_FAIL(m, MCT_E_NOT_TRAINABLE, 0, 0, 0);
    }
    if (!m->workspace) {
        MCT_FAIL(m, MCT_E_NOT_ATTACHED, 0, 0, 0);
    }
    const int r = blob_check(m, blob, len);
    if (r != MCT_OK) {
        return r;
    }
    entry_t e;
    uint32_t pos = BLOB_HEADER;
    for (uint32_t n = 0; blob_entry(m, n, &e); n++) {
        const uint8_t *p = blob + pos + BLOB_ENTRY + 4u * e.channels;
        void *v = (void *)mct_tensor(m, e.tensor);
        for (uint32_t j = 0; j < e.count; j++) {
            if (e.dtype == MCT_INT8) {
                ((int8_t *)v)[j] = (int8_t)p[j];
            } else {
                ((int32_t *)v)[j] = (int32_t)mct_rd32(p + 4u * j);
            }
        }
        /* the update rule's shadow restarts at the loaded values, as after loading a file */
        void *shadow = mct_shadow(m, e.tensor);
        if (shadow) {
            mct_shadow_init(m->train_flags, shadow, v, e.dtype, e.count);
        }
        pos += entry_bytes(&e);
    }
    return MCT_OK;
}
