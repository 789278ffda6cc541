/* Error paths: null and length arguments, a missing directory, a directory in use, a bad layout
 * file, a wrong checksum, a corrupt shard on disk, bad ranges, wrong and mismatched schemes, too
 * many erasures, overlapping buffers. Every failure must leave a message in cairn_last_error().
 * Usage: test_errors SCRATCH_DIR */
#define _DEFAULT_SOURCE
#include "test_util.h"

#include <dirent.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static void expect_message(void) { CHECK(strlen(cairn_last_error()) > 0); }

static void argument_errors(const char *dir) {
    cairn_store *store = NULL;
    cairn_shard_id id = make_id(1, 0, 0);
    size_t got = 0;
    uint8_t byte = 0;
    CHECK_STATUS(cairn_store_open(NULL, NULL, &store), CAIRN_STATUS_INVALID_ARGUMENT);
    expect_message();
    CHECK_STATUS(cairn_store_open(dir, NULL, NULL), CAIRN_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(cairn_store_open("", NULL, &store), CAIRN_STATUS_INVALID_ARGUMENT);
    cairn_store_options options = test_options(1);
    options.segment_size_bytes = 4096;
    CHECK_STATUS(cairn_store_open(dir, &options, &store), CAIRN_STATUS_INVALID_ARGUMENT);
    CHECK(strstr(cairn_last_error(), "segment_size_bytes") != NULL);
    CHECK(store == NULL);

    CHECK_STATUS(cairn_store_put(NULL, &id, &byte, 1, 0), CAIRN_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(cairn_store_get(NULL, &id, 0, 1, &byte, 1, &got, NULL),
                 CAIRN_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(cairn_crc32c(NULL, 5, &(uint32_t){0}), CAIRN_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(cairn_crc32c(&byte, 1, NULL), CAIRN_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(cairn_shard_id_make(0, 0, 0, 0, 0, NULL), CAIRN_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(cairn_store_options_init(NULL), CAIRN_STATUS_INVALID_ARGUMENT);
    uint32_t crc = 1;
    CHECK_OK(cairn_crc32c(NULL, 0, &crc));
    CHECK(crc == 0);

    options = test_options(1);
    CHECK_OK(cairn_store_open(dir, &options, &store));
    CHECK_STATUS(cairn_store_put(store, NULL, &byte, 1, 0), CAIRN_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(cairn_store_put(store, &id, NULL, 10, 0), CAIRN_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(cairn_store_get(store, &id, 0, 1, NULL, 10, &got, NULL),
                 CAIRN_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(cairn_store_get(store, &id, 0, 1, &byte, 1, NULL, NULL),
                 CAIRN_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(cairn_store_get_alloc(store, &id, 0, 1, NULL, NULL),
                 CAIRN_STATUS_INVALID_ARGUMENT);
    cairn_shard_stat page[1];
    size_t count = 0;
    CHECK_STATUS(cairn_store_scan(store, NULL, page, 0, &count), CAIRN_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(cairn_store_scan(store, NULL, NULL, 1, &count), CAIRN_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(cairn_store_scan(store, NULL, page, 1, NULL), CAIRN_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(cairn_store_stat(store, &id, NULL), CAIRN_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(cairn_store_stats(store, NULL), CAIRN_STATUS_INVALID_ARGUMENT);

    /* A wrong checksum is refused before anything is written. */
    uint8_t data[64];
    fill_content(5, data, sizeof data);
    CHECK_STATUS(cairn_store_put(store, &id, data, sizeof data, 0xdeadbeef),
                 CAIRN_STATUS_CHECKSUM_MISMATCH);
    CHECK(strstr(cairn_last_error(), "checksum") != NULL);
    CHECK_STATUS(cairn_store_stat(store, &id, &page[0]), CAIRN_STATUS_NOT_FOUND);
    expect_message();

    /* A shard over the limit is refused before the library copies it (the mapping is never
     * touched, so this costs no memory). */
    size_t too_large = (size_t)CAIRN_MAX_SHARD_BYTES + 1;
    void *mapping = mmap(NULL, too_large, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(mapping != MAP_FAILED);
    CHECK_STATUS(cairn_store_put(store, &id, mapping, too_large, 0), CAIRN_STATUS_TOO_LARGE);
    CHECK(munmap(mapping, too_large) == 0);

    /* A range starting past the end. */
    CHECK_OK(put_content(store, &id, 5, 64));
    CHECK_STATUS(cairn_store_get(store, &id, 65, 1, data, sizeof data, &got, NULL),
                 CAIRN_STATUS_INVALID_RANGE);
    CHECK_OK(cairn_store_get(store, &id, 64, 1, data, sizeof data, &got, NULL));
    CHECK(got == 0);

    /* The directory is locked while open, in this process as in any other. */
    cairn_store *second = NULL;
    CHECK_STATUS(cairn_store_open(dir, &options, &second), CAIRN_STATUS_LOCKED);
    CHECK(second == NULL);
    CHECK_OK(cairn_store_close(store));
    CHECK_OK(cairn_store_open(dir, &options, &second));
    CHECK_OK(cairn_store_close(second));
}

static void missing_and_bad_directories(const char *scratch) {
    char path[4096];
    cairn_store *store = NULL;
    cairn_store_options options = test_options(1);
    options.create_if_missing = 0;
    snprintf(path, sizeof path, "%s/does-not-exist", scratch);
    CHECK_STATUS(cairn_store_open(path, &options, &store), CAIRN_STATUS_NOT_FOUND);
    CHECK(strstr(cairn_last_error(), "does-not-exist") != NULL);
    struct stat info;
    CHECK(stat(path, &info) != 0); /* nothing was created */

    /* A path below a regular file cannot be a store. */
    snprintf(path, sizeof path, "%s/plain-file", scratch);
    FILE *file = fopen(path, "w");
    CHECK(file != NULL);
    fclose(file);
    options.create_if_missing = 1;
    CHECK_STATUS(cairn_store_open(path, &options, &store), CAIRN_STATUS_IO);
    snprintf(path, sizeof path, "%s/plain-file/below", scratch);
    CHECK_STATUS(cairn_store_open(path, &options, &store), CAIRN_STATUS_IO);
    expect_message();

    /* A layout file without a valid log count. */
    snprintf(path, sizeof path, "%s/bad-layout", scratch);
    CHECK(mkdir(path, 0755) == 0);
    char layout[4200];
    snprintf(layout, sizeof layout, "%s/storage-node.conf", path);
    file = fopen(layout, "w");
    CHECK(file != NULL);
    fputs("format = 1\nlogs = zero\n", file);
    fclose(file);
    CHECK_STATUS(cairn_store_open(path, &options, &store), CAIRN_STATUS_CORRUPT);
    CHECK(strstr(cairn_last_error(), "logs = N") != NULL);
}

/* Flips one byte of the only segment file in DIR/core-0 at the first occurrence of `pattern`. */
static void corrupt_on_disk(const char *dir, const uint8_t *pattern, size_t pattern_len) {
    char core[4096];
    snprintf(core, sizeof core, "%s/core-0", dir);
    DIR *listing = opendir(core);
    CHECK(listing != NULL);
    struct dirent *entry;
    int flipped = 0;
    while ((entry = readdir(listing)) != NULL) {
        if (strncmp(entry->d_name, "seg-", 4) != 0) {
            continue;
        }
        char path[8300];
        snprintf(path, sizeof path, "%s/%s", core, entry->d_name);
        FILE *file = fopen(path, "r+b");
        CHECK(file != NULL);
        fseek(file, 0, SEEK_END);
        long size = ftell(file);
        uint8_t *bytes = malloc((size_t)size);
        fseek(file, 0, SEEK_SET);
        CHECK(fread(bytes, 1, (size_t)size, file) == (size_t)size);
        for (long at = 0; at + (long)pattern_len <= size && !flipped; at++) {
            if (memcmp(bytes + at, pattern, pattern_len) == 0) {
                uint8_t flipped_byte = bytes[at + 10] ^ 0xff;
                fseek(file, at + 10, SEEK_SET);
                CHECK(fwrite(&flipped_byte, 1, 1, file) == 1);
                flipped = 1;
            }
        }
        free(bytes);
        fclose(file);
    }
    closedir(listing);
    CHECK(flipped);
}

static void corrupt_shard(const char *dir) {
    cairn_store *store = NULL;
    cairn_store_options options = test_options(1);
    CHECK_OK(cairn_store_open(dir, &options, &store));
    cairn_shard_id good = make_id(70, 0, 0), bad = make_id(71, 0, 0);
    CHECK_OK(put_content(store, &bad, 71, 10000));
    CHECK_OK(put_content(store, &good, 70, 10000));

    /* Corrupt the stored payload while the store is open (reads are O_DIRECT, the cache is off). */
    uint8_t pattern[32];
    fill_content(71, pattern, sizeof pattern);
    corrupt_on_disk(dir, pattern, sizeof pattern);

    check_content(store, &good, 70, 10000);
    uint8_t buffer[10000];
    size_t got = 0;
    CHECK_STATUS(cairn_store_get(store, &bad, 0, CAIRN_LENGTH_TO_END, buffer, sizeof buffer, &got,
                                 NULL),
                 CAIRN_STATUS_CHECKSUM_MISMATCH);
    CHECK(strstr(cairn_last_error(), "checksum mismatch") != NULL);
    /* A range read verifies the whole shard too: no corrupt bytes ever come back. */
    CHECK_STATUS(cairn_store_get(store, &bad, 0, 4, buffer, sizeof buffer, &got, NULL),
                 CAIRN_STATUS_CHECKSUM_MISMATCH);
    cairn_stats stats;
    CHECK_OK(cairn_store_stats(store, &stats));
    CHECK(stats.checksum_errors == 2);
    CHECK_OK(cairn_store_close(store));

    /* On reopen the corrupt record (followed by a valid one) is skipped as mid-log corruption:
     * the shard is gone (erasure coding elsewhere rebuilds it), the rest is intact. */
    CHECK_OK(cairn_store_open(dir, &options, &store));
    check_content(store, &good, 70, 10000);
    cairn_shard_stat stat;
    CHECK_STATUS(cairn_store_stat(store, &bad, &stat), CAIRN_STATUS_NOT_FOUND);
    /* Rewriting the shard repairs it. */
    CHECK_OK(put_content(store, &bad, 71, 10000));
    check_content(store, &bad, 71, 10000);
    CHECK_OK(cairn_store_close(store));
}

static void scheme_errors(void) {
    cairn_codec *codec = NULL;
    const char *bad_schemes[] = {"lrc:8+4", "isal-cauchy:0+2", "rs-simd:4+0", "isal-cauchy:4",
                                 "isal-cauchy: 4+2", "", "isal-cauchy:200+56"};
    for (size_t i = 0; i < sizeof bad_schemes / sizeof bad_schemes[0]; i++) {
        CHECK_STATUS(cairn_codec_new(bad_schemes[i], &codec), CAIRN_STATUS_INVALID_SCHEME);
        expect_message();
        CHECK(codec == NULL);
    }
    CHECK_STATUS(cairn_codec_new(NULL, &codec), CAIRN_STATUS_INVALID_ARGUMENT);

    enum { LEN = 1024 };
    uint8_t buffers[8][LEN];
    uint8_t *pointers[8];
    for (int i = 0; i < 8; i++) {
        pointers[i] = buffers[i];
        fill_content(300 + i, buffers[i], LEN);
    }
    CHECK_OK(cairn_codec_new("isal-cauchy:4+2", &codec));
    /* Shard counts of another scheme (6+2) are refused. */
    CHECK_STATUS(cairn_codec_encode(codec, (const uint8_t *const *)pointers, 6, pointers + 6, 2,
                                    LEN, NULL),
                 CAIRN_STATUS_INVALID_SCHEME);
    CHECK(strstr(cairn_last_error(), "isal-cauchy:4+2") != NULL);
    uint8_t present[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    CHECK_STATUS(cairn_codec_reconstruct(codec, pointers, 8, present, LEN),
                 CAIRN_STATUS_INVALID_SCHEME);
    /* Odd lengths, null shard pointers and overlapping shards are argument errors. */
    CHECK_STATUS(cairn_codec_encode(codec, (const uint8_t *const *)pointers, 4, pointers + 4, 2,
                                    LEN - 1, NULL),
                 CAIRN_STATUS_INVALID_ARGUMENT);
    uint8_t *with_null[6] = {pointers[0], NULL, pointers[2], pointers[3], pointers[4], pointers[5]};
    CHECK_STATUS(cairn_codec_encode(codec, (const uint8_t *const *)with_null, 4, with_null + 4, 2,
                                    LEN, NULL),
                 CAIRN_STATUS_INVALID_ARGUMENT);
    uint8_t *overlapping[6] = {pointers[0], pointers[1], pointers[2], pointers[3],
                               pointers[3] + 16, pointers[5]};
    CHECK_STATUS(cairn_codec_encode(codec, (const uint8_t *const *)overlapping, 4, overlapping + 4,
                                    2, LEN, NULL),
                 CAIRN_STATUS_INVALID_ARGUMENT);
    CHECK(strstr(cairn_last_error(), "overlap") != NULL);

    /* A stripe encoded with one codec does not verify with the other (a wrong scheme). */
    CHECK_OK(cairn_codec_encode(codec, (const uint8_t *const *)pointers, 4, pointers + 4, 2, LEN,
                                NULL));
    bool matches = false;
    CHECK_OK(cairn_codec_verify(codec, (const uint8_t *const *)pointers, 6, LEN, &matches));
    CHECK(matches);
    cairn_codec *other = NULL;
    CHECK_OK(cairn_codec_new("rs-simd:4+2", &other));
    CHECK_OK(cairn_codec_verify(other, (const uint8_t *const *)pointers, 6, LEN, &matches));
    CHECK(!matches);
    cairn_codec_free(other);
    /* A damaged parity shard is detected. */
    buffers[5][7] ^= 1;
    CHECK_OK(cairn_codec_verify(codec, (const uint8_t *const *)pointers, 6, LEN, &matches));
    CHECK(!matches);

    /* Three of six missing with m = 2: nothing can be rebuilt and nothing is written. */
    uint8_t three_missing[6] = {1, 0, 0, 1, 0, 1};
    uint8_t before[LEN];
    memcpy(before, buffers[1], LEN);
    CHECK_STATUS(cairn_codec_reconstruct(codec, pointers, 6, three_missing, LEN),
                 CAIRN_STATUS_TOO_MANY_ERASURES);
    CHECK(memcmp(before, buffers[1], LEN) == 0);
    CHECK_STATUS(cairn_codec_reconstruct(codec, pointers, 6, NULL, LEN),
                 CAIRN_STATUS_INVALID_ARGUMENT);
    cairn_codec_free(codec);
}

/* A handle used in a fork()ed child is refused (its executor threads are not there) instead of
 * hanging, closing it there is harmless, and the parent's handle keeps working. */
static void handle_after_fork(const char *dir) {
    cairn_store_options options = test_options(1);
    cairn_store *store = NULL;
    CHECK_OK(cairn_store_open(dir, &options, &store));
    cairn_shard_id id = make_id(90, 0, 0);
    CHECK_OK(put_content(store, &id, 90, 1000));
    pid_t child = fork();
    CHECK(child >= 0);
    if (child == 0) {
        int ok = put_content(store, &id, 91, 1000) == CAIRN_STATUS_INVALID_ARGUMENT &&
                 strstr(cairn_last_error(), "fork") != NULL &&
                 cairn_store_close(store) == CAIRN_STATUS_OK;
        _exit(ok ? 0 : 1);
    }
    int wait_status = 0;
    CHECK(waitpid(child, &wait_status, 0) == child);
    CHECK(WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == 0);
    check_content(store, &id, 90, 1000);
    CHECK_OK(put_content(store, &id, 92, 1000));
    check_content(store, &id, 92, 1000);
    CHECK_OK(cairn_store_close(store));
}

int main(int argc, char **argv) {
    CHECK(argc == 2);
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/arguments", argv[1]);
    argument_errors(dir);
    missing_and_bad_directories(argv[1]);
    snprintf(dir, sizeof dir, "%s/corrupt", argv[1]);
    corrupt_shard(dir);
    scheme_errors();
    snprintf(dir, sizeof dir, "%s/fork", argv[1]);
    handle_after_fork(dir);
    printf("test_errors: ok\n");
    return 0;
}
