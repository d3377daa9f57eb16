/* The model once loaded (mct_load.c checked it): decoding its records, its tensors (trained ones
 * from their SRAM copies), the workspace (arena, trained-tensor index and copies), settings, saving. */
#include "mct_internal.h"

void mct_act_decode(const mct_model_t *m, uint16_t a, mct_act_t *act) {
    const uint8_t *p = m->buf + m->act_off + (uint32_t)a * MCT_ACT_ENTRY;
    act->c = mct_rd16(p);
    act->h = mct_rd16(p + 2);
    act->w = mct_rd16(p + 4);
    act->size = (uint32_t)act->c * act->h * act->w;
    act->offset = mct_rd32(p + 8);
    act->grad_offset = mct_rd32(p + 12);
    act->mask_offset = mct_rd32(p + 16);
}

void mct_op_decode(const mct_model_t *m, uint16_t k, mct_op_t *op) {
    const uint8_t *p = mct_op_entry(m, k);
    op->type = p[0];
    op->in0 = mct_rd16(p + 2);
    op->in1 = mct_rd16(p + 4);
    op->out = mct_rd16(p + MCT_OPE_OUT);
    op->in0_zero = (int16_t)mct_rd16(p + 8);
    op->in1_zero = (int16_t)mct_rd16(p + 10);
    op->out_zero = (int16_t)mct_rd16(p + 12);
    op->act_min = (int8_t)p[14];
    op->act_max = (int8_t)p[15];
    op->weight = mct_rd16(p + 16);
    op->bias = mct_rd16(p + 18);
    op->mult = mct_rd16(p + 20);
    op->shift = mct_rd16(p + 22);
    op->wscale = mct_rd16(p + 24);
    op->kh = p[26];
    op->kw = p[27];
    op->sh = p[28];
    op->sw = p[29];
    op->ph = p[30];
    op->pw = p[31];
    op->groups = mct_rd16(p + 32);
    op->in0_scale = mct_rdf32(p + 36);
    op->in1_scale = mct_rdf32(p + 40);
    op->out_scale = mct_rdf32(p + 44);
    for (int i = 0; i < 3; i++) {
        op->add_mult[i] = (int32_t)mct_rd32(p + 48 + 4 * i);
        op->add_shift[i] = (int8_t)p[60 + i];
    }
    op->add_left_shift = p[63];
}

int mct_tensor_trained(const mct_model_t *m, uint16_t t) {
    return t < m->n_tensors && (mct_tentry(m, t)[9] & MCT_TF_TRAINABLE);
}

/* Trained tensors live in the workspace after the arena: first an index (one entry per tensor: where
 * its copy starts after the index, in 4-byte units; u16 where every offset fits, else u32), then for
 * each trained tensor its int copy (4-aligned) and its shadow under the update rule of header byte 50
 * (float32 master: 4 B per element, frac8: 1 B, stochastic and nearest: none). */
static uint8_t *trained_base(const mct_model_t *m) {
    return m->workspace + mct_align4(m->arena_size);
}

static uint8_t *trained_copy(const mct_model_t *m, uint16_t t) {
    const uint8_t *index = trained_base(m);
    return trained_base(m) + 4u * (m->index16 ? ((const uint16_t *)index)[t] : ((const uint32_t *)index)[t]);
}

const void *mct_tensor(const mct_model_t *m, uint16_t t) {
    if (m->n_trained && mct_tensor_trained(m, t)) {
        return trained_copy(m, t);
    }
    return m->buf + mct_rd32(mct_tentry(m, t));
}

void *mct_shadow(const mct_model_t *m, uint16_t t) {
    if (!m->n_trained || !mct_tensor_trained(m, t) || mct_shadow_bytes(m->train_flags, 1) == 0) {
        return NULL;
    }
    uint32_t bytes = mct_ttrained(m, t) * mct_dtype_size(mct_tdtype(m, t));
    return trained_copy(m, t) + mct_align4(bytes);
}

float *mct_master(const mct_model_t *m, uint16_t t) {
    return (m->train_flags & MCT_TRAIN_RULE_MASK) == MCT_RULE_MASTER ? (float *)mct_shadow(m, t) : NULL;
}

mct_rows_t mct_weight_rows(const mct_model_t *m, uint16_t t, uint32_t row_len) {
    mct_rows_t w;
    w.flash = (const int8_t *)(m->buf + mct_rd32(mct_tentry(m, t)));
    w.row_len = row_len;
    w.n_sram = (m->n_trained && row_len) ? mct_ttrained(m, t) / row_len : 0;
    w.sram = w.n_sram ? (int8_t *)trained_copy(m, t) : NULL;
    return w;
}

int mct_read_elsewhere(const mct_model_t *m, uint16_t a, uint16_t k) {
    for (uint16_t j = 0; j < m->n_ops; j++) {
        mct_op_t op;
        mct_op_decode(m, j, &op);
        if (j != k && (op.in0 == a || (mct_two_inputs(&op) && op.in1 == a))) {
            return 1;
        }
    }
    return 0;
}

size_t mct_workspace_size(const mct_model_t *m) {
    return (size_t)mct_align4(m->arena_size) + m->trained_bytes;
}

int mct_model_attach(mct_model_t *m, void *workspace) {
    m->workspace = (uint8_t *)workspace;
    /* the fill pattern lets mct_arena_peak measure how much of the arena was written */
    memset(m->workspace, MCT_ARENA_FILL, m->arena_size);
    if (!m->n_trained) {
        return MCT_OK;
    }
    if (m->train_flags & MCT_TRAIN_INT_BACKWARD) {
        for (uint16_t a = 0; a < m->n_acts; a++) {
            mct_gexp(m)[a] = -32768;    /* no gradient yet */
        }
    }
    uint8_t *index = trained_base(m);
    uint32_t pos = m->index16 ? mct_align4(2u * m->n_tensors) : 4u * m->n_tensors;    /* after the index */
    for (uint16_t t = 0; t < m->n_tensors; t++) {
        const uint32_t at = mct_tensor_trained(m, t) ? pos / 4u : 0u;
        if (m->index16) {
            ((uint16_t *)index)[t] = (uint16_t)at;
        } else {
            ((uint32_t *)index)[t] = at;
        }
        if (!at) {
            continue;
        }
        const uint32_t count = mct_ttrained(m, t);
        const uint8_t dtype = mct_tdtype(m, t);
        const uint32_t bytes = count * mct_dtype_size(dtype);
        const uint8_t *src = m->buf + mct_rd32(mct_tentry(m, t));
        memcpy(index + pos, src, bytes);
        mct_shadow_init(m->train_flags, index + pos + mct_align4(bytes), src, dtype, count);
        pos += mct_align4(bytes) + (uint32_t)mct_shadow_bytes(m->train_flags, count);
    }
    return MCT_OK;
}

void mct_model_rebind(mct_model_t *m, const uint8_t *buf) {
    m->buf = buf;
}

void mct_set_qas(mct_model_t *m, int on) {
    m->qas = on != 0;
}

void mct_set_seed(mct_model_t *m, uint32_t seed) {
    m->rng_seed = seed;
    m->rng_counter = 0;
}

uint32_t mct_arena_peak(const mct_model_t *m) {
    uint32_t n = m->arena_size;
    while (n > 0 && m->workspace[n - 1] == MCT_ARENA_FILL) {
        n--;
    }
    return n;
}

int mct_op_get(const mct_model_t *m, uint16_t k, mct_op_t *op) {
    if (k >= m->n_ops) {
        return MCT_E_OP_INDEX;
    }
    mct_op_decode(m, k, op);
    return MCT_OK;
}

int mct_act_get(const mct_model_t *m, uint16_t a, mct_act_t *act) {
    if (a >= m->n_acts) {
        return MCT_E_OP_INDEX;
    }
    mct_act_decode(m, a, act);
    return MCT_OK;
}

/* Saving: header bytes 12..15 (the CRC) come from crc_bytes, trained tensors from their copies. */
int mct_file_piece(const mct_model_t *m, uint32_t pos, const uint8_t **ptr, uint32_t *len) {
    uint32_t end = m->file_size;
    for (uint16_t t = 0; t < m->n_tensors; t++) {
        if (!mct_tensor_trained(m, t)) {
            continue;
        }
        uint32_t off = mct_rd32(mct_tentry(m, t));
        uint32_t bytes = mct_ttrained(m, t) * mct_dtype_size(mct_tdtype(m, t));
        if (pos >= off && pos < off + bytes) {
            *ptr = (const uint8_t *)mct_tensor(m, t) + (pos - off);
            *len = off + bytes - pos;
            return 1;
        }
        if (off > pos && off < end) {
            end = off;
        }
    }
    *ptr = m->buf + pos;
    *len = end - pos;
    return 0;
}

void mct_save_chunk(const mct_model_t *m, uint32_t pos, uint32_t crc, uint8_t *crc_bytes,
    const uint8_t **ptr, uint32_t *len) {
    if (pos < MCT_H_CRC) {
        *ptr = m->buf + pos;
        *len = MCT_H_CRC - pos;
    } else if (pos < MCT_H_CRC_END) {
        for (int i = 0; i < 4; i++) {
            crc_bytes[i] = (uint8_t)(crc >> (8 * i));
        }
        *ptr = crc_bytes + (pos - MCT_H_CRC);
        *len = MCT_H_CRC_END - pos;
    } else {
        mct_file_piece(m, pos, ptr, len);
    }
}

uint32_t mct_save_crc(const mct_model_t *m) {
    uint32_t crc = 0, pos = MCT_H_CRC_END;
    while (pos < m->file_size) {
        const uint8_t *p;
        uint32_t n;
        mct_file_piece(m, pos, &p, &n);
        crc = mct_crc32(crc, p, n);
        pos += n;
    }
    return crc;
}

/* FNV-1a of what the engine re-reads on every call and validated only once: the header after the
 * CRC and the three tables. A binding whose buffer may be written to (a bytearray) compares it
 * before each call, as the whole-file CRC would be too slow for that. */
uint32_t mct_meta_checksum(const mct_model_t *m) {
    const uint32_t offs[3] = { m->tensor_off, m->act_off, m->op_off };
    const uint32_t bytes[3] = { (uint32_t)m->n_tensors * MCT_TENSOR_ENTRY, (uint32_t)m->n_acts * MCT_ACT_ENTRY,
                                (uint32_t)m->n_ops * MCT_OP_ENTRY };
    uint32_t h = 2166136261u;
    for (uint32_t i = MCT_H_CRC_END; i < MCT_HEADER_SIZE; i++) {
        h = (h ^ m->buf[i]) * 16777619u;
    }
    for (int t = 0; t < 3; t++) {
        const uint8_t *p = m->buf + offs[t];
        for (uint32_t i = 0; i < bytes[t]; i++) {
            h = (h ^ p[i]) * 16777619u;
        }
    }
    return h;
}
