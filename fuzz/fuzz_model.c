/* libFuzzer target: the model reader (mct_model_init) and, on whatever it accepts, every engine
 * entry point: attach a workspace, forward, a training step at a sane and at an absurd learning
 * rate, the op-by-op API, then save and reload.
 *
 * FUZZ_PATCH_CRC=1 (fuzz_model): the header's file size (bytes 8..11) and CRC (12..15) are
 * rewritten to match the input before loading, so mutations get past those two checks and reach
 * the tables. FUZZ_PATCH_CRC=0 (fuzz_model_raw): the input is loaded as it is.
 *
 * Invariants checked beyond what ASan/UBSan see (a failure aborts, i.e. is a finding):
 *   - the arena peak never exceeds the arena;
 *   - after any step the float32 masters of the trained tensors are finite;
 *   - a model saved after training loads again; saved without training it is the input itself.
 * Also builds without libFuzzer (-DFUZZ_REPLAY_MAIN) as a replay tool over files, so that the
 * regression inputs can be run under gcc's ASan/UBSan where clang is absent. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mct_internal.h"

#ifndef FUZZ_PATCH_CRC
#define FUZZ_PATCH_CRC 1
#endif
/* A valid model may declare an arena of up to 2^31 bytes: skip what would exhaust the fuzzer. */
#define FUZZ_MAX_WORKSPACE (64u << 20)
/* ... and what would take seconds per input (multiply-accumulates of one forward pass). */
#define FUZZ_MAX_WORK (1ull << 24)

#define CHECK(cond) do { \
        if (!(cond)) { \
            fprintf(stderr, "fuzz invariant failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
            abort(); \
        } \
} while (0)

static uint32_t rng_state;
static uint32_t rng(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

static void wr32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

/* Operations of one forward pass, roughly (bounded before running anything). */
static uint64_t work_of(const mct_model_t *m) {
    uint64_t total = 0;
    for (uint16_t k = 0; k < m->n_ops; k++) {
        mct_op_t op;
        mct_act_t in, out;
        mct_op_get(m, k, &op);
        mct_act_get(m, op.in0, &in);
        mct_act_get(m, op.out, &out);
        uint64_t w = (uint64_t)in.size + out.size;
        if (op.type == MCT_OP_CONV2D && op.groups) {
            w += (uint64_t)out.size * (in.c / op.groups) * op.kh * op.kw;
        } else if (op.type == MCT_OP_FC) {
            w += (uint64_t)in.size * out.size;
        } else {
            w += (uint64_t)out.size * op.kh * op.kw;
        }
        total += w;
    }
    return total;
}

static void masters_finite(const mct_model_t *m) {
    for (uint16_t t = 0; t < m->n_tensors; t++) {
        const float *master = mct_master(m, t);
        if (master == NULL) {
            continue;
        }
        const uint32_t n = mct_ttrained(m, t);     /* the master holds the trained prefix */
        for (uint32_t i = 0; i < n; i++) {
            CHECK(mct_isfinite(master[i]));
        }
    }
}

/* Save through the chunk API into a new buffer; every chunk is consumed at once, as the binding's
 * write() must. */
static uint8_t *save(const mct_model_t *m) {
    uint8_t *out = malloc(m->file_size);
    uint32_t crc = mct_save_crc(m), pos = 0;
    uint8_t crc_bytes[4];
    while (pos < m->file_size) {
        const uint8_t *p;
        uint32_t n;
        mct_save_chunk(m, pos, crc, crc_bytes, &p, &n);
        CHECK(n > 0 && n <= m->file_size - pos);
        memcpy(out + pos, p, n);
        pos += n;
    }
    CHECK(mct_crc32(0, out + 16, m->file_size - 16) == crc);
    return out;
}

static void run_model(mct_model_t *m, const uint8_t *buf, size_t size) {
    size_t ws_size = mct_workspace_size(m);
    if (ws_size > FUZZ_MAX_WORKSPACE || work_of(m) > FUZZ_MAX_WORK) {
        return;
    }
    /* exactly the size asked for: ASan reports any byte written past it */
    uint8_t *ws = malloc(ws_size ? ws_size : 1);
    CHECK(mct_model_attach(m, ws) == MCT_OK);
    CHECK(mct_arena_peak(m) == 0);

    mct_act_t in;
    CHECK(mct_act_get(m, m->input, &in) == MCT_OK);
    int8_t *x = malloc(in.size);
    for (uint32_t i = 0; i < in.size; i++) {
        x[i] = (int8_t)rng();
    }
    uint32_t n_classes;
    CHECK(mct_forward(m, x, in.size) == MCT_OK);
    mct_logits(m, &n_classes);
    CHECK(mct_argmax(m) >= 0 && (uint32_t)mct_argmax(m) < n_classes);
    CHECK(mct_forward(m, x, in.size > 0 ? in.size - 1 : 1) == MCT_E_INPUT);

    float loss;
    const uint32_t label = rng() % n_classes;
    if (m->n_trained) {
        /* a sane step, one that overflows every update, then the same by layers */
        const float lrs[3] = { 0.05f, 1e30f, (float)(rng() % 1000) * 1e-3f };
        for (int i = 0; i < 3; i++) {
            int r = mct_train_step(m, x, in.size, label, lrs[i], &loss);
            CHECK(r == MCT_OK || r == MCT_E_NUMERIC);
            masters_finite(m);
        }
        CHECK(mct_train_step(m, x, in.size, n_classes, 0.1f, &loss) == MCT_E_LABEL);
        CHECK(mct_set_input(m, x, in.size) == MCT_OK);
        for (uint16_t k = 0; k < m->n_ops; k++) {
            CHECK(mct_forward_op(m, k) == MCT_OK);
        }
        CHECK(mct_loss_backward(m, label, &loss) == MCT_OK);
        for (int k = (int)m->n_ops - 1; k >= 0; k--) {
            CHECK(mct_backward_op(m, (uint16_t)k, 0.01f) == MCT_OK);
        }
        masters_finite(m);
    } else {
        CHECK(mct_train_step(m, x, in.size, label, 0.1f, &loss) == MCT_E_NOT_TRAINABLE);
        CHECK(mct_loss_backward(m, label, &loss) == MCT_E_NOT_TRAINABLE);
    }
    CHECK(mct_forward_op(m, m->n_ops) == MCT_E_OP_INDEX);
    CHECK(mct_backward_op(m, 0, -1.0f) == MCT_E_LR);
    CHECK(mct_arena_peak(m) <= m->arena_size);

    uint8_t *saved = save(m);
    if (!m->n_trained) {
        CHECK(memcmp(saved, buf, size) == 0);
    }
    mct_model_t again;
    int r = mct_model_init(&again, saved, m->file_size);
    if (r != MCT_OK) {
        fprintf(stderr, "saved model does not load: error %d index %d (%u, %u)\n", r, again.error.index,
            (unsigned)again.error.a, (unsigned)again.error.b);
    }
    CHECK(r == MCT_OK);
    free(saved);
    free(x);
    free(ws);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* a copy of exactly `size` bytes: ASan reports any read past the end of the model */
    uint8_t *buf = malloc(size ? size : 1);
    memcpy(buf, data, size);
#if FUZZ_PATCH_CRC
    if (size >= 12) {
        wr32(buf + 8, (uint32_t)size);
    }
    if (size >= 16) {
        wr32(buf + 12, mct_crc32(0, buf + 16, size - 16));
    }
#endif
    rng_state = mct_crc32(0, data, size) | 1u;
    mct_model_t m;
    int r = mct_model_init(&m, buf, size);
    CHECK(r >= MCT_OK && r < MCT_E_COUNT);
    if (r == MCT_OK) {
        run_model(&m, buf, size);
    }
    free(buf);
    return 0;
}

#ifdef FUZZ_REPLAY_MAIN
/* Replay files (no libFuzzer): fuzz_replay FILE... */
int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        FILE *f = fopen(argv[i], "rb");
        if (f == NULL) {
            perror(argv[i]);
            return 2;
        }
        fseek(f, 0, SEEK_END);
        long n = ftell(f);
        fseek(f, 0, SEEK_SET);
        uint8_t *data = malloc(n > 0 ? (size_t)n : 1);
        if (fread(data, 1, (size_t)n, f) != (size_t)n) {
            perror(argv[i]);
            return 2;
        }
        fclose(f);
        LLVMFuzzerTestOneInput(data, (size_t)n);
        free(data);
        printf("ok %s\n", argv[i]);
    }
    return 0;
}
#endif
