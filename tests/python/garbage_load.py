"""Writes that leave garbage behind, for the janitor's black-box test (tests/tests/janitor_dev.rs).

Usage:
  garbage_load.py ENDPOINT ACCESS SECRET populate BUCKET MANIFEST
      PUTs objects, overwrites some, deletes some, aborts a multipart upload after two parts,
      and sends a PUT whose body stops half-way (the client disconnects). Appends the objects
      that must survive (`key sha256 size`) to MANIFEST.
  garbage_load.py ENDPOINT ACCESS SECRET hang BUCKET KEY
      Sends a signed PUT of 64 MiB, streams 12 MiB of it, prints "sent" and then waits forever
      (the test kills the server under it, leaving a PREPARING write behind).
  garbage_load.py ENDPOINT ACCESS SECRET delete-all BUCKET
      Deletes every object of BUCKET and then the bucket.
"""
import hashlib
import random
import socket
import sys
import time
from urllib.parse import urlparse

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

import s3client

endpoint, access_key, secret_key, mode, bucket = sys.argv[1:6]
rest = sys.argv[6:]
s3 = s3client.client(endpoint, access_key, secret_key)
MIB = 1024 * 1024


def content(seed, size):
    return random.Random(seed).randbytes(size)


def raw_put_prefix(key, declared_bytes, sent_bytes):
    """A PUT signed with UNSIGNED-PAYLOAD that declares `declared_bytes` and sends `sent_bytes`."""
    url = f"{endpoint}/{bucket}/{key}"
    request = AWSRequest(
        method="PUT",
        url=url,
        headers={"x-amz-content-sha256": "UNSIGNED-PAYLOAD", "Content-Length": str(declared_bytes)},
    )
    SigV4Auth(Credentials(access_key, secret_key), "s3", "us-east-1").add_auth(request)
    parsed = urlparse(endpoint)
    connection = socket.create_connection((parsed.hostname, parsed.port))
    head = f"PUT /{bucket}/{key} HTTP/1.1\r\nHost: {parsed.netloc}\r\n"
    for name, value in request.headers.items():
        if name.lower() != "host":
            head += f"{name}: {value}\r\n"
    connection.sendall(head.encode() + b"\r\n")
    body = content(hash(key) & 0xFFFF, sent_bytes)
    for offset in range(0, sent_bytes, MIB):
        connection.sendall(body[offset : offset + MIB])
    return connection


def record(manifest, key, body):
    manifest.write(f"{key} {hashlib.sha256(body).hexdigest()} {len(body)}\n")


if mode == "populate":
    manifest_path = rest[0]
    s3.create_bucket(Bucket=bucket)
    live = {}
    sizes = [0, 1, 5000, 300_000, 2 * MIB + 3, 5 * MIB]
    for index, size in enumerate(sizes):
        live[f"obj/{index}"] = content(index, size)
    for key, body in live.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    # Overwrites (the first versions become garbage) and deletes.
    for index in (2, 4, 5):
        key = f"obj/{index}"
        live[key] = content(100 + index, len(live[key]) + 17)
        s3.put_object(Bucket=bucket, Key=key, Body=live[key])
    for index in (3,):
        s3.delete_object(Bucket=bucket, Key=f"obj/{index}")
        del live[f"obj/{index}"]
    # A multipart upload abandoned after two parts, and one completed with a part uploaded twice.
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp/aborted")["UploadId"]
    for number in (1, 2):
        s3.upload_part(Bucket=bucket, Key="mp/aborted", UploadId=upload, PartNumber=number,
                       Body=content(200 + number, 5 * MIB))
    s3.abort_multipart_upload(Bucket=bucket, Key="mp/aborted", UploadId=upload)
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp/done")["UploadId"]
    parts = []
    for number, seed in ((1, 300), (1, 301), (2, 302)):
        body = content(seed, 5 * MIB if number == 1 else 1234)
        etag = s3.upload_part(Bucket=bucket, Key="mp/done", UploadId=upload, PartNumber=number,
                              Body=body)["ETag"]
        if number == 1:
            first = body
            parts = [{"PartNumber": 1, "ETag": etag}]
        else:
            parts.append({"PartNumber": 2, "ETag": etag})
            second = body
    s3.complete_multipart_upload(Bucket=bucket, Key="mp/done", UploadId=upload,
                                 MultipartUpload={"Parts": parts})
    live["mp/done"] = first + second
    # A client that disconnects half-way through its body.
    connection = raw_put_prefix("truncated", 6 * MIB, 3 * MIB)
    connection.close()
    time.sleep(0.5)
    try:
        s3.head_object(Bucket=bucket, Key="truncated")
        sys.exit("a truncated PUT created an object")
    except s3.exceptions.ClientError as error:
        assert error.response["Error"]["Code"] in ("404", "NoSuchKey"), error.response
    with open(manifest_path, "w") as manifest:
        for key, body in live.items():
            record(manifest, key, body)
    print(f"populate: {len(live)} live objects")
elif mode == "hang":
    s3.create_bucket(Bucket=bucket)
    connection = raw_put_prefix(rest[0], 64 * MIB, 12 * MIB)
    print("sent", flush=True)
    time.sleep(3600)
elif mode == "delete-all":
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys.extend(item["Key"] for item in page.get("Contents", []))
    for start in range(0, len(keys), 1000):
        s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys[start:start + 1000]]})
    s3.delete_bucket(Bucket=bucket)
    print(f"delete-all: {len(keys)} objects")
else:
    sys.exit(f"unknown mode {mode}")
