"""The boto3 client every test script uses: path-style addressing, SigV4 everywhere (boto3 would
presign with SigV2, which Cairn refuses), region us-east-1; `retries` and further botocore
`Config` settings vary per script."""
import boto3
from botocore.config import Config


def client(endpoint, access_key, secret_key, retries=None, **config):
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name="us-east-1",
        config=Config(
            s3={"addressing_style": "path"},
            signature_version="s3v4",
            retries=retries or {"max_attempts": 2},
            **config,
        ),
    )
