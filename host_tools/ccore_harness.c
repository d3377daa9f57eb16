/* The C core as a host shared library for the planner (host_tools/ccore.py): the device's own
 * code simulates training schemes. Loops over many images run here, not in Python. */
#include <stdlib.h>
#include "mcutrain.h"

typedef struct {
    mct_model_t m;
    void *workspace;
} sim_t;

sim_t *sim_load(const uint8_t *buf, size_t len, int *err) {
    sim_t *s = calloc(1, sizeof(*s));
    if (!s) {
        err[0] = -1;
        return NULL;
    }
    err[0] = mct_model_init(&s->m, buf, len);
    err[1] = s->m.error.index;
    if (err[0] != MCT_OK) {
        free(s);
        return NULL;
    }
    s->workspace = malloc(mct_workspace_size(&s->m) + 4);
    if (!s->workspace) {
        free(s);
        err[0] = -1;
        return NULL;
    }
    mct_model_attach(&s->m, s->workspace);
    return s;
}

void sim_free(sim_t *s) {
    free(s->workspace);
    free(s);
}

/* n training steps on images x[order[i]] (each `size` bytes); losses[i] gets each loss. Returns
 * the first error other than a skipped step (non-finite loss), or 0. */
int sim_train(sim_t *s, const int8_t *x, size_t size, const uint32_t *labels, const uint32_t *order,
              uint32_t n, const float *lr, float *losses) {
    for (uint32_t i = 0; i < n; i++) {
        uint32_t j = order[i];
        int r = mct_train_step(&s->m, x + (size_t)j * size, size, labels[j], lr[i], &losses[i]);
        if (r != MCT_OK && r != MCT_E_NUMERIC) {
            return r;
        }
    }
    return 0;
}

/* Predicted class of each of n images. */
int sim_predict(sim_t *s, const int8_t *x, size_t size, uint32_t n, int32_t *pred) {
    for (uint32_t i = 0; i < n; i++) {
        int r = mct_forward(&s->m, x + (size_t)i * size, size);
        if (r != MCT_OK) {
            return r;
        }
        pred[i] = mct_argmax(&s->m);
    }
    return 0;
}

/* arena, trained copies, workspace: what mem_info() reports on the device */
void sim_mem(sim_t *s, uint32_t *out) {
    out[0] = s->m.arena_size;
    out[1] = s->m.trained_bytes;
    out[2] = (uint32_t)mct_workspace_size(&s->m);
}

uint32_t sim_file_size(sim_t *s) {
    return s->m.file_size;
}

/* The trained file (as model.save() writes it on the device). */
void sim_save(sim_t *s, uint8_t *out) {
    uint32_t crc = mct_save_crc(&s->m), pos = 0;
    uint8_t crc_bytes[4];
    while (pos < s->m.file_size) {
        const uint8_t *p;
        uint32_t n;
        mct_save_chunk(&s->m, pos, crc, crc_bytes, &p, &n);
        for (uint32_t i = 0; i < n; i++) {
            out[pos + i] = p[i];
        }
        pos += n;
    }
}

/* The update blob (c_src/mct_update_blob.c): size, write into out, load; a refused blob's
 * err[0..3]: 1 when the blob itself was refused (MCT_E_BLOB), the error's index, a, b. */
uint32_t sim_blob_size(sim_t *s) {
    return mct_blob_size(&s->m);
}

int sim_blob_write(sim_t *s, uint8_t *out, size_t len) {
    return mct_blob_write(&s->m, out, len);
}

int sim_blob_load(sim_t *s, const uint8_t *blob, size_t len, int32_t *err) {
    int r = mct_blob_load(&s->m, blob, len);
    err[0] = r == MCT_E_BLOB;
    err[1] = s->m.error.index;
    err[2] = (int32_t)s->m.error.a;
    err[3] = (int32_t)s->m.error.b;
    return r;
}

uint32_t sim_model_id(sim_t *s) {
    return mct_model_id(&s->m);
}
