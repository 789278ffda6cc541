"""Bucket default encryption through boto3 against `cairn dev` (issue 11).

Usage: s3_bucket_encryption.py ENDPOINT ACCESS_KEY SECRET_KEY DEFAULT
DEFAULT is `on` when the dev encrypts by default (then every bucket reports AES256, as S3 does
since 2023) and `off` when it runs with --no-default-encryption (then a bucket without a
configuration answers ServerSideEncryptionConfigurationNotFoundError and its objects are
plaintext until PutBucketEncryption turns SSE-S3 on for new objects).
"""
import base64
import hashlib
import os
import sys

from botocore.exceptions import ClientError

sys.path.insert(0, os.path.dirname(__file__))
from s3client import client  # noqa: E402

endpoint, access_key, secret_key, default = sys.argv[1:5]
s3 = client(endpoint, access_key, secret_key)
AES256 = {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"},
                     "BucketKeyEnabled": False}]}


def expect_error(call, code, status):
    try:
        call()
    except ClientError as error:
        got = (error.response["Error"]["Code"], error.response["ResponseMetadata"]["HTTPStatusCode"])
        assert got == (code, status), f"expected {(code, status)}, got {got}"
        return
    raise AssertionError(f"expected {code}")


def sse_of(bucket, key):
    return s3.head_object(Bucket=bucket, Key=key).get("ServerSideEncryption")


bucket = "default-encryption"
s3.create_bucket(Bucket=bucket)
if default == "off":
    expect_error(lambda: s3.get_bucket_encryption(Bucket=bucket),
                 "ServerSideEncryptionConfigurationNotFoundError", 404)
    s3.put_object(Bucket=bucket, Key="before", Body=b"plain")
    assert sse_of(bucket, "before") is None
else:
    configuration = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]
    assert configuration["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"

s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration=AES256)
configuration = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]
assert configuration == AES256, configuration
data = os.urandom(200_000)
put = s3.put_object(Bucket=bucket, Key="after", Body=data)
assert put["ServerSideEncryption"] == "AES256", put
assert sse_of(bucket, "after") == "AES256"
assert s3.get_object(Bucket=bucket, Key="after")["Body"].read() == data
# Multipart and copies without SSE headers take the bucket default too.
upload = s3.create_multipart_upload(Bucket=bucket, Key="multi")
assert upload["ServerSideEncryption"] == "AES256", upload
part = s3.upload_part(Bucket=bucket, Key="multi", UploadId=upload["UploadId"], PartNumber=1,
                      Body=data)
s3.complete_multipart_upload(Bucket=bucket, Key="multi", UploadId=upload["UploadId"],
                             MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})
assert sse_of(bucket, "multi") == "AES256"
assert s3.get_object(Bucket=bucket, Key="multi")["Body"].read() == data
if default == "off":
    s3.copy_object(Bucket=bucket, Key="copied", CopySource={"Bucket": bucket, "Key": "before"})
    assert sse_of(bucket, "copied") == "AES256"
    assert s3.get_object(Bucket=bucket, Key="copied")["Body"].read() == b"plain"
# A request's own SSE-C headers win over the bucket default.
key = os.urandom(32)
customer = {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": base64.b64encode(key).decode(),
            "SSECustomerKeyMD5": base64.b64encode(hashlib.md5(key).digest()).decode()}
s3.put_object(Bucket=bucket, Key="customer", Body=b"secret", **customer)
expect_error(lambda: s3.get_object(Bucket=bucket, Key="customer"), "InvalidRequest", 400)
assert s3.get_object(Bucket=bucket, Key="customer", **customer)["Body"].read() == b"secret"
# Dual-layer SSE-KMS is not implemented (aws:kms itself: tests/python/s3_kms.py).
expect_error(lambda: s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={
    "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms:dsse"}}]}),
    "NotImplemented", 501)
assert s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"] == AES256
s3.delete_bucket_encryption(Bucket=bucket)
if default == "off":
    expect_error(lambda: s3.get_bucket_encryption(Bucket=bucket),
                 "ServerSideEncryptionConfigurationNotFoundError", 404)
    s3.put_object(Bucket=bucket, Key="removed", Body=b"plain again")
    assert sse_of(bucket, "removed") is None
# Objects written under the configuration stay readable after it is removed.
assert s3.get_object(Bucket=bucket, Key="after")["Body"].read() == data
print("bucket encryption: ok")
