"""The gateway's /metrics against known traffic: scrape, send an exact set of boto3 requests,
scrape again, and check that every counter moved by exactly what those requests imply.

Usage: metrics_check.py ENDPOINT ADMIN_URL ACCESS_KEY SECRET_KEY
The document is parsed with prometheus_client's own parser (an independent reader of the text
format); histogram buckets must be cumulative with +Inf equal to _count. Exits non-zero on the
first failed check.
"""
import random
import sys
import time
import urllib.request

from botocore.exceptions import ClientError
from prometheus_client.parser import text_string_to_metric_families

import s3client

endpoint, admin_url, access_key, secret_key = sys.argv[1:5]

# One HTTP request per call (no retries), bodies sent as they are (no aws-chunked framing), so the
# expected request-body bytes are the object sizes.
s3 = s3client.client(
    endpoint,
    access_key,
    secret_key,
    retries={"max_attempts": 1, "mode": "standard"},
    request_checksum_calculation="when_required",
    response_checksum_validation="when_required",
)


def scrape():
    with urllib.request.urlopen(admin_url) as response:
        assert response.status == 200
        content_type = response.headers["Content-Type"]
        assert content_type.startswith("text/plain; version=0.0.4"), content_type
        text = response.read().decode()
    samples = {}
    families = {}
    for family in text_string_to_metric_families(text):
        families[family.name] = family.type
        for sample in family.samples:
            key = (sample.name, tuple(sorted(sample.labels.items())))
            assert key not in samples, f"duplicate series {key}"
            samples[key] = sample.value
    return text, families, samples


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def check_histograms(samples):
    operations = {dict(labels)["operation"] for (name, labels) in samples if name == "cairn_gateway_request_duration_seconds_count"}
    assert "GetObject" in operations
    for operation in operations:
        buckets = sorted(
            (float(dict(labels)["le"]), count)
            for (name, labels), count in samples.items()
            if name == "cairn_gateway_request_duration_seconds_bucket" and dict(labels)["operation"] == operation
        )
        counts = [count for _, count in buckets]
        assert counts == sorted(counts), f"{operation}: buckets not cumulative {buckets}"
        assert buckets[-1][0] == float("inf")
        total = value(samples, "cairn_gateway_request_duration_seconds_count", operation=operation)
        assert buckets[-1][1] == total, f"{operation}: +Inf {buckets[-1][1]} != count {total}"
        requests = sum(
            value(samples, "cairn_gateway_requests_total", operation=operation, status_class=status_class)
            for status_class in ("2xx", "3xx", "4xx", "5xx")
        )
        assert requests == total, f"{operation}: {requests} requests but histogram count {total}"


def settled_scrape():
    # A response's record is written when its body's last frame is handed to the socket, which
    # can trail the client's read by a moment: wait until nothing is in flight.
    deadline = time.time() + 10
    while True:
        text, families, samples = scrape()
        if value(samples, "cairn_gateway_requests_in_flight") == 0 or time.time() > deadline:
            return text, families, samples
        time.sleep(0.05)


text, families, before = settled_scrape()
assert families["cairn_gateway_requests"] == "counter", families
assert families["cairn_gateway_request_duration_seconds"] == "histogram", families
assert families["cairn_gateway_requests_in_flight"] == "gauge", families
for name in ("cairn_gateway_shard_write_errors", "cairn_gateway_shard_read_errors", "cairn_gateway_degraded_stripe_reads",
             "cairn_gateway_request_body_bytes", "cairn_gateway_response_body_bytes"):
    assert families[name] == "counter", (name, families)

# The traffic: every call is one request with a known operation and status.
sizes = [0, 1000, 300_000, 1_100_000]
bodies = [random.Random(size).randbytes(size) for size in sizes]
s3.create_bucket(Bucket="metrics")
for index, body in enumerate(bodies):
    s3.put_object(Bucket="metrics", Key=f"object-{index}", Body=body)
received = 0
for index, body in enumerate(bodies):
    got = s3.get_object(Bucket="metrics", Key=f"object-{index}")["Body"].read()
    assert got == body
    received += len(got)
ranged = s3.get_object(Bucket="metrics", Key="object-3", Range="bytes=10-1009")["Body"].read()
assert ranged == bodies[3][10:1010]
received += len(ranged)
for key in ("object-1", "missing-1", "missing-2"):
    try:
        s3.head_object(Bucket="metrics", Key=key)
    except ClientError as error:
        assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 404
try:
    s3.get_object(Bucket="metrics", Key="missing-3")
    raise AssertionError("GET of a missing key succeeded")
except ClientError as error:
    assert error.response["Error"]["Code"] == "NoSuchKey"
s3.list_objects_v2(Bucket="metrics")
# A conditional GET answered 304.
etag = s3.head_object(Bucket="metrics", Key="object-2")["ETag"]
try:
    s3.get_object(Bucket="metrics", Key="object-2", IfNoneMatch=etag)
    raise AssertionError("If-None-Match with the current ETag did not answer 304")
except ClientError as error:
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 304

text, families, after = settled_scrape()


def delta(name, **labels):
    return value(after, name, **labels) - value(before, name, **labels)


expected_requests = {
    ("CreateBucket", "2xx"): 1,
    ("PutObject", "2xx"): len(sizes),
    ("GetObject", "2xx"): len(sizes) + 1,
    ("GetObject", "3xx"): 1,
    ("GetObject", "4xx"): 1,
    ("HeadObject", "2xx"): 2,
    ("HeadObject", "4xx"): 2,
    ("ListObjectsV2", "2xx"): 1,
}
operations = {operation for (operation, _) in expected_requests} | {"DeleteObject", "ListBuckets", "Unrouted"}
for operation in operations:
    for status_class in ("2xx", "3xx", "4xx", "5xx"):
        moved = delta("cairn_gateway_requests_total", operation=operation, status_class=status_class)
        expected = expected_requests.get((operation, status_class), 0)
        assert moved == expected, f"{operation} {status_class}: moved {moved}, expected {expected}"
    expected_total = sum(count for (name, _), count in expected_requests.items() if name == operation)
    moved = delta("cairn_gateway_request_duration_seconds_count", operation=operation)
    assert moved == expected_total, f"{operation} latency count moved {moved}, expected {expected_total}"
assert delta("cairn_gateway_request_body_bytes_total", operation="PutObject") == sum(sizes)
assert delta("cairn_gateway_response_body_bytes_total", operation="GetObject") >= received
# The GetObject bodies are exactly the objects; the two error answers add their XML documents
# (the 304 has no body).
error_document_bytes = delta("cairn_gateway_response_body_bytes_total", operation="GetObject") - received
assert 0 < error_document_bytes < 1000, error_document_bytes
assert delta("cairn_gateway_response_body_bytes_total", operation="HeadObject") == 0
assert delta("cairn_gateway_response_body_bytes_total", operation="ListObjectsV2") > 0
assert delta("cairn_gateway_request_duration_seconds_sum", operation="GetObject") > 0
assert value(after, "cairn_gateway_requests_in_flight") == 0
# Everything is healthy: no shard errors.
assert delta("cairn_gateway_shard_write_errors_total") == 0
assert delta("cairn_gateway_degraded_stripe_reads_total") == 0
check_histograms(after)

# An unknown admin path is a 404; the S3 listener knows nothing of /metrics.
try:
    urllib.request.urlopen(admin_url.replace("/metrics", "/nothing"))
    raise AssertionError("unknown admin path answered")
except urllib.error.HTTPError as error:
    assert error.code == 404
print("metrics: all checks passed")
