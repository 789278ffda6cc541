/* Helpers shared by the libcairn C tests: checks that print the library's last error, and
 * deterministic shard contents so that a reader can verify bytes without keeping a copy. */
#ifndef CAIRN_TEST_UTIL_H
#define CAIRN_TEST_UTIL_H

#include "cairn.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(condition)                                                                   \
    do {                                                                                   \
        if (!(condition)) {                                                                \
            fprintf(stderr, "%s:%d: CHECK failed: %s (last error: %s)\n", __FILE__,        \
                    __LINE__, #condition, cairn_last_error());                             \
            exit(1);                                                                       \
        }                                                                                  \
    } while (0)

/* Expects `call` to return `expected`; prints both names and the last error otherwise. */
#define CHECK_STATUS(call, expected)                                                       \
    do {                                                                                   \
        cairn_status status_ = (call);                                                     \
        if (status_ != (expected)) {                                                       \
            fprintf(stderr, "%s:%d: %s returned %d (%s), expected %s (last error: %s)\n",  \
                    __FILE__, __LINE__, #call, (int)status_, cairn_status_name(status_),  \
                    #expected, cairn_last_error());                                        \
            exit(1);                                                                       \
        }                                                                                  \
    } while (0)

#define CHECK_OK(call) CHECK_STATUS(call, CAIRN_STATUS_OK)

/* Fills `buffer` with bytes that depend on `seed` only (xorshift64). */
static inline void fill_content(uint64_t seed, uint8_t *buffer, size_t len_bytes) {
    uint64_t state = seed * 0x9e3779b97f4a7c15ull | 1;
    for (size_t i = 0; i < len_bytes; i++) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        buffer[i] = (uint8_t)(state >> 24);
    }
}

static inline cairn_shard_id make_id(uint64_t object, uint32_t block, uint16_t shard_index) {
    cairn_shard_id id;
    CHECK_OK(cairn_shard_id_make(0, object, 1, block, shard_index, &id));
    return id;
}

/* Puts `len_bytes` of content for `seed` as `id`. */
static inline cairn_status put_content(cairn_store *store, const cairn_shard_id *id,
                                       uint64_t seed, size_t len_bytes) {
    uint8_t *data = malloc(len_bytes ? len_bytes : 1);
    CHECK(data != NULL);
    fill_content(seed, data, len_bytes);
    uint32_t crc = 0;
    CHECK_OK(cairn_crc32c(data, len_bytes, &crc));
    cairn_status status = cairn_store_put(store, id, data, len_bytes, crc);
    free(data);
    return status;
}

/* Reads `id` whole and checks it equals the content for `seed` of `len_bytes`. */
static inline void check_content(cairn_store *store, const cairn_shard_id *id, uint64_t seed,
                                  size_t len_bytes) {
    uint8_t *expected = malloc(len_bytes ? len_bytes : 1);
    uint8_t *actual = malloc(len_bytes ? len_bytes : 1);
    CHECK(expected != NULL && actual != NULL);
    fill_content(seed, expected, len_bytes);
    size_t got = 0;
    CHECK_OK(cairn_store_get(store, id, 0, CAIRN_LENGTH_TO_END, actual, len_bytes, &got, NULL));
    CHECK(got == len_bytes);
    CHECK(memcmp(expected, actual, len_bytes) == 0);
    free(expected);
    free(actual);
}

/* Small segments keep the preallocated files small in tests. */
static inline cairn_store_options test_options(uint32_t logs) {
    cairn_store_options options;
    CHECK_OK(cairn_store_options_init(&options));
    options.logs = logs;
    options.segment_size_bytes = 8u << 20;
    options.cache_capacity_bytes_per_log = 0;
    /* Tests compact explicitly unless they test the background compaction. */
    options.compaction_interval_ms = 0;
    return options;
}

#endif
