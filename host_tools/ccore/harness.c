/* The portable C core as a host shared library (ctypes, host_tools/ccore/core.py): the oracle the
 * tests compare against and the simulator the scheme search trains with. The core itself never
 * allocates; the harness gives it its workspace with malloc, as the binding does with the GC heap.
 * Loops over many images (h_train_many, h_predict) run here, not in Python. */
#include <stdlib.h>
#include <string.h>
#include "mcutrain.h"

typedef struct {
    mct_model_t m;
    void *workspace;
} harness_t;

harness_t *h_load(const uint8_t *buf, size_t len, int *err) {
    harness_t *h = calloc(1, sizeof(*h));
    if (!h) {
        err[0] = -1;
        return NULL;
    }
    int r = mct_model_init(&h->m, buf, len);
    err[0] = r;
    err[1] = h->m.error.index;
    err[2] = (int)h->m.error.a;
    err[3] = (int)h->m.error.b;
    if (r != MCT_OK) {
        free(h);
        return NULL;
    }
    h->workspace = malloc(mct_workspace_size(&h->m) + 4);
    if (!h->workspace) {
        free(h);
        err[0] = -1;
        return NULL;
    }
    mct_model_attach(&h->m, h->workspace);
    return h;
}

void h_free(harness_t *h) {
    free(h->workspace);
    free(h);
}

void h_set_qas(harness_t *h, int on) {
    mct_set_qas(&h->m, on);
}

int h_forward(harness_t *h, const int8_t *x, size_t len, int8_t *out) {
    int r = mct_forward(&h->m, x, len);
    if (r == MCT_OK) {
        uint32_t n;
        const int8_t *y = mct_logits(&h->m, &n);
        memcpy(out, y, n);
    }
    return r;
}

int h_train(harness_t *h, const int8_t *x, size_t len, uint32_t label, float lr, float *loss) {
    return mct_train_step(&h->m, x, len, label, lr, loss);
}

/* n training steps on images x[order[i]] (each `size` bytes); losses[i] gets each loss. Returns
 * the first error other than a skipped step (non-finite loss), or 0. */
int h_train_many(harness_t *h, const int8_t *x, size_t size, const uint32_t *labels, const uint32_t *order,
                 uint32_t n, const float *lr, float *losses) {
    for (uint32_t i = 0; i < n; i++) {
        uint32_t j = order[i];
        int r = mct_train_step(&h->m, x + (size_t)j * size, size, labels[j], lr[i], &losses[i]);
        if (r != MCT_OK && r != MCT_E_NUMERIC) {
            return r;
        }
    }
    return 0;
}

/* Predicted class of each of n images. */
int h_predict(harness_t *h, const int8_t *x, size_t size, uint32_t n, int32_t *pred) {
    for (uint32_t i = 0; i < n; i++) {
        int r = mct_forward(&h->m, x + (size_t)i * size, size);
        if (r != MCT_OK) {
            return r;
        }
        pred[i] = mct_argmax(&h->m);
    }
    return 0;
}

/* Copy activation a (int8) or its gradient (float32) out of the arena. */
void h_act(harness_t *h, uint16_t a, int8_t *out) {
    mct_act_t act;
    mct_act_get(&h->m, a, &act);
    memcpy(out, h->m.workspace + act.offset, act.size);
}

uint32_t h_file_size(harness_t *h) {
    return h->m.file_size;
}

void h_save(harness_t *h, uint8_t *out) {
    uint32_t crc = mct_save_crc(&h->m), pos = 0;
    uint8_t crc_bytes[4];
    while (pos < h->m.file_size) {
        const uint8_t *p;
        uint32_t n;
        mct_save_chunk(&h->m, pos, crc, crc_bytes, &p, &n);
        memcpy(out + pos, p, n);
        pos += n;
    }
}

void h_mem(harness_t *h, uint32_t *out) {
    out[0] = h->m.arena_size;
    out[1] = mct_arena_peak(&h->m);
    out[2] = h->m.saved_bytes;
    out[3] = h->m.trained_bytes;
    out[4] = (uint32_t)mct_workspace_size(&h->m);
}

/* steps, steps skipped (loss not finite), element updates skipped (not finite) */
void h_counters(harness_t *h, uint32_t *out) {
    out[0] = h->m.steps;
    out[1] = h->m.skipped_steps;
    out[2] = h->m.skipped_updates;
}

/* Restart the stochastic-rounding stream (as Model.seed() does on the device). */
void h_seed(harness_t *h, uint32_t seed) {
    mct_set_seed(&h->m, seed);
}
