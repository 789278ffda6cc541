"""boto3 against a running Cairn: CopyObject's x-amz-copy-source-if-match / if-none-match /
if-modified-since / if-unmodified-since, with AWS's precedence (a matching if-match hides a
failing if-unmodified-since; a failing if-none-match wins over a holding if-modified-since) and
412 PreconditionFailed for every failure, the destination left untouched.

Usage: s3_copy_conditions.py ENDPOINT ACCESS_KEY SECRET_KEY. Exits non-zero on the first failed
check.
"""
import datetime
import sys


import s3client
from s3client import failure

endpoint, access_key, secret_key = sys.argv[1:4]
s3 = s3client.client(endpoint, access_key, secret_key, retries={"total_max_attempts": 1})
bucket = "py-copy-conditions"


s3.create_bucket(Bucket=bucket)
etag = s3.put_object(Bucket=bucket, Key="source", Body=b"source bytes")["ETag"]
modified = s3.head_object(Bucket=bucket, Key="source")["LastModified"]
past = modified - datetime.timedelta(days=1)
future = modified + datetime.timedelta(days=1)
source = {"Bucket": bucket, "Key": "source"}


def copy(key, **conditions):
    return s3.copy_object(Bucket=bucket, Key=key, CopySource=source, **conditions)


holding = [
    {"CopySourceIfMatch": etag},
    {"CopySourceIfNoneMatch": '"0123456789abcdef0123456789abcdef"'},
    {"CopySourceIfModifiedSince": past},
    {"CopySourceIfUnmodifiedSince": future},
    # if-match true hides if-unmodified-since false.
    {"CopySourceIfMatch": etag, "CopySourceIfUnmodifiedSince": past},
    # if-none-match true hides if-modified-since false.
    {"CopySourceIfNoneMatch": '"0123456789abcdef0123456789abcdef"', "CopySourceIfModifiedSince": future},
]
for index, conditions in enumerate(holding):
    copy(f"copy-{index}", **conditions)
    assert s3.get_object(Bucket=bucket, Key=f"copy-{index}")["Body"].read() == b"source bytes", conditions

failing = [
    {"CopySourceIfMatch": '"0123456789abcdef0123456789abcdef"'},
    {"CopySourceIfNoneMatch": etag},
    {"CopySourceIfModifiedSince": future},
    {"CopySourceIfUnmodifiedSince": past},
    # if-none-match false with if-modified-since true: 412.
    {"CopySourceIfNoneMatch": etag, "CopySourceIfModifiedSince": past},
    # if-match false whatever if-unmodified-since says.
    {"CopySourceIfMatch": '"0123456789abcdef0123456789abcdef"', "CopySourceIfUnmodifiedSince": future},
]
for conditions in failing:
    assert failure(lambda: copy("refused", **conditions)) == ("PreconditionFailed", 412), conditions
assert failure(lambda: s3.head_object(Bucket=bucket, Key="refused")) == ("404", 404)
print("copy conditions: ok")
