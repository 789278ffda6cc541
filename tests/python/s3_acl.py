"""Canned ACLs through boto3: bucket ACLs (CreateBucket ACL=, Get/PutBucketAcl) open listing
(READ) or writing (WRITE) to anonymous callers; object ACLs (PutObject ACL=, Get/PutObjectAcl)
open reading one object to everyone or to signed-in users (explicit grants: s3_acl_grants.py).

Usage: s3_acl.py ENDPOINT ALICE_KEY ALICE_SECRET BOB_KEY BOB_SECRET"""
import functools
import sys

from s3client import client, failure, anonymous as _anonymous

endpoint, alice_key, alice_secret, bob_key, bob_secret = sys.argv[1:6]
anonymous = functools.partial(_anonymous, endpoint)
alice = client(endpoint, alice_key, alice_secret, retries={"total_max_attempts": 1})
bob = client(endpoint, bob_key, bob_secret, retries={"total_max_attempts": 1})
bucket = "py-acl"
ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
AUTHENTICATED = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"


def grants(answer):
    return sorted(
        (grant["Grantee"].get("URI") or grant["Grantee"].get("ID"), grant["Permission"])
        for grant in answer["Grants"]
    )


alice.create_bucket(Bucket=bucket, ACL="public-read")
answer = alice.get_bucket_acl(Bucket=bucket)
assert answer["Owner"]["ID"] == "alice", answer
assert grants(answer) == sorted([("alice", "FULL_CONTROL"), (ALL_USERS, "READ")]), answer
alice.put_object(Bucket=bucket, Key="private.txt", Body=b"private")
alice.put_object(Bucket=bucket, Key="open.txt", Body=b"open", ACL="public-read")

# Bucket READ: anyone lists; object reads follow each object's own ACL.
status, body = anonymous("GET", f"/{bucket}?list-type=2")
assert status == 200 and b"<Key>open.txt</Key>" in body, (status, body)
assert anonymous("GET", f"/{bucket}/open.txt") == (200, b"open")
assert anonymous("GET", f"/{bucket}/private.txt")[0] == 403
assert anonymous("PUT", f"/{bucket}/new.txt", b"x")[0] == 403, "READ is not WRITE"
assert grants(alice.get_object_acl(Bucket=bucket, Key="open.txt")) == sorted([("alice", "FULL_CONTROL"), (ALL_USERS, "READ")])
assert grants(alice.get_object_acl(Bucket=bucket, Key="private.txt")) == [("alice", "FULL_CONTROL")]

# PutObjectAcl: authenticated-read lets bob (signed in) read, not anonymous callers.
alice.put_object_acl(Bucket=bucket, Key="private.txt", ACL="authenticated-read")
assert grants(alice.get_object_acl(Bucket=bucket, Key="private.txt")) == sorted([("alice", "FULL_CONTROL"), (AUTHENTICATED, "READ")])
assert bob.get_object(Bucket=bucket, Key="private.txt")["Body"].read() == b"private"
assert anonymous("GET", f"/{bucket}/private.txt")[0] == 403
alice.put_object_acl(Bucket=bucket, Key="open.txt", ACL="private")
assert anonymous("GET", f"/{bucket}/open.txt")[0] == 403
assert failure(lambda: bob.get_object(Bucket=bucket, Key="open.txt")) == ("AccessDenied", 403)

# Only the owner reads and changes ACLs; bad names and canned ACLs mixed with grants are refused.
assert failure(lambda: bob.get_bucket_acl(Bucket=bucket)) == ("AccessDenied", 403)
assert failure(lambda: bob.put_bucket_acl(Bucket=bucket, ACL="public-read-write")) == ("AccessDenied", 403)
assert failure(lambda: bob.put_object_acl(Bucket=bucket, Key="open.txt", ACL="public-read")) == ("AccessDenied", 403)
assert failure(lambda: alice.put_object(Bucket=bucket, Key="bad", Body=b"x", ACL="world-readable"))[1] == 400
assert failure(lambda: alice.head_object(Bucket=bucket, Key="bad"))[1] == 404
assert failure(lambda: alice.put_bucket_acl(Bucket=bucket, ACL="private", GrantRead="uri=" + ALL_USERS)) == ("InvalidRequest", 400)
assert failure(lambda: alice.get_object_acl(Bucket=bucket, Key="absent")) == ("NoSuchKey", 404)

# Bucket WRITE: anonymous callers create and delete objects under public-read-write.
alice.put_bucket_acl(Bucket=bucket, ACL="public-read-write")
assert anonymous("PUT", f"/{bucket}/dropbox.txt", b"dropped")[0] == 200
assert alice.get_object(Bucket=bucket, Key="dropbox.txt")["Body"].read() == b"dropped"
assert anonymous("DELETE", f"/{bucket}/dropbox.txt")[0] == 204
assert anonymous("PUT", f"/{bucket}?acl")[0] == 403, "WRITE on objects is not WRITE_ACP"

# Back to private: nothing anonymous any more.
alice.put_bucket_acl(Bucket=bucket, ACL="private")
assert grants(alice.get_bucket_acl(Bucket=bucket)) == [("alice", "FULL_CONTROL")]
assert anonymous("GET", f"/{bucket}?list-type=2")[0] == 403
assert failure(lambda: bob.list_objects_v2(Bucket=bucket)) == ("AccessDenied", 403)
for key in ["private.txt", "open.txt"]:
    alice.delete_object(Bucket=bucket, Key=key)
alice.delete_bucket(Bucket=bucket)
print("acl: ok")
