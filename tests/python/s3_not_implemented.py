"""boto3 against a running Cairn: operations Cairn does not implement yet answer
501 NotImplemented with the S3 error document, and change nothing.

Usage: s3_not_implemented.py ENDPOINT ACCESS_KEY SECRET_KEY.
"""
import sys

from botocore.exceptions import ClientError

import s3client

endpoint, access_key, secret_key = sys.argv[1:4]
s3 = s3client.client(endpoint, access_key, secret_key, retries={"total_max_attempts": 1})

bucket = "not-implemented"
s3.create_bucket(Bucket=bucket)
s3.put_object(Bucket=bucket, Key="k", Body=b"x")
calls = {
    "GetBucketWebsite": lambda: s3.get_bucket_website(Bucket=bucket),
    "GetBucketNotificationConfiguration": lambda: s3.get_bucket_notification_configuration(
        Bucket=bucket
    ),
    "GetBucketLogging": lambda: s3.get_bucket_logging(Bucket=bucket),
    # Bucket default encryption is implemented for SSE-S3 and SSE-KMS, not dual-layer SSE-KMS.
    "PutBucketEncryption aws:kms:dsse": lambda: s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms:dsse"}}]
        },
    ),
    "RestoreObject": lambda: s3.restore_object(Bucket=bucket, Key="k", RestoreRequest={"Days": 1}),
}
for name, call in calls.items():
    try:
        call()
    except ClientError as error:
        response = error.response
        assert response["ResponseMetadata"]["HTTPStatusCode"] == 501, (name, response)
        assert response["Error"]["Code"] == "NotImplemented", (name, response)
        assert response["Error"]["Message"], (name, response)
        continue
    raise AssertionError(f"{name} succeeded")
assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"x"
s3.delete_object(Bucket=bucket, Key="k")
s3.delete_bucket(Bucket=bucket)
print("not implemented: ok")
