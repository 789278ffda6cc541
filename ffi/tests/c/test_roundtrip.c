/* Round trip through libcairn: versions, put / get (whole, range, library buffer, size query) /
 * stat / scan / delete / stats / compact, the storage-node directory layout, reopen, and erasure
 * coding (encode with checksums, verify, reconstruct) for both codecs, storing the shards.
 * Usage: test_roundtrip SCRATCH_DIR */
#define _POSIX_C_SOURCE 200809L
#include "test_util.h"

#include <time.h>

#include <sys/stat.h>

static void check_versions(void) {
    CHECK(strlen(cairn_version()) >= 5);
    CHECK(cairn_format_version() == 1);
    CHECK(cairn_layout_version() == 1);
    CHECK(strcmp(cairn_status_name(CAIRN_STATUS_NOT_FOUND), "not found") == 0);
    CHECK(strcmp(cairn_status_name(12345), "unknown status") == 0);
    CHECK(strcmp(cairn_last_error(), "") == 0);
}

static void check_layout(const char *dir, int logs) {
    char path[4096];
    snprintf(path, sizeof path, "%s/storage-node.conf", dir);
    FILE *file = fopen(path, "r");
    CHECK(file != NULL);
    char text[512] = {0};
    size_t read_bytes = fread(text, 1, sizeof text - 1, file);
    fclose(file);
    CHECK(read_bytes > 0);
    char expected[64];
    snprintf(expected, sizeof expected, "logs = %d\n", logs);
    CHECK(strstr(text, expected) != NULL);
    CHECK(strstr(text, "format = 1\n") != NULL);
    for (int index = 0; index < logs; index++) {
        struct stat info;
        snprintf(path, sizeof path, "%s/core-%d", dir, index);
        CHECK(stat(path, &info) == 0 && S_ISDIR(info.st_mode));
    }
}

enum { SHARDS = 20 };

static size_t shard_len(int n) { return (size_t)n * 3001 + (n % 3 == 0 ? 0 : 17); }

static void store_round_trip(const char *dir) {
    cairn_store_options options = test_options(2);
    cairn_store *store = NULL;
    CHECK_OK(cairn_store_open(dir, &options, &store));
    CHECK(store != NULL);
    uint32_t logs = 0;
    CHECK_OK(cairn_store_log_count(store, &logs));
    CHECK(logs == 2);
    check_layout(dir, 2);

    for (int n = 0; n < SHARDS; n++) {
        cairn_shard_id id = make_id(100 + n, 0, (uint16_t)(n % 6));
        CHECK_OK(put_content(store, &id, n, shard_len(n)));
    }
    for (int n = 0; n < SHARDS; n++) {
        cairn_shard_id id = make_id(100 + n, 0, (uint16_t)(n % 6));
        check_content(store, &id, n, shard_len(n));
    }

    /* Range reads, a range clipped at the end, a library buffer and a size query. */
    cairn_shard_id id7 = make_id(107, 0, 1);
    size_t len7 = shard_len(7);
    uint8_t *expected = malloc(len7);
    fill_content(7, expected, len7);
    uint8_t range[100];
    size_t got = 0;
    cairn_shard_stat stat;
    CHECK_OK(cairn_store_get(store, &id7, 4095, 100, range, sizeof range, &got, &stat));
    CHECK(got == 100 && memcmp(range, expected + 4095, 100) == 0);
    CHECK(stat.length_bytes == len7);
    CHECK_OK(cairn_store_get(store, &id7, len7 - 10, 100, range, sizeof range, &got, NULL));
    CHECK(got == 10 && memcmp(range, expected + len7 - 10, 10) == 0);
    CHECK_STATUS(cairn_store_get(store, &id7, 0, CAIRN_LENGTH_TO_END, NULL, 0, &got, NULL),
                 CAIRN_STATUS_BUFFER_TOO_SMALL);
    CHECK(got == len7);
    cairn_buffer buffer = {0};
    CHECK_OK(cairn_store_get_alloc(store, &id7, 0, CAIRN_LENGTH_TO_END, &buffer, &stat));
    CHECK(buffer.len_bytes == len7 && memcmp(buffer.data, expected, len7) == 0);
    uint32_t crc = 0;
    CHECK_OK(cairn_crc32c(expected, len7, &crc));
    CHECK(stat.crc32c == crc);
    cairn_buffer_free(&buffer);
    CHECK(buffer.data == NULL && buffer.len_bytes == 0);
    cairn_buffer_free(&buffer); /* freeing an empty buffer is a no-op */
    cairn_buffer_free(NULL);

    cairn_shard_stat info;
    CHECK_OK(cairn_store_stat(store, &id7, &info));
    CHECK(info.length_bytes == len7 && info.crc32c == crc && info.sequence > 0);
    CHECK(memcmp(info.id.bytes, id7.bytes, CAIRN_SHARD_ID_LEN) == 0);

    /* Scan in pages of 3: every shard once, in id order. */
    cairn_shard_stat page[3];
    size_t count = 0, total = 0;
    cairn_shard_id last;
    const cairn_shard_id *after = NULL;
    do {
        CHECK_OK(cairn_store_scan(store, after, page, 3, &count));
        for (size_t i = 0; i < count; i++) {
            if (total > 0 || i > 0) {
                const cairn_shard_id *previous = i > 0 ? &page[i - 1].id : &last;
                CHECK(memcmp(previous->bytes, page[i].id.bytes, CAIRN_SHARD_ID_LEN) < 0);
            }
        }
        total += count;
        if (count > 0) {
            last = page[count - 1].id;
            after = &last;
        }
    } while (count == 3);
    CHECK(total == SHARDS);
    /* `after` may point into the page being overwritten. */
    total = 0;
    after = NULL;
    do {
        CHECK_OK(cairn_store_scan(store, after, page, 3, &count));
        total += count;
        after = count > 0 ? &page[count - 1].id : after;
    } while (count == 3);
    CHECK(total == SHARDS);

    /* Overwrite, delete, delete again. */
    CHECK_OK(put_content(store, &id7, 777, 5000));
    check_content(store, &id7, 777, 5000);
    bool existed = false;
    CHECK_OK(cairn_store_delete(store, &id7, &existed));
    CHECK(existed);
    CHECK_OK(cairn_store_delete(store, &id7, &existed));
    CHECK(!existed);
    CHECK_STATUS(cairn_store_stat(store, &id7, &info), CAIRN_STATUS_NOT_FOUND);
    CHECK_STATUS(cairn_store_get(store, &id7, 0, CAIRN_LENGTH_TO_END, range, sizeof range, &got,
                                 NULL),
                 CAIRN_STATUS_NOT_FOUND);

    cairn_stats stats;
    CHECK_OK(cairn_store_stats(store, &stats));
    CHECK(stats.log_count == 2 && stats.shard_count == SHARDS - 1);
    CHECK(stats.segment_count >= 2 && stats.io_errors == 0 && stats.checksum_errors == 0);
    uint64_t removed = 99;
    CHECK_OK(cairn_store_compact(store, &removed));
    CHECK(removed == 0); /* nothing sealed yet */
    CHECK_OK(cairn_store_close(store));
    CHECK_OK(cairn_store_close(NULL));

    /* Reopen: everything but the deleted shard is there; the log count comes from the dir. */
    cairn_store_options other = test_options(5);
    CHECK_OK(cairn_store_open(dir, &other, &store));
    CHECK_OK(cairn_store_log_count(store, &logs));
    CHECK(logs == 2);
    for (int n = 0; n < SHARDS; n++) {
        cairn_shard_id id = make_id(100 + n, 0, (uint16_t)(n % 6));
        if (n == 7) {
            CHECK_STATUS(cairn_store_stat(store, &id, &info), CAIRN_STATUS_NOT_FOUND);
        } else {
            check_content(store, &id, n, shard_len(n));
        }
    }
    CHECK_OK(cairn_store_close(store));
    free(expected);
}

static void codec_round_trip(const char *scheme, const char *dir) {
    cairn_codec *codec = NULL;
    CHECK_OK(cairn_codec_new(scheme, &codec));
    uint32_t k = 0, m = 0;
    CHECK_OK(cairn_codec_shape(codec, &k, &m));
    CHECK(k == 4 && m == 2);
    enum { LEN = 64 * 1024 };
    uint8_t *shards[6], *originals[6];
    for (int i = 0; i < 6; i++) {
        shards[i] = malloc(LEN);
        originals[i] = malloc(LEN);
        if (i < 4) {
            fill_content(1000 + i, shards[i], LEN);
        }
    }
    uint32_t crcs[6];
    CHECK_OK(cairn_codec_encode(codec, (const uint8_t *const *)shards, 4, shards + 4, 2, LEN,
                                crcs));
    for (int i = 0; i < 6; i++) {
        uint32_t crc = 0;
        CHECK_OK(cairn_crc32c(shards[i], LEN, &crc));
        CHECK(crc == crcs[i]);
        memcpy(originals[i], shards[i], LEN);
    }
    bool matches = false;
    CHECK_OK(cairn_codec_verify(codec, (const uint8_t *const *)shards, 6, LEN, &matches));
    CHECK(matches);

    /* Store the stripe's shards, read two of them back as "lost", rebuild them. */
    cairn_store_options options = test_options(2);
    cairn_store *store = NULL;
    CHECK_OK(cairn_store_open(dir, &options, &store));
    for (uint16_t i = 0; i < 6; i++) {
        cairn_shard_id id = make_id(9, 0, i);
        CHECK_OK(cairn_store_put(store, &id, shards[i], LEN, crcs[i]));
    }
    memset(shards[1], 0xAA, LEN);
    memset(shards[4], 0x55, LEN);
    uint8_t present[6] = {1, 0, 1, 1, 0, 1};
    CHECK_OK(cairn_codec_reconstruct(codec, shards, 6, present, LEN));
    for (uint16_t i = 0; i < 6; i++) {
        CHECK(memcmp(shards[i], originals[i], LEN) == 0);
        cairn_shard_id id = make_id(9, 0, i);
        size_t got = 0;
        CHECK_OK(cairn_store_get(store, &id, 0, CAIRN_LENGTH_TO_END, shards[i], LEN, &got, NULL));
        CHECK(got == LEN && memcmp(shards[i], originals[i], LEN) == 0);
    }
    CHECK_OK(cairn_store_close(store));
    for (int i = 0; i < 6; i++) {
        free(shards[i]);
        free(originals[i]);
    }
    cairn_codec_free(codec);
    cairn_codec_free(NULL);
}

/* Background compaction (the storage node's behaviour) removes segments whose shards were deleted. */
static void background_compaction(const char *dir) {
    cairn_store_options options = test_options(1);
    options.segment_size_bytes = 1u << 20;
    options.compaction_interval_ms = 20;
    cairn_store *store = NULL;
    CHECK_OK(cairn_store_open(dir, &options, &store));
    enum { COUNT = 12, LEN = 300 * 1000 };
    for (uint64_t n = 0; n < COUNT; n++) {
        cairn_shard_id id = make_id(500 + n, 0, 0);
        CHECK_OK(put_content(store, &id, n, LEN));
    }
    cairn_stats before;
    CHECK_OK(cairn_store_stats(store, &before));
    CHECK(before.segment_count >= 3);
    for (uint64_t n = 0; n < COUNT - 1; n++) {
        cairn_shard_id id = make_id(500 + n, 0, 0);
        CHECK_OK(cairn_store_delete(store, &id, NULL));
    }
    cairn_stats after = before;
    for (int attempt = 0; attempt < 1000 && after.compactions == 0; attempt++) {
        struct timespec pause = {0, 10 * 1000 * 1000};
        nanosleep(&pause, NULL);
        CHECK_OK(cairn_store_stats(store, &after));
    }
    CHECK(after.compactions > 0);
    cairn_shard_id last = make_id(500 + COUNT - 1, 0, 0);
    check_content(store, &last, COUNT - 1, LEN);
    CHECK_OK(cairn_store_close(store));
}

int main(int argc, char **argv) {
    CHECK(argc == 2);
    char dir[4096];
    check_versions();
    snprintf(dir, sizeof dir, "%s/store", argv[1]);
    store_round_trip(dir);
    snprintf(dir, sizeof dir, "%s/isal", argv[1]);
    codec_round_trip("isal-cauchy:4+2", dir);
    snprintf(dir, sizeof dir, "%s/rs", argv[1]);
    codec_round_trip("rs-simd:4+2", dir);
    snprintf(dir, sizeof dir, "%s/compaction", argv[1]);
    background_compaction(dir);
    printf("test_roundtrip: ok\n");
    return 0;
}
