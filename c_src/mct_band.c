/* The model input fed row by row (a model converted with --input-buffer rows): the input is a band
 * of the arena of as many rows as one tile row of the patch-based stage needs (halo included), not a
 * whole H*W*C frame. As the stage moves down a tile row, the band keeps the rows the new tile row
 * shares with the last (memmove) and reads the new ones: from the caller's buffer (mct_set_input,
 * e.g. a file in memory-mapped Flash) or from a reader (mct_set_reader: a camera, a file read).
 * Every row of the frame is read once, in order, the rows no tile needs too, so that a stream of
 * frames stays aligned. */
#include "mct_internal.h"

uint32_t mct_input_band_rows(const mct_model_t *m) {
    mct_act_t in;
    mct_act_decode(m, m->input, &in);
    return mct_act_capacity(m, m->input) / ((uint32_t)in.w * in.c);
}

void mct_band_start(mct_model_t *m, mct_band_t *b) {
    mct_act_t in;
    mct_act_decode(m, m->input, &in);
    b->rows = mct_input_band_rows(m);
    b->data = mct_act_data(m, &in);
    b->row_bytes = (uint32_t)in.w * in.c;
    b->h = in.h;
    b->y0 = b->y1 = 0;
}

mct_view_t mct_band_view(const mct_band_t *b, uint16_t w) {
    mct_view_t v = { b->data, b->y0, 0, (uint32_t)(b->y1 - b->y0), w, b->row_bytes };
    return v;
}

/* Exactly n bytes from the reader into dst. */
static int read_exact(mct_model_t *m, int8_t *dst, size_t n) {
    size_t got = 0;
    while (got < n) {
        const int r = m->read(m->read_ctx, dst + got, n - got);
        if (r < 0 || (size_t)r > n - got) {
            MCT_FAIL(m, MCT_E_READ, 1, got, n);
        }
        if (r == 0) {
            MCT_FAIL(m, MCT_E_READ, 0, got, n);
        }
        got += (size_t)r;
    }
    return MCT_OK;
}

/* Rows [y, y + n) of the frame into dst. */
static int read_rows(mct_model_t *m, const mct_band_t *b, int8_t *dst, int32_t y, int32_t n) {
    const size_t bytes = (size_t)n * b->row_bytes;
    if (m->read == NULL) {
        memcpy(dst, m->input_data + (size_t)y * b->row_bytes, bytes);
        return MCT_OK;
    }
    return read_exact(m, dst, bytes);
}

/* The reader's rows [b->y1, y) that no tile reads, through the band (whose rows are all done). */
static int skip_rows(mct_model_t *m, mct_band_t *b, int32_t y) {
    while (m->read != NULL && b->y1 < y) {
        const int32_t n = y - b->y1 < (int32_t)b->rows ? y - b->y1 : (int32_t)b->rows;
        int r = read_exact(m, b->data, (size_t)n * b->row_bytes);
        if (r != MCT_OK) {
            return r;
        }
        b->y1 += n;
    }
    b->y1 = b->y1 > y ? b->y1 : y;
    return MCT_OK;
}

int mct_band_move(mct_model_t *m, mct_band_t *b, int32_t y0, int32_t y1) {
    if (y0 < b->y1) {
        /* the rows this tile row shares with the last one move to the band's top */
        memmove(b->data, b->data + (size_t)(y0 - b->y0) * b->row_bytes, (size_t)(b->y1 - y0) * b->row_bytes);
    } else {
        int r = skip_rows(m, b, y0);
        if (r != MCT_OK) {
            return r;
        }
    }
    const int32_t from = b->y1;
    b->y0 = y0;
    b->y1 = y1;
    return read_rows(m, b, b->data + (size_t)(from - y0) * b->row_bytes, from, y1 - from);
}

int mct_band_finish(mct_model_t *m, mct_band_t *b) {
    return skip_rows(m, b, b->h);
}

int mct_set_reader(mct_model_t *m, mct_read_fn read, void *ctx) {
    mct_act_t in;
    if (m->workspace == NULL) {
        MCT_FAIL(m, MCT_E_NOT_ATTACHED, 0, 0, 0);
    }
    mct_act_decode(m, m->input, &in);
    if (in.offset == MCT_IN_PLACE) {
        MCT_FAIL(m, MCT_E_READ, 2, 0, in.size);     /* nowhere in the model's RAM to read it into */
    }
    m->input_data = NULL;
    m->read = read;
    m->read_ctx = ctx;
    if (mct_input_band_rows(m) == 0) {
        /* the input whole in the arena (--input-buffer model): read it all now */
        int r = read_exact(m, mct_act_data(m, &in), in.size);
        m->read = NULL;
        return r;
    }
    return MCT_OK;
}
