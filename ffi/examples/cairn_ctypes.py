#!/usr/bin/env python3
"""Using libcairn from Python through ctypes: a small Store / Codec wrapper and a self-test.

Run: python3 cairn_ctypes.py --library target/debug/libcairn.so --dir /tmp/some-store

The wrapper turns every non-OK cairn_status into a CairnError carrying the status and the
library's cairn_last_error() message (read on the same thread right after the failing call).
The self-test at the bottom stores, reads, scans and deletes shards, erasure-codes a stripe and
rebuilds two lost shards, and checks the error paths; it prints "cairn_ctypes: ok" on success.
"""

import argparse
import ctypes
import os
import sys
import threading
import zlib

STATUS_OK = 0
STATUS_NOT_FOUND = 2
STATUS_CHECKSUM_MISMATCH = 3
STATUS_BUFFER_TOO_SMALL = 4
STATUS_INVALID_SCHEME = 8
STATUS_TOO_MANY_ERASURES = 9
STATUS_LOCKED = 13
LENGTH_TO_END = (1 << 64) - 1


class ShardId(ctypes.Structure):
    _fields_ = [("bytes", ctypes.c_uint8 * 32)]


class ShardStat(ctypes.Structure):
    _fields_ = [
        ("id", ShardId),
        ("length_bytes", ctypes.c_uint64),
        ("sequence", ctypes.c_uint64),
        ("crc32c", ctypes.c_uint32),
    ]


class StoreOptions(ctypes.Structure):
    _fields_ = [
        ("logs", ctypes.c_uint32),
        ("create_if_missing", ctypes.c_uint32),
        ("segment_size_bytes", ctypes.c_uint64),
        ("cache_capacity_bytes_per_log", ctypes.c_uint64),
        ("compaction_interval_ms", ctypes.c_uint64),
    ]


class Stats(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_uint64)
        for name in (
            "log_count",
            "shard_count",
            "segment_count",
            "used_bytes",
            "live_bytes",
            "io_errors",
            "checksum_errors",
            "torn_bytes_truncated",
            "compactions",
        )
    ]


class Buffer(ctypes.Structure):
    _fields_ = [("data", ctypes.POINTER(ctypes.c_uint8)), ("len_bytes", ctypes.c_size_t)]


class CairnError(Exception):
    def __init__(self, status, message):
        super().__init__(f"cairn status {status}: {message}")
        self.status = status


def load(path):
    lib = ctypes.CDLL(path)
    P = ctypes.POINTER
    u8p = P(ctypes.c_uint8)
    signatures = {
        "cairn_version": ([], ctypes.c_char_p),
        "cairn_format_version": ([], ctypes.c_uint32),
        "cairn_last_error": ([], ctypes.c_char_p),
        "cairn_crc32c": ([ctypes.c_char_p, ctypes.c_size_t, P(ctypes.c_uint32)], ctypes.c_int),
        "cairn_shard_id_make": (
            [ctypes.c_uint64, ctypes.c_uint64, ctypes.c_uint32, ctypes.c_uint32,
             ctypes.c_uint16, P(ShardId)],
            ctypes.c_int,
        ),
        "cairn_store_options_init": ([P(StoreOptions)], ctypes.c_int),
        "cairn_store_open": ([ctypes.c_char_p, P(StoreOptions), P(ctypes.c_void_p)], ctypes.c_int),
        "cairn_store_close": ([ctypes.c_void_p], ctypes.c_int),
        "cairn_store_put": (
            [ctypes.c_void_p, P(ShardId), ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint32],
            ctypes.c_int,
        ),
        "cairn_store_get": (
            [ctypes.c_void_p, P(ShardId), ctypes.c_uint64, ctypes.c_uint64, u8p,
             ctypes.c_size_t, P(ctypes.c_size_t), P(ShardStat)],
            ctypes.c_int,
        ),
        "cairn_store_get_alloc": (
            [ctypes.c_void_p, P(ShardId), ctypes.c_uint64, ctypes.c_uint64, P(Buffer),
             P(ShardStat)],
            ctypes.c_int,
        ),
        "cairn_buffer_free": ([P(Buffer)], None),
        "cairn_store_delete": ([ctypes.c_void_p, P(ShardId), P(ctypes.c_bool)], ctypes.c_int),
        "cairn_store_stat": ([ctypes.c_void_p, P(ShardId), P(ShardStat)], ctypes.c_int),
        "cairn_store_scan": (
            [ctypes.c_void_p, P(ShardId), P(ShardStat), ctypes.c_size_t, P(ctypes.c_size_t)],
            ctypes.c_int,
        ),
        "cairn_store_stats": ([ctypes.c_void_p, P(Stats)], ctypes.c_int),
        "cairn_codec_new": ([ctypes.c_char_p, P(ctypes.c_void_p)], ctypes.c_int),
        "cairn_codec_free": ([ctypes.c_void_p], None),
        "cairn_codec_shape": (
            [ctypes.c_void_p, P(ctypes.c_uint32), P(ctypes.c_uint32)], ctypes.c_int
        ),
        "cairn_codec_encode": (
            [ctypes.c_void_p, P(u8p), ctypes.c_size_t, P(u8p), ctypes.c_size_t,
             ctypes.c_size_t, P(ctypes.c_uint32)],
            ctypes.c_int,
        ),
        "cairn_codec_reconstruct": (
            [ctypes.c_void_p, P(u8p), ctypes.c_size_t, u8p, ctypes.c_size_t], ctypes.c_int
        ),
        "cairn_codec_verify": (
            [ctypes.c_void_p, P(u8p), ctypes.c_size_t, ctypes.c_size_t, P(ctypes.c_bool)],
            ctypes.c_int,
        ),
    }
    for name, (argtypes, restype) in signatures.items():
        function = getattr(lib, name)
        function.argtypes = argtypes
        function.restype = restype
    return lib


class Library:
    def __init__(self, path):
        self.lib = load(path)

    def check(self, status):
        if status != STATUS_OK:
            raise CairnError(status, self.lib.cairn_last_error().decode())

    def crc32c(self, data):
        crc = ctypes.c_uint32()
        self.check(self.lib.cairn_crc32c(data, len(data), ctypes.byref(crc)))
        return crc.value

    def shard_id(self, object_id, part=1, block=0, shard_index=0):
        out = ShardId()
        self.check(self.lib.cairn_shard_id_make(
            object_id >> 64, object_id & ((1 << 64) - 1), part, block, shard_index,
            ctypes.byref(out)))
        return out


class Store:
    """One open store directory. Safe to share between Python threads (the library is)."""

    def __init__(self, library, path, logs=2, create=True):
        self.library, self.lib = library, library.lib
        options = StoreOptions()
        library.check(self.lib.cairn_store_options_init(ctypes.byref(options)))
        options.logs = logs
        options.create_if_missing = 1 if create else 0
        options.segment_size_bytes = 8 << 20
        handle = ctypes.c_void_p()
        library.check(self.lib.cairn_store_open(
            os.fsencode(path), ctypes.byref(options), ctypes.byref(handle)))
        self.handle = handle

    def close(self):
        if self.handle:
            self.library.check(self.lib.cairn_store_close(self.handle))
            self.handle = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def put(self, shard_id, data, crc32c=None):
        crc = self.library.crc32c(data) if crc32c is None else crc32c
        self.library.check(self.lib.cairn_store_put(
            self.handle, ctypes.byref(shard_id), data, len(data), crc))

    def get(self, shard_id, offset=0, length=LENGTH_TO_END):
        """Reads into a library buffer (no size guess needed), copies it, frees it."""
        buffer = Buffer()
        self.library.check(self.lib.cairn_store_get_alloc(
            self.handle, ctypes.byref(shard_id), offset, length, ctypes.byref(buffer), None))
        try:
            return ctypes.string_at(buffer.data, buffer.len_bytes)
        finally:
            self.lib.cairn_buffer_free(ctypes.byref(buffer))

    def get_into(self, shard_id, capacity):
        """Reads into a caller buffer; raises CairnError(BUFFER_TOO_SMALL) if it does not fit."""
        buffer = (ctypes.c_uint8 * capacity)()
        got = ctypes.c_size_t()
        self.library.check(self.lib.cairn_store_get(
            self.handle, ctypes.byref(shard_id), 0, LENGTH_TO_END, buffer, capacity,
            ctypes.byref(got), None))
        return bytes(buffer[: got.value])

    def stat(self, shard_id):
        out = ShardStat()
        self.library.check(self.lib.cairn_store_stat(
            self.handle, ctypes.byref(shard_id), ctypes.byref(out)))
        return out

    def delete(self, shard_id):
        existed = ctypes.c_bool()
        self.library.check(self.lib.cairn_store_delete(
            self.handle, ctypes.byref(shard_id), ctypes.byref(existed)))
        return existed.value

    def scan(self, page_size=4):
        """Yields every live shard's ShardStat in id order, a page at a time."""
        page = (ShardStat * page_size)()
        count = ctypes.c_size_t()
        after = None
        while True:
            self.library.check(self.lib.cairn_store_scan(
                self.handle, ctypes.byref(after) if after is not None else None, page,
                page_size, ctypes.byref(count)))
            for i in range(count.value):
                yield page[i]
            if count.value < page_size:
                return
            after = ShardId.from_buffer_copy(page[count.value - 1].id)

    def stats(self):
        out = Stats()
        self.library.check(self.lib.cairn_store_stats(self.handle, ctypes.byref(out)))
        return out


class Codec:
    def __init__(self, library, scheme):
        self.library, self.lib = library, library.lib
        handle = ctypes.c_void_p()
        library.check(self.lib.cairn_codec_new(scheme.encode(), ctypes.byref(handle)))
        self.handle = handle
        k, m = ctypes.c_uint32(), ctypes.c_uint32()
        library.check(self.lib.cairn_codec_shape(handle, ctypes.byref(k), ctypes.byref(m)))
        self.k, self.m = k.value, m.value

    def free(self):
        self.lib.cairn_codec_free(self.handle)
        self.handle = None

    @staticmethod
    def _pointers(buffers):
        u8p = ctypes.POINTER(ctypes.c_uint8)
        return (u8p * len(buffers))(*[ctypes.cast(b, u8p) for b in buffers])

    def encode(self, data_shards):
        """Returns (parity shards, CRC32C of every shard) for k equal-length data shards."""
        length = len(data_shards[0])
        data = [ctypes.create_string_buffer(bytes(shard), length) for shard in data_shards]
        parity = [ctypes.create_string_buffer(length) for _ in range(self.m)]
        crcs = (ctypes.c_uint32 * (self.k + self.m))()
        self.library.check(self.lib.cairn_codec_encode(
            self.handle, self._pointers(data), len(data), self._pointers(parity), len(parity),
            length, crcs))
        return [p.raw for p in parity], list(crcs)

    def reconstruct(self, shards):
        """`shards` has k + m entries, None for a lost one; returns all shards rebuilt."""
        length = len(next(shard for shard in shards if shard is not None))
        buffers = [ctypes.create_string_buffer(shard if shard is not None else b"", length)
                   for shard in shards]
        present = (ctypes.c_uint8 * len(shards))(*[shard is not None for shard in shards])
        self.library.check(self.lib.cairn_codec_reconstruct(
            self.handle, self._pointers(buffers), len(buffers), present, length))
        return [b.raw for b in buffers]

    def verify(self, shards):
        length = len(shards[0])
        buffers = [ctypes.create_string_buffer(bytes(shard), length) for shard in shards]
        matches = ctypes.c_bool()
        self.library.check(self.lib.cairn_codec_verify(
            self.handle, self._pointers(buffers), len(buffers), length, ctypes.byref(matches)))
        return matches.value


def expect_error(status, function, *args):
    try:
        function(*args)
    except CairnError as error:
        assert error.status == status, f"expected status {status}, got {error}"
        return str(error)
    raise AssertionError(f"expected status {status}, the call succeeded")


def self_test(library_path, store_dir):
    library = Library(library_path)
    lib = library.lib
    assert lib.cairn_version().decode().count(".") == 2
    assert lib.cairn_format_version() == 1

    # ctypes structures are not hashable: keep (id, data) pairs.
    shards = [(library.shard_id(n, shard_index=n % 6), os.urandom(100 + n * 997)) for n in range(12)]
    with Store(library, store_dir) as store:
        for shard_id, data in shards:
            store.put(shard_id, data)
        for shard_id, data in shards:
            assert store.get(shard_id) == data
            assert store.get(shard_id, 50, 20) == data[50:70]
            stat = store.stat(shard_id)
            assert stat.length_bytes == len(data)
        first_id, first_data = shards[0]
        assert store.get_into(first_id, len(first_data)) == first_data
        expect_error(STATUS_BUFFER_TOO_SMALL, store.get_into, first_id, len(first_data) - 1)
        listed = [bytes(stat.id.bytes) for stat in store.scan(page_size=5)]
        assert listed == sorted(bytes(shard_id.bytes) for shard_id, _ in shards)
        assert store.delete(first_id) and not store.delete(first_id)
        expect_error(STATUS_NOT_FOUND, store.get, first_id)
        message = expect_error(STATUS_CHECKSUM_MISMATCH, store.put, first_id, b"x" * 10, 12345)
        assert "checksum" in message
        expect_error(STATUS_LOCKED, Store, library, store_dir)
        assert store.stats().shard_count == len(shards) - 1
    with Store(library, store_dir) as store:  # reopen: the state persisted
        assert store.stats().shard_count == len(shards) - 1
        for shard_id, data in shards[1:]:
            assert store.get(shard_id) == data
        # One handle shared by Python threads (ctypes releases the GIL during each call).
        failures = []

        def worker(thread):
            try:
                for n in range(25):
                    shard_id = library.shard_id(10_000 + thread * 100 + n)
                    data = os.urandom(2048 + n)
                    store.put(shard_id, data)
                    assert store.get(shard_id) == data
            except Exception as error:  # reported by the main thread
                failures.append(error)

        threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not failures, failures
        assert store.stats().shard_count == len(shards) - 1 + 4 * 25
    expect_error(STATUS_NOT_FOUND, Store, library, store_dir + "-missing", 2, False)

    for scheme in ("isal-cauchy:4+2", "rs-simd:4+2"):
        codec = Codec(library, scheme)
        data = [os.urandom(4096) for _ in range(codec.k)]
        parity, crcs = codec.encode(data)
        stripe = data + parity
        assert crcs[0] == library.crc32c(data[0])
        assert codec.verify(stripe)
        damaged = list(stripe)
        damaged[0], damaged[5] = None, None
        assert codec.reconstruct(damaged) == stripe
        damaged[1] = None
        expect_error(STATUS_TOO_MANY_ERASURES, codec.reconstruct, damaged)
        codec.free()
    expect_error(STATUS_INVALID_SCHEME, Codec, library, "lrc:8+4")
    # zlib's crc32 is CRC-32/ISO-HDLC, not Castagnoli: a different checksum must come out.
    assert library.crc32c(b"cairn") != zlib.crc32(b"cairn")
    print("cairn_ctypes: ok")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--library", required=True, help="path to libcairn.so")
    parser.add_argument("--dir", required=True, help="store directory (created)")
    arguments = parser.parse_args()
    self_test(arguments.library, arguments.dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
