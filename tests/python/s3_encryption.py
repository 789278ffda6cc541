"""Server-side encryption through boto3 against `cairn dev` (default SSE-S3 on):
usage: s3_encryption.py ENDPOINT ACCESS_KEY SECRET_KEY

SSE-S3 by default and on request (response headers, plaintext ETag and sizes), ranges across
64 KiB chunk boundaries and part boundaries, multipart, CopyObject and UploadPartCopy from
encrypted sources, and SSE-C (right key, missing key, wrong key, copies between modes). Every
object body carries MARKER so the caller can scan the storage nodes' files for plaintext."""
import hashlib
import os
import sys

from botocore.exceptions import ClientError

sys.path.insert(0, os.path.dirname(__file__))
from s3client import client  # noqa: E402

MARKER = b"CAIRN-PLAINTEXT-MARKER-7f3a"
MIB = 1024 * 1024


def body(length, seed):
    line = MARKER + b"-%d-" % seed
    return (line * (length // len(line) + 1))[:length]


def expect_error(call, code, status):
    try:
        call()
    except ClientError as error:
        got = (error.response["Error"]["Code"], error.response["ResponseMetadata"]["HTTPStatusCode"])
        assert got == (code, status), f"expected {(code, status)}, got {got}"
        return
    raise AssertionError(f"expected {code}")


def read(s3, bucket, key, **kwargs):
    return s3.get_object(Bucket=bucket, Key=key, **kwargs)["Body"].read()


def sse_s3(s3, bucket):
    data = body(300_000, 1)
    put = s3.put_object(Bucket=bucket, Key="plain-default", Body=data)
    assert put["ServerSideEncryption"] == "AES256", put
    assert put["ETag"] == '"%s"' % hashlib.md5(data).hexdigest()
    head = s3.head_object(Bucket=bucket, Key="plain-default")
    assert head["ContentLength"] == len(data)
    assert head["ServerSideEncryption"] == "AES256"
    assert head["ETag"] == put["ETag"]
    got = s3.get_object(Bucket=bucket, Key="plain-default")
    assert got["ServerSideEncryption"] == "AES256"
    assert got["Body"].read() == data
    for first, last in [(0, 0), (65530, 65545), (65536, 131071), (100_000, 200_000),
                        (299_990, 299_999), (131071, 131072)]:
        part = read(s3, bucket, "plain-default", Range=f"bytes={first}-{last}")
        assert part == data[first:last + 1], (first, last)
    assert read(s3, bucket, "plain-default", Range="bytes=-100") == data[-100:]
    # Asking for it explicitly is the same.
    put = s3.put_object(Bucket=bucket, Key="asked", Body=data[:1000], ServerSideEncryption="AES256")
    assert put["ServerSideEncryption"] == "AES256"
    assert read(s3, bucket, "asked") == data[:1000]
    # Empty objects too.
    s3.put_object(Bucket=bucket, Key="empty", Body=b"")
    assert read(s3, bucket, "empty") == b""
    sizes = {item["Key"]: item["Size"] for item in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert sizes["plain-default"] == len(data) and sizes["asked"] == 1000 and sizes["empty"] == 0
    expect_error(lambda: s3.put_object(Bucket=bucket, Key="bad", Body=b"x",
                                       ServerSideEncryption="AES128"), "InvalidArgument", 400)
    return data


def multipart(s3, bucket):
    parts = [body(5 * MIB, 2), body(5 * MIB + 7, 3), body(100_003, 4)]
    upload = s3.create_multipart_upload(Bucket=bucket, Key="multi")
    assert upload["ServerSideEncryption"] == "AES256"
    etags = []
    for number, data in enumerate(parts, start=1):
        answer = s3.upload_part(Bucket=bucket, Key="multi", UploadId=upload["UploadId"],
                                PartNumber=number, Body=data)
        assert answer["ServerSideEncryption"] == "AES256"
        assert answer["ETag"] == '"%s"' % hashlib.md5(data).hexdigest()
        etags.append(answer["ETag"])
    # Part 2 again (same part number, same data key, new nonces).
    answer = s3.upload_part(Bucket=bucket, Key="multi", UploadId=upload["UploadId"],
                            PartNumber=2, Body=parts[1])
    etags[1] = answer["ETag"]
    done = s3.complete_multipart_upload(
        Bucket=bucket, Key="multi", UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": n + 1, "ETag": e} for n, e in enumerate(etags)]})
    assert done["ServerSideEncryption"] == "AES256"
    whole = b"".join(parts)
    assert read(s3, bucket, "multi") == whole
    assert s3.head_object(Bucket=bucket, Key="multi")["ContentLength"] == len(whole)
    boundary = 5 * MIB
    for first, last in [(boundary - 10, boundary + 10), (boundary - 70_000, boundary + 70_000),
                        (2 * boundary, len(whole) - 1)]:
        assert read(s3, bucket, "multi", Range=f"bytes={first}-{last}") == whole[first:last + 1]
    assert read(s3, bucket, "multi", PartNumber=2) == parts[1]
    assert read(s3, bucket, "multi", PartNumber=3) == parts[2]
    return whole


def copies(s3, bucket, small, whole):
    answer = s3.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "plain-default"})
    assert answer["ServerSideEncryption"] == "AES256"
    assert read(s3, bucket, "copy") == small
    upload = s3.create_multipart_upload(Bucket=bucket, Key="part-copy")
    first = s3.upload_part_copy(Bucket=bucket, Key="part-copy", UploadId=upload["UploadId"], PartNumber=1,
                                CopySource={"Bucket": bucket, "Key": "multi"},
                                CopySourceRange=f"bytes=1000-{5 * MIB + 999}")
    second = s3.upload_part_copy(Bucket=bucket, Key="part-copy", UploadId=upload["UploadId"], PartNumber=2,
                                 CopySource={"Bucket": bucket, "Key": "plain-default"},
                                 CopySourceRange="bytes=65000-140000")
    s3.complete_multipart_upload(
        Bucket=bucket, Key="part-copy", UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [
            {"PartNumber": 1, "ETag": first["CopyPartResult"]["ETag"]},
            {"PartNumber": 2, "ETag": second["CopyPartResult"]["ETag"]}]})
    assert read(s3, bucket, "part-copy") == whole[1000:5 * MIB + 1000] + small[65000:140001]


def sse_c(s3, bucket, small):
    key = os.urandom(32)
    wrong = os.urandom(32)
    customer = {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": key}
    put = s3.put_object(Bucket=bucket, Key="customer", Body=small, **customer)
    assert put["SSECustomerAlgorithm"] == "AES256"
    assert "ServerSideEncryption" not in put
    got = s3.get_object(Bucket=bucket, Key="customer", **customer)
    assert got["SSECustomerAlgorithm"] == "AES256"
    assert got["Body"].read() == small
    assert read(s3, bucket, "customer", Range="bytes=65000-70000", **customer) == small[65000:70001]
    assert s3.head_object(Bucket=bucket, Key="customer", **customer)["ContentLength"] == len(small)
    expect_error(lambda: s3.get_object(Bucket=bucket, Key="customer"), "InvalidRequest", 400)
    expect_error(lambda: s3.get_object(Bucket=bucket, Key="customer", SSECustomerAlgorithm="AES256",
                                       SSECustomerKey=wrong), "AccessDenied", 403)
    # SSE-C headers on an object that is not SSE-C.
    expect_error(lambda: s3.get_object(Bucket=bucket, Key="plain-default", **customer), "InvalidRequest", 400)
    # Copies: SSE-C source to SSE-S3, SSE-S3 source to SSE-C.
    s3.copy_object(Bucket=bucket, Key="from-customer", CopySource={"Bucket": bucket, "Key": "customer"},
                   CopySourceSSECustomerAlgorithm="AES256", CopySourceSSECustomerKey=key)
    assert read(s3, bucket, "from-customer") == small
    expect_error(lambda: s3.copy_object(Bucket=bucket, Key="x", CopySource={"Bucket": bucket, "Key": "customer"}),
                 "InvalidRequest", 400)
    s3.copy_object(Bucket=bucket, Key="to-customer", CopySource={"Bucket": bucket, "Key": "plain-default"},
                   **customer)
    assert read(s3, bucket, "to-customer", **customer) == small
    # Multipart with SSE-C: every part carries the key.
    upload = s3.create_multipart_upload(Bucket=bucket, Key="customer-multi", **customer)
    parts = [body(5 * MIB, 5), body(70_000, 6)]
    etags = [s3.upload_part(Bucket=bucket, Key="customer-multi", UploadId=upload["UploadId"],
                            PartNumber=n + 1, Body=data, **customer)["ETag"] for n, data in enumerate(parts)]
    expect_error(lambda: s3.upload_part(Bucket=bucket, Key="customer-multi", UploadId=upload["UploadId"],
                                        PartNumber=3, Body=b"x"), "InvalidRequest", 400)
    s3.complete_multipart_upload(
        Bucket=bucket, Key="customer-multi", UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": n + 1, "ETag": e} for n, e in enumerate(etags)]})
    assert read(s3, bucket, "customer-multi", **customer) == b"".join(parts)
    expect_error(lambda: s3.get_object(Bucket=bucket, Key="customer-multi", SSECustomerAlgorithm="AES256",
                                       SSECustomerKey=wrong), "AccessDenied", 403)


def main():
    endpoint, access_key, secret_key = sys.argv[1:4]
    s3 = client(endpoint, access_key, secret_key)
    bucket = "boto3-sse"
    s3.create_bucket(Bucket=bucket)
    small = sse_s3(s3, bucket)
    whole = multipart(s3, bucket)
    copies(s3, bucket, small, whole)
    sse_c(s3, bucket, small)
    print("ok")


if __name__ == "__main__":
    main()
