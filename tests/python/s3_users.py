"""Users and bucket ownership through boto3: two users created with `cairn admin`, each owning
its own bucket; neither can read, list, write or delete in the other's bucket (AccessDenied);
unsigned requests are refused.

Usage: s3_users.py ENDPOINT ALICE_KEY ALICE_SECRET BOB_KEY BOB_SECRET"""
import sys
import urllib.error
import urllib.request

from botocore.exceptions import ClientError

from s3client import client

endpoint, alice_key, alice_secret, bob_key, bob_secret = sys.argv[1:6]
alice = client(endpoint, alice_key, alice_secret)
bob = client(endpoint, bob_key, bob_secret)


def expect_error(call, code, status):
    try:
        call()
    except ClientError as error:
        got = (error.response["Error"]["Code"], error.response["ResponseMetadata"]["HTTPStatusCode"])
        assert got == (code, status), f"expected {(code, status)}, got {got}"
        return
    raise AssertionError(f"expected {code}, the call succeeded")


alice.create_bucket(Bucket="py-alice")
alice.put_object(Bucket="py-alice", Key="private.txt", Body=b"alice's data")
bob.create_bucket(Bucket="py-bob")

names = [bucket["Name"] for bucket in alice.list_buckets()["Buckets"]]
assert "py-alice" in names and "py-bob" not in names, names
owner = alice.list_buckets()["Owner"]
assert owner["ID"] == "alice", owner
names = [bucket["Name"] for bucket in bob.list_buckets()["Buckets"]]
assert "py-bob" in names and "py-alice" not in names, names

expect_error(lambda: bob.get_object(Bucket="py-alice", Key="private.txt"), "AccessDenied", 403)
expect_error(lambda: bob.list_objects_v2(Bucket="py-alice"), "AccessDenied", 403)
expect_error(lambda: bob.put_object(Bucket="py-alice", Key="intruder", Body=b"x"), "AccessDenied", 403)
expect_error(lambda: bob.delete_object(Bucket="py-alice", Key="private.txt"), "AccessDenied", 403)
expect_error(lambda: bob.delete_bucket(Bucket="py-alice"), "AccessDenied", 403)
expect_error(lambda: bob.head_bucket(Bucket="py-alice"), "403", 403)
expect_error(
    lambda: bob.copy_object(Bucket="py-bob", Key="stolen", CopySource={"Bucket": "py-alice", "Key": "private.txt"}),
    "AccessDenied",
    403,
)
# Creating a bucket that exists under another owner is BucketAlreadyExists.
expect_error(lambda: bob.create_bucket(Bucket="py-alice"), "BucketAlreadyExists", 409)



def unsigned_get(path):
    try:
        with urllib.request.urlopen(f"{endpoint}{path}") as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


# Unsigned requests are anonymous: refused without a policy or ACL allowing them.
status, body = unsigned_get("/py-alice/private.txt")
assert status == 403 and b"<Code>AccessDenied</Code>" in body, (status, body)
# The admin API answers nobody but root.
status, body = unsigned_get("/_cairn/admin/v1/access-keys")
assert status == 403 and b"<Code>AccessDenied</Code>" in body, (status, body)

assert alice.get_object(Bucket="py-alice", Key="private.txt")["Body"].read() == b"alice's data"
alice.delete_object(Bucket="py-alice", Key="private.txt")
alice.delete_bucket(Bucket="py-alice")
bob.delete_bucket(Bucket="py-bob")
print("ok")
