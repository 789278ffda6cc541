"""A workload that handles every kind of secret, for the secrets-hygiene test: a user's keys,
SSE-C keys (right, wrong, copy between keys and to SSE-S3, multipart), SSE-S3, a request with a
bad signature, then the errors those produce. The caller greps the logs for the secrets.

Usage: secrets_workload.py ENDPOINT USER_KEY USER_SECRET SSE_C_KEY_B64 SECOND_SSE_C_KEY_B64
"""
import base64
import hashlib
import os
import sys

from botocore.exceptions import ClientError

sys.path.insert(0, os.path.dirname(__file__))
from s3client import client  # noqa: E402

endpoint, user_key, user_secret, first_key, second_key = sys.argv[1:6]
s3 = client(endpoint, user_key, user_secret)


def customer(key_b64, prefix="SSECustomer"):
    raw = base64.b64decode(key_b64)
    return {f"{prefix}Algorithm": "AES256", f"{prefix}Key": key_b64,
            f"{prefix}KeyMD5": base64.b64encode(hashlib.md5(raw).digest()).decode()}


def fails(call):
    try:
        call()
    except ClientError:
        return
    raise AssertionError("expected a failure")


bucket = "secrets-workload"
s3.create_bucket(Bucket=bucket)
data = os.urandom(150_000)
s3.put_object(Bucket=bucket, Key="sse-s3", Body=data)
assert s3.get_object(Bucket=bucket, Key="sse-s3")["Body"].read() == data
s3.put_object(Bucket=bucket, Key="sse-c", Body=data, **customer(first_key))
assert s3.get_object(Bucket=bucket, Key="sse-c", Range="bytes=70000-80000",
                     **customer(first_key))["Body"].read() == data[70000:80001]
fails(lambda: s3.get_object(Bucket=bucket, Key="sse-c", **customer(second_key)))
fails(lambda: s3.get_object(Bucket=bucket, Key="sse-c"))
s3.copy_object(Bucket=bucket, Key="sse-c-copy", CopySource={"Bucket": bucket, "Key": "sse-c"},
               **customer(first_key, "CopySourceSSECustomer"), **customer(second_key))
assert s3.get_object(Bucket=bucket, Key="sse-c-copy", **customer(second_key))["Body"].read() == data
s3.copy_object(Bucket=bucket, Key="to-sse-s3", CopySource={"Bucket": bucket, "Key": "sse-c"},
               **customer(first_key, "CopySourceSSECustomer"))
assert s3.get_object(Bucket=bucket, Key="to-sse-s3")["Body"].read() == data
upload = s3.create_multipart_upload(Bucket=bucket, Key="multi", **customer(first_key))
part = s3.upload_part(Bucket=bucket, Key="multi", UploadId=upload["UploadId"], PartNumber=1,
                      Body=data, **customer(first_key))
s3.complete_multipart_upload(Bucket=bucket, Key="multi", UploadId=upload["UploadId"],
                             MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})
assert s3.head_object(Bucket=bucket, Key="multi", **customer(first_key))["ContentLength"] == len(data)
# A request signed with a wrong secret.
wrong = client(endpoint, user_key, user_secret[::-1])
fails(lambda: wrong.list_objects_v2(Bucket=bucket))
print("secrets workload: ok")
