"""boto3 through `cairn edge` (TLS, the dev CA as trust root), driven by tests/tests/edge.rs.

usage: edge_check.py MODE EDGE_URL GATEWAY_URL CA_BUNDLE ACCESS_KEY SECRET_KEY [ARGS...]

modes:
  clients          bucket/object round trips (incl. a multipart upload), listing, presigned GET,
                   a wrong secret refused by the edge, TLS 1.2 and TLS 1.3 handshakes
  cache TTL_MS     hit / revalidated / miss headers, and no stale read past TTL_MS after an
                   overwrite or delete made at the gateway directly (writes through the edge are
                   never stale)
  load SECONDS OUT threads of GET/PUT through the edge for SECONDS; writes {"ok": n, "failed": [...]}
                   to OUT (the test swaps the routing module meanwhile)
  routing_failure  with a module that loops or traps on long request records: a long key gets a
                   500, short keys around it succeed
"""
import hashlib
import json
import os
import socket
import ssl
import sys
import threading
import time
import urllib.parse
import urllib.request

import botocore.exceptions

CACHE_HEADER = "x-cairn-edge-cache"


class Args:
    def __init__(self, argv):
        (self.mode, self.edge, self.gateway, self.ca, self.access, self.secret) = argv[:6]
        self.rest = argv[6:]


def make(args, endpoint, secret=None, retries=None):
    """Like tests/python/s3client.py's client, plus the CA bundle (`verify=`) for the edge."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=args.access,
        aws_secret_access_key=secret or args.secret,
        region_name="us-east-1",
        verify=args.ca if endpoint.startswith("https") else None,
        config=Config(
            s3={"addressing_style": "path"},
            signature_version="s3v4",
            retries=retries or {"max_attempts": 1, "mode": "standard"},  # no retries at all
        ),
    )


def error_code(error):
    return error.response.get("Error", {}).get("Code")


def status_of(error):
    return error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")


def cache_status(response):
    return response["ResponseMetadata"]["HTTPHeaders"].get(CACHE_HEADER)


def tls_versions(edge_url):
    url = urllib.parse.urlparse(edge_url)
    seen = []
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        context = ssl.create_default_context(cafile=sys.argv[4])
        context.minimum_version = version
        context.maximum_version = version
        with socket.create_connection((url.hostname, url.port)) as raw:
            with context.wrap_socket(raw, server_hostname=url.hostname) as tls:
                seen.append(tls.version())
    assert seen == ["TLSv1.2", "TLSv1.3"], seen
    # Without the dev CA the certificate is not trusted.
    try:
        with socket.create_connection((url.hostname, url.port)) as raw:
            with ssl.create_default_context().wrap_socket(raw, server_hostname=url.hostname):
                pass
        raise AssertionError("an untrusted certificate was accepted")
    except ssl.SSLCertVerificationError:
        pass


def clients(args):
    s3 = make(args, args.edge)
    s3.create_bucket(Bucket="edge-clients")
    body = os.urandom(300_000)
    s3.put_object(Bucket="edge-clients", Key="dir/small", Body=body)
    got = s3.get_object(Bucket="edge-clients", Key="dir/small")["Body"].read()
    assert got == body, "small object round trip"
    # A multipart upload (10 MiB in 5 MiB parts) through the edge.
    big = os.urandom(10 * 1024 * 1024)
    path = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"edge-big-{os.getpid()}")
    with open(path, "wb") as file:
        file.write(big)
    from boto3.s3.transfer import TransferConfig

    s3.upload_file(
        path,
        "edge-clients",
        "big",
        Config=TransferConfig(multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024),
    )
    os.remove(path)
    head = s3.head_object(Bucket="edge-clients", Key="big")
    assert head["ContentLength"] == len(big)
    assert head["ETag"].endswith('-2"'), head["ETag"]
    got = s3.get_object(Bucket="edge-clients", Key="big")["Body"].read()
    assert hashlib.sha256(got).digest() == hashlib.sha256(big).digest(), "multipart round trip"
    ranged = s3.get_object(Bucket="edge-clients", Key="big", Range="bytes=100-199")
    assert ranged["Body"].read() == big[100:200]
    assert cache_status(ranged) == "bypass"
    keys = [entry["Key"] for entry in s3.list_objects_v2(Bucket="edge-clients")["Contents"]]
    assert keys == ["big", "dir/small"], keys
    buckets = [bucket["Name"] for bucket in s3.list_buckets()["Buckets"]]
    assert "edge-clients" in buckets, buckets
    # Presigned GET through the edge.
    url = s3.generate_presigned_url(
        "get_object", Params={"Bucket": "edge-clients", "Key": "dir/small"}, ExpiresIn=300
    )
    context = ssl.create_default_context(cafile=args.ca)
    with urllib.request.urlopen(url, context=context) as response:
        assert response.read() == body
    # A wrong secret is refused at the edge (its own request ids start with "edge-").
    wrong = make(args, args.edge, secret="not-the-secret")
    try:
        wrong.get_object(Bucket="edge-clients", Key="dir/small")
        raise AssertionError("a bad signature was accepted")
    except botocore.exceptions.ClientError as error:
        assert error_code(error) == "SignatureDoesNotMatch", error.response
        request_id = error.response["ResponseMetadata"]["HTTPHeaders"]["x-amz-request-id"]
        assert request_id.startswith("edge-"), request_id
    # A missing bucket and key are answered by the region as usual.
    for bucket, key, code in [("edge-missing", "k", "NoSuchBucket"), ("edge-clients", "nope", "NoSuchKey")]:
        try:
            s3.get_object(Bucket=bucket, Key=key)
            raise AssertionError("missing object found")
        except botocore.exceptions.ClientError as error:
            assert error_code(error) == code, error.response
    # An invalid bucket name is rejected by the routing module.
    try:
        s3.list_objects_v2(Bucket="Invalid_Name")
        raise AssertionError("invalid bucket name accepted")
    except (botocore.exceptions.ClientError, botocore.exceptions.ParamValidationError) as error:
        if isinstance(error, botocore.exceptions.ClientError):
            assert error_code(error) == "InvalidBucketName", error.response
    s3.delete_object(Bucket="edge-clients", Key="dir/small")
    s3.delete_object(Bucket="edge-clients", Key="big")
    s3.delete_bucket(Bucket="edge-clients")
    tls_versions(args.edge)


def get(s3, key):
    """(body or None for 404, cache status)."""
    try:
        response = s3.get_object(Bucket="edge-cache", Key=key)
        return response["Body"].read(), cache_status(response)
    except botocore.exceptions.ClientError as error:
        if error_code(error) == "NoSuchKey":
            return None, error.response["ResponseMetadata"]["HTTPHeaders"].get(CACHE_HEADER)
        raise


def read_until_fresh(s3, key, expected, ttl_seconds, stale_values):
    """Reads through the edge after a write acknowledged at the gateway at `acked`; a stale read
    is allowed only if it started within `ttl_seconds` of the acknowledgement, and a read that
    starts after that bound must be fresh. Returns the number of stale reads seen."""
    acked = time.monotonic()
    stale = 0
    deadline = acked + ttl_seconds + 30
    while True:
        started = time.monotonic()
        body, _ = get(s3, key)
        if body == expected:
            if started > acked + ttl_seconds:
                return stale
        else:
            assert body in stale_values, "a value that was never written"
            assert started - acked < ttl_seconds, (
                f"stale read {started - acked:.3f}s after the write; bound {ttl_seconds}s"
            )
            stale += 1
        assert started < deadline, "never became fresh"
        time.sleep(0.05)


def cache(args):
    ttl_seconds = int(args.rest[0]) / 1000
    edge = make(args, args.edge)
    direct = make(args, args.gateway)
    edge.create_bucket(Bucket="edge-cache")
    v1, v2, v3 = b"one" * 1000, b"two" * 1000, b"three" * 1000
    edge.put_object(Bucket="edge-cache", Key="k", Body=v1)
    assert get(edge, "k") == (v1, "miss")
    assert get(edge, "k") == (v1, "hit")
    # Past the bound the edge asks the origin with If-None-Match and gets a 304.
    time.sleep(ttl_seconds + 0.2)
    assert get(edge, "k") == (v1, "revalidated")
    assert get(edge, "k") == (v1, "hit")

    # Overwrite at the gateway: the edge may serve v1 only within the bound.
    direct.put_object(Bucket="edge-cache", Key="k", Body=v2)
    stale_overwrite = read_until_fresh(edge, "k", v2, ttl_seconds, [v1])
    assert get(edge, "k")[0] == v2

    # Overwrite through the edge: never stale.
    edge.put_object(Bucket="edge-cache", Key="k", Body=v3)
    assert get(edge, "k") == (v3, "miss")
    assert get(edge, "k") == (v3, "hit")

    # Delete at the gateway: v3 only within the bound, then NoSuchKey.
    direct.delete_object(Bucket="edge-cache", Key="k")
    stale_delete = read_until_fresh(edge, "k", None, ttl_seconds, [v3])

    # Delete through the edge: never stale.
    edge.put_object(Bucket="edge-cache", Key="j", Body=v1)
    assert get(edge, "j") == (v1, "miss")
    assert get(edge, "j") == (v1, "hit")
    edge.delete_object(Bucket="edge-cache", Key="j")
    assert get(edge, "j")[0] is None
    # Objects above the cache's size limit stream through and are never cached.
    large = os.urandom(3 * 1024 * 1024)
    edge.put_object(Bucket="edge-cache", Key="large", Body=large)
    assert get(edge, "large") == (large, "miss")
    assert get(edge, "large") == (large, "miss")
    print(json.dumps({"stale_reads_after_overwrite": stale_overwrite, "stale_reads_after_delete": stale_delete}))


def load(args):
    seconds, out = float(args.rest[0]), args.rest[1]
    setup = make(args, args.edge)
    setup.create_bucket(Bucket="edge-load")
    setup.put_object(Bucket="edge-load", Key="fixed", Body=b"x" * 4096)
    stop = time.monotonic() + seconds
    ok = [0]
    failed = []
    lock = threading.Lock()

    def worker(index):
        s3 = make(args, args.edge)
        round_number = 0
        while time.monotonic() < stop:
            round_number += 1
            key = f"w{index}-{round_number % 5}"
            body = f"{index}-{round_number}".encode() * 100
            try:
                s3.put_object(Bucket="edge-load", Key=key, Body=body)
                assert s3.get_object(Bucket="edge-load", Key=key)["Body"].read() == body
                assert s3.get_object(Bucket="edge-load", Key="fixed")["Body"].read() == b"x" * 4096
                with lock:
                    ok[0] += 3
            except Exception as error:  # noqa: BLE001 (every failure is reported)
                with lock:
                    failed.append(repr(error))

    threads = [threading.Thread(target=worker, args=(index,)) for index in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with open(out, "w") as file:
        json.dump({"ok": ok[0], "failed": failed}, file)


def routing_failure(args):
    s3 = make(args, args.edge)
    long_key = "k" * 600
    for round_number in range(3):
        s3.list_buckets()
        try:
            s3.get_object(Bucket="edge-routing", Key=long_key)
            raise AssertionError("the failing module's request succeeded")
        except botocore.exceptions.ClientError as error:
            assert status_of(error) == 500, error.response
            assert error_code(error) == "InternalError", error.response
        s3.list_buckets()


def main():
    args = Args(sys.argv[1:])
    {"clients": clients, "cache": cache, "load": load, "routing_failure": routing_failure}[args.mode](args)


if __name__ == "__main__":
    main()
