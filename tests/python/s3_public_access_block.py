"""Block Public Access through boto3: Put/Get/DeletePublicAccessBlock and each of its four
settings against canned ACLs and bucket policies, with anonymous requests as the public.

Usage: s3_public_access_block.py ENDPOINT ALICE_KEY ALICE_SECRET BOB_KEY BOB_SECRET"""
import json
import sys
import urllib.error
import urllib.request

from s3client import client, failure

endpoint, alice_key, alice_secret, bob_key, bob_secret = sys.argv[1:6]
alice = client(endpoint, alice_key, alice_secret, retries={"total_max_attempts": 1})
bob = client(endpoint, bob_key, bob_secret, retries={"total_max_attempts": 1})
bucket = "py-public-access-block"


def anonymous_get(path):
    try:
        with urllib.request.urlopen(f"{endpoint}{path}") as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def settings(acls=False, ignore=False, policy=False, restrict=False):
    return {"BlockPublicAcls": acls, "IgnorePublicAcls": ignore,
            "BlockPublicPolicy": policy, "RestrictPublicBuckets": restrict}


public_policy = json.dumps({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                                           "Resource": f"arn:aws:s3:::{bucket}/*"}]})
alice.create_bucket(Bucket=bucket)
alice.put_object(Bucket=bucket, Key="acl-public", Body=b"a", ACL="public-read")
assert anonymous_get(f"/{bucket}/acl-public") == 200
assert failure(lambda: alice.get_public_access_block(Bucket=bucket)) == ("NoSuchPublicAccessBlockConfiguration", 404)
assert failure(lambda: bob.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=settings(True))) == ("AccessDenied", 403)

# IgnorePublicAcls voids existing public ACLs.
alice.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=settings(ignore=True))
assert alice.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"] == settings(ignore=True)
assert anonymous_get(f"/{bucket}/acl-public") == 403

# BlockPublicAcls refuses setting public ACLs (private stays allowed).
alice.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=settings(acls=True))
assert anonymous_get(f"/{bucket}/acl-public") == 200, "the existing ACL applies again"
assert failure(lambda: alice.put_object(Bucket=bucket, Key="new", Body=b"n", ACL="public-read")) == ("AccessDenied", 403)
assert failure(lambda: alice.put_object_acl(Bucket=bucket, Key="acl-public", ACL="public-read-write")) == ("AccessDenied", 403)
assert failure(lambda: alice.put_bucket_acl(Bucket=bucket, ACL="authenticated-read")) == ("AccessDenied", 403)
alice.put_object(Bucket=bucket, Key="new", Body=b"n", ACL="private")

# BlockPublicPolicy refuses a public policy; a non-public one is fine.
alice.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=settings(policy=True))
assert failure(lambda: alice.put_bucket_policy(Bucket=bucket, Policy=public_policy)) == ("AccessDenied", 403)
bob_policy = json.dumps({"Statement": [{"Effect": "Allow", "Principal": {"AWS": "bob"}, "Action": "s3:GetObject",
                                        "Resource": f"arn:aws:s3:::{bucket}/*"}]})
alice.put_bucket_policy(Bucket=bucket, Policy=bob_policy)

# RestrictPublicBuckets: a public policy in place grants nothing beyond the owner.
alice.delete_public_access_block(Bucket=bucket)
assert failure(lambda: alice.get_public_access_block(Bucket=bucket)) == ("NoSuchPublicAccessBlockConfiguration", 404)
alice.put_bucket_policy(Bucket=bucket, Policy=public_policy)
assert anonymous_get(f"/{bucket}/new") == 200
alice.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=settings(restrict=True))
assert anonymous_get(f"/{bucket}/new") == 403
assert failure(lambda: bob.get_object(Bucket=bucket, Key="new")) == ("AccessDenied", 403)
assert alice.get_object(Bucket=bucket, Key="new")["Body"].read() == b"n"

alice.delete_public_access_block(Bucket=bucket)
alice.delete_bucket_policy(Bucket=bucket)
for key in ["acl-public", "new"]:
    alice.delete_object(Bucket=bucket, Key=key)
alice.delete_bucket(Bucket=bucket)
print("public access block: ok")
