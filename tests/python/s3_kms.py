"""SSE-KMS through boto3 against `cairn dev`:
usage: s3_kms.py ENDPOINT ACCESS_KEY SECRET_KEY PHASE KEY_ID KEY_ARN

KEY_ID/KEY_ARN name a key made with `cairn admin kms create --alias alias/boto3-key`.
Phases (the Rust test rotates, disables and enables the key between them):
- write: round trips with the key named by id, ARN and alias and with the default key
  (`alias/aws/s3`, created on first use), response headers, ranges across 64 KiB chunk and part
  boundaries, multipart, CopyObject and UploadPartCopy between SSE-KMS, SSE-S3 and SSE-C, bucket
  default aws:kms (Put/GetBucketEncryption), AWS's errors for an unknown key and for a key id
  without aws:kms, POST object with SSE-KMS form fields. Every body carries MARKER for the caller's scan of the storage nodes' files.
- rotated: after a rotation, a new object and the old ones read back.
- disabled: writes and reads under the key fail with KMS.DisabledException (400); other keys work.
- enabled: reads work again."""
import hashlib
import os
import sys

import requests

sys.path.insert(0, os.path.dirname(__file__))
from s3client import client, failure  # noqa: E402

MARKER = b"CAIRN-PLAINTEXT-MARKER-7f3a"
MIB = 1024 * 1024
BUCKET = "boto3-kms"
DEFAULT_BUCKET = "boto3-kms-default"
ALIAS = "alias/boto3-key"


def body(length, seed):
    line = MARKER + b"-kms-%d-" % seed
    return (line * (length // len(line) + 1))[:length]


def read(s3, key, bucket=BUCKET, **kwargs):
    return s3.get_object(Bucket=bucket, Key=key, **kwargs)["Body"].read()


def assert_kms(answer, arn):
    assert answer["ServerSideEncryption"] == "aws:kms", answer
    assert answer["SSEKMSKeyId"] == arn, (answer.get("SSEKMSKeyId"), arn)


def round_trips(s3, key_id, arn):
    data = body(300_000, 1)
    for name, named in [("by-id", key_id), ("by-arn", arn), ("by-alias", ALIAS)]:
        put = s3.put_object(Bucket=BUCKET, Key=name, Body=data, ServerSideEncryption="aws:kms",
                            SSEKMSKeyId=named)
        assert_kms(put, arn)
        assert put["ETag"] == '"%s"' % hashlib.md5(data).hexdigest()
        got = s3.get_object(Bucket=BUCKET, Key=name)
        assert_kms(got, arn)
        assert got["Body"].read() == data
        assert_kms(s3.head_object(Bucket=BUCKET, Key=name), arn)
    for first, last in [(0, 0), (65530, 65545), (65536, 131071), (131071, 131072),
                        (100_000, 200_000), (299_990, 299_999)]:
        assert read(s3, "by-id", Range=f"bytes={first}-{last}") == data[first:last + 1], (first, last)
    assert read(s3, "by-id", Range="bytes=-100") == data[-100:]
    # Bucket keys are accepted (each object still has its own data key).
    put = s3.put_object(Bucket=BUCKET, Key="bucket-key", Body=data[:1000],
                        ServerSideEncryption="aws:kms", SSEKMSKeyId=key_id, BucketKeyEnabled=True)
    assert_kms(put, arn)
    # Without a key id: the cluster's default key, alias/aws/s3.
    put = s3.put_object(Bucket=BUCKET, Key="default-key", Body=data[:5000], ServerSideEncryption="aws:kms")
    assert put["ServerSideEncryption"] == "aws:kms"
    default_arn = put["SSEKMSKeyId"]
    assert default_arn.startswith("arn:aws:kms:us-east-1:000000000000:key/") and default_arn != arn
    again = s3.put_object(Bucket=BUCKET, Key="default-key-2", Body=b"x", ServerSideEncryption="aws:kms")
    assert again["SSEKMSKeyId"] == default_arn
    assert read(s3, "default-key") == data[:5000]
    s3.put_object(Bucket=BUCKET, Key="empty", Body=b"", ServerSideEncryption="aws:kms", SSEKMSKeyId=key_id)
    assert read(s3, "empty") == b""
    return data, default_arn


def errors(s3, key_id):
    unknown = "00000000-0000-4000-8000-000000000000"
    for named in [unknown, "alias/nobody", f"arn:aws:kms:us-east-1:000000000000:key/{unknown}"]:
        assert failure(lambda: s3.put_object(Bucket=BUCKET, Key="bad", Body=b"x", ServerSideEncryption="aws:kms",
                                             SSEKMSKeyId=named)) == ("KMS.NotFoundException", 400), named
    # A key id without aws:kms.
    assert failure(lambda: s3.put_object(Bucket=BUCKET, Key="bad", Body=b"x", SSEKMSKeyId=key_id)) \
        == ("InvalidArgument", 400)
    assert failure(lambda: s3.put_object(Bucket=BUCKET, Key="bad", Body=b"x", ServerSideEncryption="AES256",
                                         SSEKMSKeyId=key_id)) == ("InvalidArgument", 400)
    # SSE-C and aws:kms together.
    assert failure(lambda: s3.put_object(Bucket=BUCKET, Key="bad", Body=b"x", ServerSideEncryption="aws:kms",
                                         SSECustomerAlgorithm="AES256", SSECustomerKey=os.urandom(32))) \
        == ("InvalidArgument", 400)
    # SSE-C headers on an SSE-KMS object.
    assert failure(lambda: s3.get_object(Bucket=BUCKET, Key="by-id", SSECustomerAlgorithm="AES256",
                                         SSECustomerKey=os.urandom(32))) == ("InvalidRequest", 400)
    assert "bad" not in [item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]


def multipart(s3, key_id, arn):
    parts = [body(5 * MIB, 2), body(5 * MIB + 7, 3), body(100_003, 4)]
    upload = s3.create_multipart_upload(Bucket=BUCKET, Key="multi", ServerSideEncryption="aws:kms",
                                        SSEKMSKeyId=ALIAS)
    assert_kms(upload, arn)
    etags = []
    for number, data in enumerate(parts, start=1):
        answer = s3.upload_part(Bucket=BUCKET, Key="multi", UploadId=upload["UploadId"], PartNumber=number,
                                Body=data)
        assert_kms(answer, arn)
        etags.append(answer["ETag"])
    done = s3.complete_multipart_upload(
        Bucket=BUCKET, Key="multi", UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": n + 1, "ETag": e} for n, e in enumerate(etags)]})
    assert_kms(done, arn)
    whole = b"".join(parts)
    assert read(s3, "multi") == whole
    boundary = 5 * MIB
    for first, last in [(boundary - 10, boundary + 10), (boundary - 70_000, boundary + 70_000),
                        (2 * boundary, len(whole) - 1)]:
        assert read(s3, "multi", Range=f"bytes={first}-{last}") == whole[first:last + 1]
    assert read(s3, "multi", PartNumber=2) == parts[1]
    return whole


def copies(s3, key_id, arn, data, whole):
    customer = {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": os.urandom(32)}
    source_customer = {"CopySourceSSECustomerAlgorithm": "AES256",
                       "CopySourceSSECustomerKey": customer["SSECustomerKey"]}
    # SSE-KMS -> SSE-S3 (the bucket's default for a copy without SSE headers).
    answer = s3.copy_object(Bucket=BUCKET, Key="kms-to-s3", CopySource={"Bucket": BUCKET, "Key": "by-id"})
    assert answer["ServerSideEncryption"] == "AES256"
    assert read(s3, "kms-to-s3") == data
    # SSE-S3 -> SSE-KMS.
    answer = s3.copy_object(Bucket=BUCKET, Key="s3-to-kms", CopySource={"Bucket": BUCKET, "Key": "kms-to-s3"},
                            ServerSideEncryption="aws:kms", SSEKMSKeyId=key_id)
    assert_kms(answer, arn)
    assert read(s3, "s3-to-kms") == data
    # SSE-KMS -> SSE-C -> SSE-KMS.
    s3.copy_object(Bucket=BUCKET, Key="kms-to-c", CopySource={"Bucket": BUCKET, "Key": "by-alias"}, **customer)
    assert read(s3, "kms-to-c", **customer) == data
    answer = s3.copy_object(Bucket=BUCKET, Key="c-to-kms", CopySource={"Bucket": BUCKET, "Key": "kms-to-c"},
                            ServerSideEncryption="aws:kms", SSEKMSKeyId=ALIAS, **source_customer)
    assert_kms(answer, arn)
    assert read(s3, "c-to-kms") == data
    # A copy onto itself naming an encryption re-encrypts in place (without one it is refused).
    s3.put_object(Bucket=BUCKET, Key="in-place", Body=data[:3000], ServerSideEncryption="AES256")
    assert failure(lambda: s3.copy_object(Bucket=BUCKET, Key="in-place",
                                          CopySource={"Bucket": BUCKET, "Key": "in-place"})) \
        == ("InvalidRequest", 400)
    answer = s3.copy_object(Bucket=BUCKET, Key="in-place", CopySource={"Bucket": BUCKET, "Key": "in-place"},
                            ServerSideEncryption="aws:kms", SSEKMSKeyId=arn)
    assert_kms(answer, arn)
    assert_kms(s3.head_object(Bucket=BUCKET, Key="in-place"), arn)
    assert read(s3, "in-place") == data[:3000]
    # UploadPartCopy from SSE-KMS sources into an SSE-S3 upload and into an SSE-KMS upload.
    for target, extra in [("part-copy-s3", {}), ("part-copy-kms", {"ServerSideEncryption": "aws:kms",
                                                                   "SSEKMSKeyId": key_id})]:
        upload = s3.create_multipart_upload(Bucket=BUCKET, Key=target, **extra)
        first = s3.upload_part_copy(Bucket=BUCKET, Key=target, UploadId=upload["UploadId"], PartNumber=1,
                                    CopySource={"Bucket": BUCKET, "Key": "multi"},
                                    CopySourceRange=f"bytes=1000-{5 * MIB + 999}")
        second = s3.upload_part_copy(Bucket=BUCKET, Key=target, UploadId=upload["UploadId"], PartNumber=2,
                                     CopySource={"Bucket": BUCKET, "Key": "by-arn"},
                                     CopySourceRange="bytes=65000-140000")
        done = s3.complete_multipart_upload(
            Bucket=BUCKET, Key=target, UploadId=upload["UploadId"],
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": first["CopyPartResult"]["ETag"]},
                                       {"PartNumber": 2, "ETag": second["CopyPartResult"]["ETag"]}]})
        assert done["ServerSideEncryption"] == ("aws:kms" if extra else "AES256")
        assert read(s3, target) == whole[1000:5 * MIB + 1000] + data[65000:140001]


def post_object(s3, arn):
    """POST object (browser upload) with SSE-KMS form fields."""
    data = body(90_000, 6)
    fields = {"x-amz-server-side-encryption": "aws:kms",
              "x-amz-server-side-encryption-aws-kms-key-id": ALIAS}
    presigned = s3.generate_presigned_post(BUCKET, "posted", Fields=fields,
                                           Conditions=[{name: value} for name, value in fields.items()],
                                           ExpiresIn=600)
    response = requests.post(presigned["url"], data=presigned["fields"], files={"file": ("f.bin", data)},
                             allow_redirects=False)
    assert response.status_code == 204, (response.status_code, response.text)
    got = s3.get_object(Bucket=BUCKET, Key="posted")
    assert_kms(got, arn)
    assert got["Body"].read() == data


def bucket_default(s3, key_id, arn, default_arn):
    s3.create_bucket(Bucket=DEFAULT_BUCKET)
    s3.put_bucket_encryption(Bucket=DEFAULT_BUCKET, ServerSideEncryptionConfiguration={"Rules": [{
        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": ALIAS},
        "BucketKeyEnabled": True}]})
    rule = s3.get_bucket_encryption(Bucket=DEFAULT_BUCKET)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": ALIAS}
    assert rule["BucketKeyEnabled"] is True
    data = body(70_000, 5)
    assert_kms(s3.put_object(Bucket=DEFAULT_BUCKET, Key="defaulted", Body=data), arn)
    assert read(s3, "defaulted", bucket=DEFAULT_BUCKET) == data
    upload = s3.create_multipart_upload(Bucket=DEFAULT_BUCKET, Key="defaulted-multi")
    assert_kms(upload, arn)
    s3.abort_multipart_upload(Bucket=DEFAULT_BUCKET, Key="defaulted-multi", UploadId=upload["UploadId"])
    answer = s3.copy_object(Bucket=DEFAULT_BUCKET, Key="copied", CopySource={"Bucket": BUCKET, "Key": "by-id"})
    assert_kms(answer, arn)
    # A request's own SSE header wins over the default.
    put = s3.put_object(Bucket=DEFAULT_BUCKET, Key="asked-s3", Body=data, ServerSideEncryption="AES256")
    assert put["ServerSideEncryption"] == "AES256" and "SSEKMSKeyId" not in put
    # aws:kms without a key id: the default key.
    s3.put_bucket_encryption(Bucket=DEFAULT_BUCKET, ServerSideEncryptionConfiguration={"Rules": [{
        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]})
    rule = s3.get_bucket_encryption(Bucket=DEFAULT_BUCKET)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "aws:kms"}
    assert_kms(s3.put_object(Bucket=DEFAULT_BUCKET, Key="default-key", Body=data), default_arn)
    # A default naming an unknown key fails the write, as on AWS.
    s3.put_bucket_encryption(Bucket=DEFAULT_BUCKET, ServerSideEncryptionConfiguration={"Rules": [{
        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": "alias/missing"}}]})
    assert failure(lambda: s3.put_object(Bucket=DEFAULT_BUCKET, Key="x", Body=b"x")) \
        == ("KMS.NotFoundException", 400)
    s3.delete_bucket_encryption(Bucket=DEFAULT_BUCKET)
    put = s3.put_object(Bucket=DEFAULT_BUCKET, Key="after-delete", Body=b"x")
    assert put["ServerSideEncryption"] == "AES256"


def main():
    endpoint, access_key, secret_key, phase, key_id, arn = sys.argv[1:7]
    s3 = client(endpoint, access_key, secret_key)
    data = body(300_000, 1)
    if phase == "write":
        s3.create_bucket(Bucket=BUCKET)
        data, default_arn = round_trips(s3, key_id, arn)
        errors(s3, key_id)
        whole = multipart(s3, key_id, arn)
        copies(s3, key_id, arn, data, whole)
        post_object(s3, arn)
        bucket_default(s3, key_id, arn, default_arn)
    elif phase == "rotated":
        put = s3.put_object(Bucket=BUCKET, Key="after-rotation", Body=data[:4000], ServerSideEncryption="aws:kms",
                            SSEKMSKeyId=key_id)
        assert_kms(put, arn)
        assert read(s3, "after-rotation") == data[:4000]
        assert read(s3, "by-id") == data
        assert read(s3, "multi", Range="bytes=0-99") == body(5 * MIB, 2)[:100]
    elif phase == "disabled":
        for key in ["by-id", "multi", "after-rotation", "s3-to-kms"]:
            assert failure(lambda: s3.get_object(Bucket=BUCKET, Key=key)) == ("KMS.DisabledException", 400), key
        assert failure(lambda: s3.put_object(Bucket=BUCKET, Key="while-disabled", Body=b"x",
                                             ServerSideEncryption="aws:kms", SSEKMSKeyId=ALIAS)) \
            == ("KMS.DisabledException", 400)
        assert failure(lambda: s3.copy_object(Bucket=BUCKET, Key="while-disabled",
                                              CopySource={"Bucket": BUCKET, "Key": "by-id"})) \
            == ("KMS.DisabledException", 400)
        assert failure(lambda: s3.create_multipart_upload(Bucket=BUCKET, Key="while-disabled",
                                                          ServerSideEncryption="aws:kms", SSEKMSKeyId=key_id)) \
            == ("KMS.DisabledException", 400)
        # Objects under other keys and modes are unaffected.
        assert read(s3, "default-key") == data[:5000]
        assert read(s3, "kms-to-s3") == data
    elif phase == "enabled":
        assert read(s3, "by-id") == data
        assert read(s3, "after-rotation") == data[:4000]
        assert read(s3, "multi", Range="bytes=0-99") == body(5 * MIB, 2)[:100]
    else:
        raise SystemExit(f"unknown phase {phase}")
    print("ok")


if __name__ == "__main__":
    main()
