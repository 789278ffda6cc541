"""Bucket policies through boto3: alice's bucket policy lets anyone read `public/*`, lets bob
list the bucket and read everything, denies every delete (the owner included); anonymous and
bob's other requests are refused; policy management stays alice's; malformed policies are
refused with MalformedPolicy; deleting the policy takes every grant away.

Usage: s3_policy.py ENDPOINT ALICE_KEY ALICE_SECRET BOB_KEY BOB_SECRET"""
import functools
import json
import sys

from s3client import client, failure, anonymous as _anonymous

endpoint, alice_key, alice_secret, bob_key, bob_secret = sys.argv[1:6]
anonymous = functools.partial(_anonymous, endpoint)
alice = client(endpoint, alice_key, alice_secret, retries={"total_max_attempts": 1})
bob = client(endpoint, bob_key, bob_secret, retries={"total_max_attempts": 1})
bucket = "py-policy"


alice.create_bucket(Bucket=bucket)
alice.put_object(Bucket=bucket, Key="public/hello.txt", Body=b"hello world")
alice.put_object(Bucket=bucket, Key="private/secret.txt", Body=b"secret")

assert failure(lambda: alice.get_bucket_policy(Bucket=bucket)) == ("NoSuchBucketPolicy", 404)
assert anonymous("GET", f"/{bucket}/public/hello.txt")[0] == 403, "no policy: nothing is public"

policy = {
    "Version": "2012-10-17",
    "Statement": [
        {"Sid": "PublicRead", "Effect": "Allow", "Principal": "*",
         "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/public/*"},
        {"Sid": "BobReads", "Effect": "Allow", "Principal": {"AWS": ["arn:aws:iam::000000000000:user/bob"]},
         "Action": ["s3:ListBucket", "s3:GetObject"],
         "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]},
        {"Sid": "NoDeletes", "Effect": "Deny", "Principal": "*",
         "Action": "s3:DeleteObject", "Resource": f"arn:aws:s3:::{bucket}/*"},
    ],
}
alice.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
assert json.loads(alice.get_bucket_policy(Bucket=bucket)["Policy"]) == policy
assert alice.get_bucket_policy_status(Bucket=bucket)["PolicyStatus"]["IsPublic"] is True

# Anonymous: public/* readable (GET and HEAD), nothing else.
assert anonymous("GET", f"/{bucket}/public/hello.txt") == (200, b"hello world")
assert anonymous("HEAD", f"/{bucket}/public/hello.txt")[0] == 200
status, body = anonymous("GET", f"/{bucket}/private/secret.txt")
assert status == 403 and b"AccessDenied" in body, (status, body)
assert anonymous("GET", f"/{bucket}?list-type=2")[0] == 403
assert anonymous("PUT", f"/{bucket}/public/new.txt", b"x")[0] == 403
assert anonymous("GET", "/")[0] == 403, "ListBuckets needs a user"
assert anonymous("PUT", "/py-anonymous-bucket")[0] == 403, "CreateBucket needs a user"

# Bob: lists and reads everything, cannot write, delete or manage the policy.
keys = [entry["Key"] for entry in bob.list_objects_v2(Bucket=bucket)["Contents"]]
assert keys == ["private/secret.txt", "public/hello.txt"], keys
assert bob.get_object(Bucket=bucket, Key="private/secret.txt")["Body"].read() == b"secret"
assert failure(lambda: bob.put_object(Bucket=bucket, Key="bob.txt", Body=b"b")) == ("AccessDenied", 403)
assert failure(lambda: bob.delete_object(Bucket=bucket, Key="public/hello.txt")) == ("AccessDenied", 403)
assert failure(lambda: bob.get_bucket_policy(Bucket=bucket)) == ("AccessDenied", 403)
assert failure(lambda: bob.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))) == ("AccessDenied", 403)
assert failure(lambda: bob.delete_bucket_policy(Bucket=bucket)) == ("AccessDenied", 403)
# Bob may copy from the bucket into his own (read on the source, write on the target).
bob.create_bucket(Bucket="py-policy-bob")
bob.copy_object(Bucket="py-policy-bob", Key="copy", CopySource={"Bucket": bucket, "Key": "private/secret.txt"})
assert bob.get_object(Bucket="py-policy-bob", Key="copy")["Body"].read() == b"secret"

# The explicit Deny binds the owner too.
assert failure(lambda: alice.delete_object(Bucket=bucket, Key="public/hello.txt")) == ("AccessDenied", 403)

# Malformed policies are refused and leave the stored one.
for bad in [
    "not json",
    json.dumps({"Statement": []}),
    json.dumps({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                               "Resource": "arn:aws:s3:::some-other-bucket/*"}]}),
    json.dumps({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                               "Resource": f"arn:aws:s3:::{bucket}/*",
                               "Condition": {"NoSuchOperator": {"aws:SourceIp": "1.2.3.4"}}}]}),
]:
    assert failure(lambda: alice.put_bucket_policy(Bucket=bucket, Policy=bad)) == ("MalformedPolicy", 400), bad
assert json.loads(alice.get_bucket_policy(Bucket=bucket)["Policy"]) == policy

# A condition: reads allowed only from an address range the test client is not in.
restricted = {"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                             "Resource": f"arn:aws:s3:::{bucket}/*",
                             "Condition": {"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}}]}
alice.put_bucket_policy(Bucket=bucket, Policy=json.dumps(restricted))
assert alice.get_bucket_policy_status(Bucket=bucket)["PolicyStatus"]["IsPublic"] is False
assert anonymous("GET", f"/{bucket}/public/hello.txt")[0] == 403
local = {"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                        "Resource": f"arn:aws:s3:::{bucket}/*",
                        "Condition": {"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}}}]}
alice.put_bucket_policy(Bucket=bucket, Policy=json.dumps(local))
assert anonymous("GET", f"/{bucket}/private/secret.txt") == (200, b"secret")

# DeleteObjects is authorised per key: bob may delete under bobs/ only.
alice.put_object(Bucket=bucket, Key="bobs/scratch", Body=b"s")
per_key = {"Statement": [{"Effect": "Allow", "Principal": {"AWS": "bob"}, "Action": "s3:DeleteObject",
                          "Resource": f"arn:aws:s3:::{bucket}/bobs/*"}]}
alice.put_bucket_policy(Bucket=bucket, Policy=json.dumps(per_key))
answer = bob.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "bobs/scratch"}, {"Key": "public/hello.txt"}]})
assert [entry["Key"] for entry in answer.get("Deleted", [])] == ["bobs/scratch"], answer
assert [(entry["Key"], entry["Code"]) for entry in answer.get("Errors", [])] == [("public/hello.txt", "AccessDenied")], answer
assert alice.get_object(Bucket=bucket, Key="public/hello.txt")["Body"].read() == b"hello world"
assert failure(lambda: alice.head_object(Bucket=bucket, Key="bobs/scratch"))[1] == 404

# Without a policy, only the owner again.
alice.delete_bucket_policy(Bucket=bucket)
assert failure(lambda: alice.get_bucket_policy(Bucket=bucket)) == ("NoSuchBucketPolicy", 404)
assert anonymous("GET", f"/{bucket}/public/hello.txt")[0] == 403
assert failure(lambda: bob.list_objects_v2(Bucket=bucket)) == ("AccessDenied", 403)
alice.delete_object(Bucket=bucket, Key="public/hello.txt")
alice.delete_object(Bucket=bucket, Key="private/secret.txt")
alice.delete_bucket(Bucket=bucket)
bob.delete_object(Bucket="py-policy-bob", Key="copy")
bob.delete_bucket(Bucket="py-policy-bob")
print("policy: ok")
