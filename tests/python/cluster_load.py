"""boto3 load for the multi-process cluster tests (tests/tests/cluster.rs).

Usage:
  cluster_load.py ENDPOINT ACCESS SECRET put BUCKET COUNT MANIFEST
      creates BUCKET (if needed) and PUTs COUNT objects of mixed sizes (0 B to 9 MiB, the larger
      ones as multipart uploads); appends `key sha256 size` to MANIFEST for each acknowledged one.
  cluster_load.py ENDPOINT ACCESS SECRET stream BUCKET STOPFILE MANIFEST
      PUTs objects (16 KiB to 1 MiB) one after another until STOPFILE exists; every PUT that got
      200 is appended to MANIFEST (and flushed) before the next starts; failures are counted, not
      fatal: this runs while processes of the cluster are being killed.
  cluster_load.py ENDPOINT ACCESS SECRET verify BUCKET MANIFEST
      GETs every object of MANIFEST and compares size and SHA-256; lists the bucket and checks that
      every manifest key is listed. Exits non-zero naming the first difference.
"""
import hashlib
import os
import random
import sys
import time

from boto3.s3.transfer import TransferConfig
from botocore.exceptions import BotoCoreError, ClientError

import s3client

endpoint, access_key, secret_key, mode, bucket = sys.argv[1:6]
rest = sys.argv[6:]

s3 = s3client.client(
    endpoint,
    access_key,
    secret_key,
    retries={"max_attempts": 8, "mode": "standard"},
    connect_timeout=5,
    read_timeout=60,
)
# Objects above 8 MiB go up as multipart uploads of 5 MiB parts.
transfer = TransferConfig(multipart_threshold=8 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024)


def content(seed, size):
    return random.Random(seed).randbytes(size)


def ensure_bucket():
    try:
        s3.create_bucket(Bucket=bucket)
    except ClientError as error:
        if error.response["Error"]["Code"] != "BucketAlreadyOwnedByYou":
            raise


def record(manifest, key, body):
    manifest.write(f"{key} {hashlib.sha256(body).hexdigest()} {len(body)}\n")
    manifest.flush()
    os.fsync(manifest.fileno())


def put(body, key):
    if len(body) > transfer.multipart_threshold:
        import io

        s3.upload_fileobj(io.BytesIO(body), bucket, key, Config=transfer)
    else:
        s3.put_object(Bucket=bucket, Key=key, Body=body)


if mode == "put":
    count, manifest_path = int(rest[0]), rest[1]
    ensure_bucket()
    sizes = [0, 1, 4096, 65_537, 262_144 * 6 + 11, 1_048_576 * 3 + 5, 9 * 1_048_576 + 77]
    with open(manifest_path, "a") as manifest:
        for index in range(count):
            key = f"fixed/{index:05d}"
            body = content(index, sizes[index % len(sizes)])
            put(body, key)
            record(manifest, key, body)
    print(f"put: {count} objects")
elif mode == "stream":
    stop_file, manifest_path = rest[0], rest[1]
    ensure_bucket()
    acknowledged = failed = 0
    index = 0
    with open(manifest_path, "a") as manifest:
        while not os.path.exists(stop_file):
            key = f"stream/{os.getpid()}/{index:06d}"
            body = content(1_000_000 + index, random.Random(index).randrange(16_384, 1_048_576))
            index += 1
            try:
                put(body, key)
            except (ClientError, BotoCoreError) as error:
                failed += 1
                print(f"stream: {key} failed: {error}", file=sys.stderr)
                time.sleep(0.2)
                continue
            record(manifest, key, body)
            acknowledged += 1
    print(f"stream: {acknowledged} acknowledged, {failed} failed")
elif mode == "verify":
    manifest_path = rest[0]
    expected = {}
    with open(manifest_path) as manifest:
        for line in manifest:
            key, digest, size = line.split()
            expected[key] = (digest, int(size))
    for key, (digest, size) in sorted(expected.items()):
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        assert len(body) == size, f"{key}: {len(body)} bytes, expected {size}"
        assert hashlib.sha256(body).hexdigest() == digest, f"{key}: content differs"
    listed = set()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        listed.update(item["Key"] for item in page.get("Contents", []))
    missing = sorted(set(expected) - listed)
    assert not missing, f"not listed: {missing[:5]}"
    print(f"verify: {len(expected)} objects intact")
else:
    sys.exit(f"unknown mode {mode}")
