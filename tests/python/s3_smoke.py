"""boto3 against a running Cairn: bucket and object operations, byte-exact reads, errors.

Usage: s3_smoke.py ENDPOINT ACCESS_KEY SECRET_KEY full|verify
`full` runs every check and leaves `durable/object` in bucket `durable`; `verify` only checks that
object (used after a kill -9 and restart). Exits non-zero on the first failed check.
"""
import hashlib
import random
import sys

from botocore.exceptions import ClientError

import s3client

endpoint, access_key, secret_key, mode = sys.argv[1:5]


def client(secret=secret_key):
    return s3client.client(endpoint, access_key, secret)


def content(seed, size):
    return random.Random(seed).randbytes(size)


def error_code(call):
    try:
        call()
    except ClientError as error:
        return error.response["Error"]["Code"]
    raise AssertionError("the call succeeded")


s3 = client()
durable = content(42, 5 * 1024 * 1024 + 3)

if mode == "verify":
    body = s3.get_object(Bucket="durable", Key="durable/object")["Body"].read()
    assert hashlib.sha256(body).digest() == hashlib.sha256(durable).digest(), "durable object differs"
    print("verify: durable object intact")
    sys.exit(0)

s3.create_bucket(Bucket="durable")
s3.put_object(Bucket="durable", Key="durable/object", Body=durable)

bucket = "smoke"
s3.create_bucket(Bucket=bucket)
assert bucket in [b["Name"] for b in s3.list_buckets()["Buckets"]]
s3.head_bucket(Bucket=bucket)
assert error_code(lambda: s3.create_bucket(Bucket=bucket)) == "BucketAlreadyOwnedByYou"
assert error_code(lambda: s3.head_object(Bucket=bucket, Key="missing")) in ("404", "NoSuchKey")
assert error_code(lambda: s3.get_object(Bucket=bucket, Key="missing")) == "NoSuchKey"
assert error_code(lambda: s3.get_object(Bucket="no-such-bucket", Key="x")) == "NoSuchBucket"

# An empty PUT (botocore sends `Expect: 100-continue`, which gets no 100 for an empty body) and
# then a non-empty PUT on the same keep-alive connection: without `Connection: close` on the
# first answer botocore misreads the second and waits for its read timeout.
strict = s3client.client(
    endpoint, access_key, secret_key, retries={"total_max_attempts": 1}, read_timeout=10
)
for round_number in range(3):
    strict.put_object(Bucket=bucket, Key="expect/empty", Body=b"")
    strict.put_object(Bucket=bucket, Key="expect/one", Body=b"x")
assert strict.get_object(Bucket=bucket, Key="expect/one")["Body"].read() == b"x"
strict.delete_objects(
    Bucket=bucket, Delete={"Objects": [{"Key": "expect/empty"}, {"Key": "expect/one"}]}
)

sizes = [0, 1, 4095, 4096, 262_144 * 4, 262_144 * 4 + 1, 3 * 1024 * 1024 + 17]
for index, size in enumerate(sizes):
    data = content(index, size)
    key = f"objects/{index:02d} with space+plus%percent/ü"
    s3.put_object(Bucket=bucket, Key=key, Body=data, Metadata={"index": str(index)})
    got = s3.get_object(Bucket=bucket, Key=key)
    assert got["Body"].read() == data, f"object of {size} bytes differs"
    assert got["Metadata"].get("index") == str(index)
    assert s3.head_object(Bucket=bucket, Key=key)["ContentLength"] == size
    if size > 2000:
        ranged = s3.get_object(Bucket=bucket, Key=key, Range="bytes=1000-1999")["Body"].read()
        assert ranged == data[1000:2000], f"range of a {size}-byte object differs"
        tail = s3.get_object(Bucket=bucket, Key=key, Range="bytes=-100")["Body"].read()
        assert tail == data[-100:]

listed = s3.list_objects_v2(Bucket=bucket, Prefix="objects/")
assert listed["KeyCount"] == len(sizes), listed["KeyCount"]
page = s3.list_objects_v2(Bucket=bucket, Prefix="objects/", MaxKeys=3)
assert page["IsTruncated"] and len(page["Contents"]) == 3
rest = s3.list_objects_v2(Bucket=bucket, Prefix="objects/", ContinuationToken=page["NextContinuationToken"])
assert [o["Key"] for o in page["Contents"] + rest["Contents"]] == [o["Key"] for o in listed["Contents"]]

s3.delete_object(Bucket=bucket, Key="objects/00 with space+plus%percent/ü")
assert s3.list_objects_v2(Bucket=bucket, Prefix="objects/")["KeyCount"] == len(sizes) - 1
assert error_code(lambda: s3.delete_bucket(Bucket=bucket)) == "BucketNotEmpty"
assert error_code(lambda: client("wrong-secret").list_buckets()) == "SignatureDoesNotMatch"

# Refusals: each is a clear S3 error and stores nothing.
import base64
import urllib.request

bad_md5 = base64.b64encode(hashlib.md5(b"something else").digest()).decode()
assert error_code(lambda: s3.put_object(Bucket=bucket, Key="bad-md5", Body=b"payload", ContentMD5=bad_md5)) in ("BadDigest", "InvalidDigest")
assert error_code(lambda: s3.head_object(Bucket=bucket, Key="bad-md5")) in ("404", "NoSuchKey")
assert error_code(lambda: s3.put_object(Bucket=bucket, Key="k" * 1025, Body=b"x")) == "KeyTooLongError"
for name in ["UPPER", "ab", "-leading", "a" * 64, "192.168.1.1", "under_score"]:
    assert error_code(lambda: s3.create_bucket(Bucket=name)) == "InvalidBucketName", name
expired = client().generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "objects/06 with space+plus%percent/ü"}, ExpiresIn=1)
import time
time.sleep(2)
try:
    urllib.request.urlopen(expired)
    raise AssertionError("an expired presigned URL was accepted")
except urllib.error.HTTPError as error:
    assert error.code == 403, error.code
fresh = client().generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "objects/06 with space+plus%percent/ü"}, ExpiresIn=300)
assert urllib.request.urlopen(fresh).read() == content(6, sizes[6])
assert error_code(lambda: s3.delete_objects(Bucket=bucket, Delete={"Objects": []})) == "MalformedXML"

# UploadPartCopy: a part copied from a range of an object, a part uploaded, a part copied from a
# whole object; the completed object is compared byte for byte.
MiB = 1024 * 1024
source = content(100, 11 * MiB + 123)
s3.put_object(Bucket=bucket, Key="copy/source", Body=source)
source_etag = s3.head_object(Bucket=bucket, Key="copy/source")["ETag"]
upload = s3.create_multipart_upload(Bucket=bucket, Key="copy/assembled")["UploadId"]
copy_source = {"Bucket": bucket, "Key": "copy/source"}
first = s3.upload_part_copy(Bucket=bucket, Key="copy/assembled", UploadId=upload, PartNumber=1,
                            CopySource=copy_source, CopySourceRange=f"bytes=1000-{1000 + 6 * MiB - 1}")
expected_first = source[1000:1000 + 6 * MiB]
assert first["CopyPartResult"]["ETag"] == '"%s"' % hashlib.md5(expected_first).hexdigest(), first
assert first["CopyPartResult"]["LastModified"].year >= 2024
middle = content(101, 5 * MiB)
second = s3.upload_part(Bucket=bucket, Key="copy/assembled", UploadId=upload, PartNumber=2, Body=middle)
third = s3.upload_part_copy(Bucket=bucket, Key="copy/assembled", UploadId=upload, PartNumber=3,
                            CopySource=copy_source, CopySourceIfMatch=source_etag)
assert third["CopyPartResult"]["ETag"] == source_etag, (third, source_etag)
# Refusals, each with AWS's code; none of them adds a part.
copy_part = lambda **extra: s3.upload_part_copy(Bucket=bucket, Key="copy/assembled", UploadId=upload, PartNumber=9, **extra)
assert error_code(lambda: copy_part(CopySource=copy_source, CopySourceRange="bytes=5-")) == "InvalidArgument"
assert error_code(lambda: copy_part(CopySource=copy_source, CopySourceRange="bytes=0-99,200-299")) == "InvalidArgument"
assert error_code(lambda: copy_part(CopySource=copy_source, CopySourceRange=f"bytes=0-{len(source)}")) == "InvalidRange"
assert error_code(lambda: copy_part(CopySource=copy_source, CopySourceIfMatch='"0123"')) == "PreconditionFailed"
assert error_code(lambda: copy_part(CopySource=copy_source, CopySourceIfNoneMatch=source_etag)) == "PreconditionFailed"
import datetime
tomorrow = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1)
assert error_code(lambda: copy_part(CopySource=copy_source, CopySourceIfModifiedSince=tomorrow)) == "PreconditionFailed"
assert error_code(lambda: copy_part(CopySource={"Bucket": bucket, "Key": "copy/missing"})) == "NoSuchKey"
assert error_code(lambda: copy_part(CopySource={"Bucket": bucket, "Key": "copy/source", "VersionId": "not-a-version"})) == "InvalidArgument"
assert error_code(lambda: s3.upload_part_copy(Bucket=bucket, Key="copy/assembled", UploadId="0" * 32, PartNumber=1, CopySource=copy_source)) == "NoSuchUpload"
parts = s3.list_parts(Bucket=bucket, Key="copy/assembled", UploadId=upload)["Parts"]
assert [(p["PartNumber"], p["Size"]) for p in parts] == [(1, 6 * MiB), (2, 5 * MiB), (3, len(source))], parts
s3.complete_multipart_upload(Bucket=bucket, Key="copy/assembled", UploadId=upload, MultipartUpload={"Parts": [
    {"PartNumber": 1, "ETag": first["CopyPartResult"]["ETag"]},
    {"PartNumber": 2, "ETag": second["ETag"]},
    {"PartNumber": 3, "ETag": third["CopyPartResult"]["ETag"]},
]})
assembled = s3.get_object(Bucket=bucket, Key="copy/assembled")["Body"].read()
assert assembled == expected_first + middle + source, "UploadPartCopy object differs"
ranged = s3.get_object(Bucket=bucket, Key="copy/assembled", Range=f"bytes={6 * MiB - 10}-{6 * MiB + 9}")["Body"].read()
assert ranged == (expected_first + middle)[6 * MiB - 10:6 * MiB + 10]

for obj in s3.list_objects_v2(Bucket=bucket)["Contents"]:
    s3.delete_object(Bucket=bucket, Key=obj["Key"])
s3.delete_bucket(Bucket=bucket)
assert error_code(lambda: s3.head_bucket(Bucket=bucket)) in ("404", "NoSuchBucket")
print("full: all checks passed")
