"""Bucket quotas through boto3: the bucket BUCKET already has a quota of 5000 bytes and 2 objects
(set by the Rust test with `cairn admin bucket-quota`) and is empty. Writes past either limit are
refused with 403 QuotaExceeded (a standard S3 error document) and store nothing; a delete makes
room; an upload part that cannot fit is refused. Leaves 4000 bytes in 2 objects.

Usage: s3_quota.py ENDPOINT ACCESS_KEY SECRET_KEY BUCKET"""
import sys

from botocore.exceptions import ClientError

from s3client import client

endpoint, access_key, secret_key, bucket = sys.argv[1:5]
s3 = client(endpoint, access_key, secret_key)


def expect_quota_exceeded(call):
    try:
        call()
    except ClientError as error:
        got = (error.response["Error"]["Code"], error.response["ResponseMetadata"]["HTTPStatusCode"])
        assert got == ("QuotaExceeded", 403), f"expected QuotaExceeded 403, got {got}"
        message = error.response["Error"]["Message"]
        assert "quota" in message, message
        assert error.response["ResponseMetadata"]["RequestId"], error.response
        return
    raise AssertionError("expected QuotaExceeded, the call succeeded")


def keys():
    return [entry["Key"] for entry in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


s3.put_object(Bucket=bucket, Key="a", Body=b"a" * 3000)
# Bytes: 3000 + 3000 > 5000.
expect_quota_exceeded(lambda: s3.put_object(Bucket=bucket, Key="b", Body=b"b" * 3000))
assert keys() == ["a"], keys()
s3.put_object(Bucket=bucket, Key="b", Body=b"b" * 2000)
# Objects: a third one, even empty, is refused.
expect_quota_exceeded(lambda: s3.put_object(Bucket=bucket, Key="c", Body=b""))
expect_quota_exceeded(
    lambda: s3.copy_object(Bucket=bucket, Key="c", CopySource={"Bucket": bucket, "Key": "b"})
)
assert keys() == ["a", "b"], keys()
# A delete makes room at once.
s3.delete_object(Bucket=bucket, Key="a")
s3.put_object(Bucket=bucket, Key="c", Body=b"c" * 2000)
assert keys() == ["b", "c"], keys()

# Multipart: a part past the byte limit is refused before it is stored; the upload stays
# usable and is aborted.
upload_id = s3.create_multipart_upload(Bucket=bucket, Key="m")["UploadId"]
expect_quota_exceeded(
    lambda: s3.upload_part(
        Bucket=bucket, Key="m", UploadId=upload_id, PartNumber=1, Body=b"m" * 6000
    )
)
parts = s3.list_parts(Bucket=bucket, Key="m", UploadId=upload_id).get("Parts", [])
assert parts == [], parts
s3.abort_multipart_upload(Bucket=bucket, Key="m", UploadId=upload_id)

# Reads and deletes are never limited.
assert s3.get_object(Bucket=bucket, Key="b")["Body"].read() == b"b" * 2000
print("ok")
