/* Reopen after the writing process was killed with SIGKILL mid-write. A forked child opens the
 * store and writes shards in a loop, reporting each acknowledged put through a pipe; the parent
 * kills it at a random moment, reopens the store and checks that every acknowledged shard reads
 * back intact and that the store accepts new writes. Three rounds on the same directory.
 * Usage: test_crash SCRATCH_DIR */
#define _DEFAULT_SOURCE
#include "test_util.h"

#include <pthread.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { ROUNDS = 3, MAX_SHARDS = 100000 };

static size_t len_for(uint32_t n) { return 100 + (size_t)(n * 2654435761u % 60000); }

/* Shard n of round r; rounds use disjoint numbers so that every round adds shards. */
static uint32_t number(int round, uint32_t n) { return (uint32_t)round * 1000000u + n; }

enum { CHILD_THREADS = 4 };

struct child_writer {
    cairn_store *store;
    int round;
    int ack_fd;
    uint32_t first;
};

/* Several writers keep group commits (and so torn batches) in flight when the kill lands. */
static void *child_writer_main(void *argument) {
    struct child_writer *writer = argument;
    for (uint32_t n = writer->first; n < MAX_SHARDS; n += CHILD_THREADS) {
        uint32_t shard = number(writer->round, n);
        cairn_shard_id id = make_id(shard, 0, 0);
        CHECK_OK(put_content(writer->store, &id, shard, len_for(shard)));
        /* 4 bytes < PIPE_BUF: concurrent writes to the pipe never interleave. */
        CHECK(write(writer->ack_fd, &shard, sizeof shard) == sizeof shard);
    }
    return NULL;
}

static void child_writes(const char *dir, int round, int ack_fd) {
    cairn_store_options options = test_options(2);
    cairn_store *store = NULL;
    CHECK_OK(cairn_store_open(dir, &options, &store));
    pthread_t threads[CHILD_THREADS];
    struct child_writer writers[CHILD_THREADS];
    for (uint32_t t = 0; t < CHILD_THREADS; t++) {
        writers[t] = (struct child_writer){store, round, ack_fd, t};
        CHECK(pthread_create(&threads[t], NULL, child_writer_main, &writers[t]) == 0);
    }
    for (uint32_t t = 0; t < CHILD_THREADS; t++) {
        pthread_join(threads[t], NULL);
    }
    _exit(0); /* not reached in practice: the parent kills first */
}

static double now_seconds(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    CHECK(argc == 2);
    const char *dir = argv[1];
    uint32_t *acknowledged = malloc(sizeof(uint32_t) * MAX_SHARDS * ROUNDS);
    size_t acknowledged_count = 0;
    srand((unsigned)getpid());

    for (int round = 0; round < ROUNDS; round++) {
        int pipe_fds[2];
        CHECK(pipe(pipe_fds) == 0);
        pid_t child = fork();
        CHECK(child >= 0);
        if (child == 0) {
            close(pipe_fds[0]);
            child_writes(dir, round, pipe_fds[1]);
        }
        close(pipe_fds[1]);
        /* Wait for a random number of acknowledgements (20..219), so the kill lands while puts
         * are in flight, then kill without warning. */
        size_t wanted = 20 + (size_t)(rand() % 200);
        size_t round_acks = 0;
        double deadline = now_seconds() + 20.0;
        uint32_t shard;
        while (round_acks < wanted && now_seconds() < deadline) {
            ssize_t got = read(pipe_fds[0], &shard, sizeof shard);
            CHECK(got == sizeof shard);
            acknowledged[acknowledged_count++] = shard;
            round_acks++;
        }
        CHECK(kill(child, SIGKILL) == 0);
        int wait_status = 0;
        CHECK(waitpid(child, &wait_status, 0) == child);
        CHECK(WIFSIGNALED(wait_status) && WTERMSIG(wait_status) == SIGKILL);
        /* Acknowledgements written before the kill are still in the pipe. */
        ssize_t got;
        while ((got = read(pipe_fds[0], &shard, sizeof shard)) == sizeof shard) {
            acknowledged[acknowledged_count++] = shard;
            round_acks++;
        }
        CHECK(got == 0);
        close(pipe_fds[0]);
        /* A very slow machine may reach the deadline first; one acknowledged put still counts. */
        CHECK(round_acks >= 1);

        /* Reopen (recovery cuts any torn tail) and check every acknowledged shard. */
        cairn_store_options options = test_options(2);
        cairn_store *store = NULL;
        CHECK_OK(cairn_store_open(dir, &options, &store));
        for (size_t i = 0; i < acknowledged_count; i++) {
            cairn_shard_id id = make_id(acknowledged[i], 0, 0);
            check_content(store, &id, acknowledged[i], len_for(acknowledged[i]));
        }
        cairn_stats stats;
        CHECK_OK(cairn_store_stats(store, &stats));
        CHECK(stats.shard_count >= acknowledged_count);
        /* At most the shards in flight when the child died exist beyond the acknowledged ones. */
        CHECK(stats.shard_count <= acknowledged_count + 1024);
        /* The recovered store takes writes. */
        cairn_shard_id fresh = make_id(4000000000u + (uint32_t)round, 0, 0);
        CHECK_OK(put_content(store, &fresh, 42, 4096));
        check_content(store, &fresh, 42, 4096);
        CHECK_OK(cairn_store_close(store));
        printf("round %d: %zu acknowledged, %llu shards after reopen, %llu torn bytes cut\n", round,
               round_acks, (unsigned long long)stats.shard_count,
               (unsigned long long)stats.torn_bytes_truncated);
    }
    free(acknowledged);
    printf("test_crash: ok\n");
    return 0;
}
