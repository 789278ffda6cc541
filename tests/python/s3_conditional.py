"""boto3 against a running Cairn: conditional writes (If-None-Match: *, If-Match) on PUT,
CompleteMultipartUpload and DeleteObject, and racing writers of one key.

Usage: s3_conditional.py ENDPOINT ACCESS_KEY SECRET_KEY. Exits non-zero on the first failed check.
"""
import sys
import threading

from botocore.exceptions import ClientError

import s3client
from s3client import failure

endpoint, access_key, secret_key = sys.argv[1:4]
s3 = s3client.client(endpoint, access_key, secret_key, retries={"total_max_attempts": 1})


bucket = "conditional"
s3.create_bucket(Bucket=bucket)

# If-None-Match: * creates once; a second create is 412 and leaves the first body.
s3.put_object(Bucket=bucket, Key="once", Body=b"first", IfNoneMatch="*")
assert failure(lambda: s3.put_object(Bucket=bucket, Key="once", Body=b"second", IfNoneMatch="*")) == ("PreconditionFailed", 412)
assert s3.get_object(Bucket=bucket, Key="once")["Body"].read() == b"first"
# Only `*` is supported, as in S3.
assert failure(lambda: s3.put_object(Bucket=bucket, Key="once", Body=b"x", IfNoneMatch='"abc"'))[1] == 501

# If-Match: the ETag must be the current one; a missing key is NoSuchKey.
etag = s3.head_object(Bucket=bucket, Key="once")["ETag"]
assert failure(lambda: s3.put_object(Bucket=bucket, Key="once", Body=b"x", IfMatch='"0123"')) == ("PreconditionFailed", 412)
assert failure(lambda: s3.put_object(Bucket=bucket, Key="absent", Body=b"x", IfMatch=etag)) == ("NoSuchKey", 404)
new_etag = s3.put_object(Bucket=bucket, Key="once", Body=b"updated", IfMatch=etag)["ETag"]
assert s3.get_object(Bucket=bucket, Key="once")["Body"].read() == b"updated"
assert failure(lambda: s3.put_object(Bucket=bucket, Key="once", Body=b"x", IfMatch=etag)) == ("PreconditionFailed", 412)

# Conditional DeleteObject.
assert failure(lambda: s3.delete_object(Bucket=bucket, Key="once", IfMatch=etag)) == ("PreconditionFailed", 412)
assert failure(lambda: s3.delete_object(Bucket=bucket, Key="absent", IfMatch=etag)) == ("NoSuchKey", 404)
s3.delete_object(Bucket=bucket, Key="once", IfMatch=new_etag)
assert failure(lambda: s3.head_object(Bucket=bucket, Key="once"))[1] == 404
# Deleted: If-None-Match: * may create it again.
s3.put_object(Bucket=bucket, Key="once", Body=b"again", IfNoneMatch="*")

# CompleteMultipartUpload with If-None-Match: * on a key that exists.
def multipart(key, **condition):
    upload = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    part = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=1, Body=b"part")
    return lambda: s3.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]}, **condition,
    )


assert failure(multipart("once", IfNoneMatch="*")) == ("PreconditionFailed", 412)
assert s3.get_object(Bucket=bucket, Key="once")["Body"].read() == b"again"
# As in S3, the refused completion leaves the upload open for a retry or an abort.
(open_upload,) = s3.list_multipart_uploads(Bucket=bucket)["Uploads"]
s3.abort_multipart_upload(Bucket=bucket, Key="once", UploadId=open_upload["UploadId"])
multipart("mp-new", IfNoneMatch="*")()
assert s3.get_object(Bucket=bucket, Key="mp-new")["Body"].read() == b"part"

# Racing writers: exactly one If-None-Match: * PUT of a new key succeeds.
WRITERS = 8
outcomes = []
lock = threading.Lock()
start = threading.Barrier(WRITERS)


def writer(n):
    client = s3client.client(endpoint, access_key, secret_key, retries={"total_max_attempts": 1})
    body = b"writer-%d" % n
    start.wait()
    try:
        client.put_object(Bucket=bucket, Key="race", Body=body, IfNoneMatch="*")
        outcome = ("ok", body)
    except ClientError as error:
        outcome = (error.response["Error"]["Code"], error.response["ResponseMetadata"]["HTTPStatusCode"])
    with lock:
        outcomes.append(outcome)


threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
winners = [outcome for outcome in outcomes if outcome[0] == "ok"]
assert len(winners) == 1, outcomes
losers = [outcome for outcome in outcomes if outcome[0] != "ok"]
assert all(outcome in (("PreconditionFailed", 412), ("ConditionalRequestConflict", 409)) for outcome in losers), outcomes
assert s3.get_object(Bucket=bucket, Key="race")["Body"].read() == winners[0][1]

for key in ["once", "mp-new", "race"]:
    s3.delete_object(Bucket=bucket, Key=key)
s3.delete_bucket(Bucket=bucket)
print("conditional: ok", outcomes)
