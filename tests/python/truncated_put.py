"""PUTs whose client disconnects mid-body leave nothing behind.

Usage: truncated_put.py ENDPOINT METRICS_URL ACCESS_KEY SECRET_KEY
A raw TCP client sends a PUT declaring 5 MiB and closes the connection after 2.5 MiB, once with a
plain body (presigned URL) and once with an aws-chunked body (STREAMING-UNSIGNED-PAYLOAD-TRAILER,
header signed by botocore's signer). Then: HEAD is 404, the key is in no listing, the gateway's
metrics show both PREPARING records aborted and the pieces of the two whole stripes each write had
stored (2 stripes x 6 pieces with EC 4+2 and 256 KiB pieces) deleted, none left undeleted; and the
same keys can then be written normally.
"""
import socket
import sys
import time
import urllib.parse
import urllib.request

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

import s3client

endpoint, metrics_url, access_key, secret_key = sys.argv[1:5]
MiB = 1024 * 1024
DECLARED = 5 * MiB
SENT = 5 * MiB // 2
# With EC 4+2 and 256 KiB pieces a stripe holds 1 MiB: 2.5 MiB complete two stripes.
PIECES_WRITTEN_PER_PUT = 2 * 6

s3 = s3client.client(endpoint, access_key, secret_key, retries={"max_attempts": 1})
host = urllib.parse.urlparse(endpoint).netloc
address = (urllib.parse.urlparse(endpoint).hostname, urllib.parse.urlparse(endpoint).port)


def metric(name):
    with urllib.request.urlopen(metrics_url) as response:
        for line in response.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[-1])
    raise AssertionError(f"{name} missing")


def send_and_disconnect(head, body):
    sock = socket.create_connection(address)
    sock.sendall(head.encode() + body)
    # Close the sending side and drop the connection: the gateway sees the body end early.
    sock.shutdown(socket.SHUT_WR)
    sock.settimeout(30)
    try:
        answer = sock.recv(65536)
    except (ConnectionResetError, socket.timeout):
        answer = b""
    sock.close()
    return answer


def payload(size):
    return bytes((index * 31 + 7) % 251 for index in range(size))


bucket = "truncated"
s3.create_bucket(Bucket=bucket)
aborted_before = metric("cairn_gateway_aborted_writes_total")
deleted_before = metric("cairn_gateway_abandoned_pieces_deleted_total")
failed_before = metric("cairn_gateway_abandoned_piece_delete_errors_total")

# 1. Plain body through a presigned URL (UNSIGNED-PAYLOAD).
url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "plain"}, ExpiresIn=300)
path = url[len(endpoint):]
send_and_disconnect(f"PUT {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {DECLARED}\r\n\r\n", payload(SENT))

# 2. aws-chunked body with a trailing checksum, signed in the header like the SDKs sign it.
chunk_bytes = 64 * 1024
chunk = payload(chunk_bytes)
wire_chunk = f"{chunk_bytes:x}\r\n".encode() + chunk + b"\r\n"
chunks_declared = DECLARED // chunk_bytes
full_length = chunks_declared * len(wire_chunk) + len(b"0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n")
request = AWSRequest(
    method="PUT",
    url=f"{endpoint}/{bucket}/chunked",
    headers={
        "Content-Encoding": "aws-chunked",
        "X-Amz-Decoded-Content-Length": str(DECLARED),
        "X-Amz-Trailer": "x-amz-checksum-crc32",
        "Content-Length": str(full_length),
    },
)
request.context["checksum"] = {"request_algorithm": {"in": "trailer", "algorithm": "crc32", "name": "x-amz-checksum-crc32"}}
S3SigV4Auth(Credentials(access_key, secret_key), "s3", "us-east-1").add_auth(request)
assert request.headers["X-Amz-Content-SHA256"] == "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
head = f"PUT /{bucket}/chunked HTTP/1.1\r\nHost: {host}\r\n" + "".join(
    f"{name}: {value}\r\n" for name, value in request.headers.items() if name.lower() != "host"
) + "\r\n"
send_and_disconnect(head, wire_chunk * (SENT // chunk_bytes))

# The gateway notices the early end, deletes what it stored and aborts the record.
deadline = time.time() + 20
while metric("cairn_gateway_aborted_writes_total") - aborted_before < 2 and time.time() < deadline:
    time.sleep(0.05)
assert metric("cairn_gateway_aborted_writes_total") - aborted_before == 2
assert metric("cairn_gateway_abandoned_pieces_deleted_total") - deleted_before == 2 * PIECES_WRITTEN_PER_PUT, (
    metric("cairn_gateway_abandoned_pieces_deleted_total") - deleted_before)
assert metric("cairn_gateway_abandoned_piece_delete_errors_total") - failed_before == 0

for key in ("plain", "chunked"):
    try:
        s3.head_object(Bucket=bucket, Key=key)
        raise AssertionError(f"{key}: a truncated PUT left an object")
    except ClientError as error:
        assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 404, error.response
assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
assert s3.list_objects(Bucket=bucket).get("Contents", []) == []

# The keys are writable afterwards and read back whole.
for key in ("plain", "chunked"):
    body = payload(DECLARED)
    s3.put_object(Bucket=bucket, Key=key, Body=body)
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == body
assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 2
print("truncated: all checks passed")
