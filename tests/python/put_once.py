"""One PUT without client retries, for tests that expect a refusal (tests/tests/az_failure.rs).

Usage: put_once.py ENDPOINT ACCESS SECRET BUCKET KEY SIZE
Prints one JSON line: {"status": 200|503|..., "code": "...", "message": "...", "seconds": float}.
"""
import json
import sys
import time

from botocore.exceptions import ClientError

import s3client

endpoint, access_key, secret_key, bucket, key, size = sys.argv[1:7]
s3 = s3client.client(
    endpoint,
    access_key,
    secret_key,
    retries={"total_max_attempts": 1},
    connect_timeout=5,
    read_timeout=120,
)
started = time.monotonic()
try:
    s3.put_object(Bucket=bucket, Key=key, Body=b"z" * int(size))
    outcome = {"status": 200, "code": "", "message": ""}
except ClientError as error:
    outcome = {
        "status": error.response["ResponseMetadata"]["HTTPStatusCode"],
        "code": error.response["Error"].get("Code", ""),
        "message": error.response["Error"].get("Message", ""),
    }
outcome["seconds"] = round(time.monotonic() - started, 3)
print(json.dumps(outcome))
