/* CRC-32 (IEEE 802.3, as zlib.crc32), bitwise: no table, so no initialized static data. */
#include "mcutrain.h"

uint32_t mct_crc32(uint32_t crc, const uint8_t *p, size_t n) {
    crc = ~crc;
    while (n--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++) {
            crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
        }
    }
    return ~crc;
}
