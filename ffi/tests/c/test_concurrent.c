/* Concurrent use of one store handle and one codec handle from several pthreads: writers, readers,
 * deleters and a scanner at once, then a check of the final state after a reopen.
 * Usage: test_concurrent SCRATCH_DIR */
#include "test_util.h"

#include <pthread.h>

enum { THREADS = 6, SHARDS_PER_THREAD = 60 };

static cairn_store *store;
static cairn_codec *codec;

static size_t len_for(int thread, int n) { return 512 + (size_t)((thread * 7919 + n * 104729) % 20000); }
static uint64_t seed_for(int thread, int n) { return (uint64_t)thread * 100000 + (uint64_t)n; }

static void *worker(void *argument) {
    int thread = (int)(intptr_t)argument;
    for (int n = 0; n < SHARDS_PER_THREAD; n++) {
        cairn_shard_id id = make_id((uint64_t)thread, (uint32_t)n, 0);
        CHECK_OK(put_content(store, &id, seed_for(thread, n), len_for(thread, n)));
        check_content(store, &id, seed_for(thread, n), len_for(thread, n));
        cairn_shard_stat stat;
        CHECK_OK(cairn_store_stat(store, &id, &stat));
        CHECK(stat.length_bytes == len_for(thread, n));
        /* Every third shard is deleted again; the final check expects exactly the others. */
        if (n % 3 == 2) {
            bool existed = false;
            CHECK_OK(cairn_store_delete(store, &id, &existed));
            CHECK(existed);
        }
        /* Share the codec too: encode a small stripe and verify it. */
        if (n % 10 == 0) {
            uint8_t buffers[6][256];
            uint8_t *pointers[6];
            for (int i = 0; i < 6; i++) {
                pointers[i] = buffers[i];
                fill_content(seed_for(thread, n) + (uint64_t)i, buffers[i], sizeof buffers[i]);
            }
            CHECK_OK(cairn_codec_encode(codec, (const uint8_t *const *)pointers, 4, pointers + 4, 2,
                                        256, NULL));
            bool matches = false;
            CHECK_OK(cairn_codec_verify(codec, (const uint8_t *const *)pointers, 6, 256, &matches));
            CHECK(matches);
        }
    }
    return NULL;
}

static volatile int writers_done;

static void *scanner(void *argument) {
    (void)argument;
    cairn_shard_stat page[16];
    while (!__atomic_load_n(&writers_done, __ATOMIC_ACQUIRE)) {
        size_t count = 0;
        CHECK_OK(cairn_store_scan(store, NULL, page, 16, &count));
        for (size_t i = 1; i < count; i++) {
            CHECK(memcmp(page[i - 1].id.bytes, page[i].id.bytes, CAIRN_SHARD_ID_LEN) < 0);
        }
        cairn_stats stats;
        CHECK_OK(cairn_store_stats(store, &stats));
    }
    return NULL;
}

static void check_final_state(void) {
    size_t expected_total = 0;
    for (int thread = 0; thread < THREADS; thread++) {
        for (int n = 0; n < SHARDS_PER_THREAD; n++) {
            cairn_shard_id id = make_id((uint64_t)thread, (uint32_t)n, 0);
            if (n % 3 == 2) {
                cairn_shard_stat stat;
                CHECK_STATUS(cairn_store_stat(store, &id, &stat), CAIRN_STATUS_NOT_FOUND);
            } else {
                check_content(store, &id, seed_for(thread, n), len_for(thread, n));
                expected_total++;
            }
        }
    }
    cairn_stats stats;
    CHECK_OK(cairn_store_stats(store, &stats));
    CHECK(stats.shard_count == expected_total);
}

int main(int argc, char **argv) {
    CHECK(argc == 2);
    cairn_store_options options = test_options(2);
    CHECK_OK(cairn_store_open(argv[1], &options, &store));
    CHECK_OK(cairn_codec_new("isal-cauchy:4+2", &codec));
    pthread_t threads[THREADS], scan_thread;
    CHECK(pthread_create(&scan_thread, NULL, scanner, NULL) == 0);
    for (int thread = 0; thread < THREADS; thread++) {
        CHECK(pthread_create(&threads[thread], NULL, worker, (void *)(intptr_t)thread) == 0);
    }
    for (int thread = 0; thread < THREADS; thread++) {
        CHECK(pthread_join(threads[thread], NULL) == 0);
    }
    __atomic_store_n(&writers_done, 1, __ATOMIC_RELEASE);
    CHECK(pthread_join(scan_thread, NULL) == 0);
    check_final_state();
    CHECK_OK(cairn_store_close(store));

    CHECK_OK(cairn_store_open(argv[1], &options, &store));
    check_final_state();
    CHECK_OK(cairn_store_close(store));
    cairn_codec_free(codec);
    printf("test_concurrent: ok\n");
    return 0;
}
