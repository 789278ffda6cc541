//! Canned ACLs: the `x-amz-acl` header of CreateBucket, PutObject, CreateMultipartUpload,
//! CopyObject, PutBucketAcl and PutObjectAcl, the grants each one stands for, and the
//! `AccessControlPolicy` document of GetBucketAcl / GetObjectAcl.
//!
//! Model: Cairn keeps an ACL as one canned name. What each grants, beyond the owner's full
//! control (S3's table): `public-read` READ to everyone (listing a bucket, reading an object),
//! `public-read-write` READ and WRITE to everyone (WRITE on a bucket: creating and deleting its
//! objects), `authenticated-read` READ to every signed-in user, `bucket-owner-read` and
//! `bucket-owner-full-control` (objects) READ or FULL_CONTROL to the bucket's owner.

use crate::S3Error;
use crate::xml::XmlWriter;

pub const ALL_USERS_URI: &str = "http://acs.amazonaws.com/groups/global/AllUsers";
pub const AUTHENTICATED_USERS_URI: &str =
    "http://acs.amazonaws.com/groups/global/AuthenticatedUsers";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CannedAcl {
    Private,
    PublicRead,
    PublicReadWrite,
    AuthenticatedRead,
    BucketOwnerRead,
    BucketOwnerFullControl,
}

/// Who may do what under an ACL (besides the resource's owner).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AclPermission {
    Read,
    Write,
}

impl CannedAcl {
    pub fn parse(value: &str) -> Result<CannedAcl, S3Error> {
        Ok(match value.trim() {
            "private" => CannedAcl::Private,
            "public-read" => CannedAcl::PublicRead,
            "public-read-write" => CannedAcl::PublicReadWrite,
            "authenticated-read" => CannedAcl::AuthenticatedRead,
            "bucket-owner-read" => CannedAcl::BucketOwnerRead,
            "bucket-owner-full-control" => CannedAcl::BucketOwnerFullControl,
            _ => {
                return Err(S3Error::InvalidArgument(format!(
                    "Invalid canned ACL: {value}"
                )));
            }
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            CannedAcl::Private => "private",
            CannedAcl::PublicRead => "public-read",
            CannedAcl::PublicReadWrite => "public-read-write",
            CannedAcl::AuthenticatedRead => "authenticated-read",
            CannedAcl::BucketOwnerRead => "bucket-owner-read",
            CannedAcl::BucketOwnerFullControl => "bucket-owner-full-control",
        }
    }

    /// Whether the ACL grants anyone (anonymous included) access: S3's "public".
    pub fn is_public(self) -> bool {
        matches!(self, CannedAcl::PublicRead | CannedAcl::PublicReadWrite)
    }

    /// Whether a caller that is not the owner is granted `permission`. `signed_in`: the caller
    /// signed the request; `is_bucket_owner`: the caller owns the bucket holding the resource.
    pub fn grants(self, permission: AclPermission, signed_in: bool, is_bucket_owner: bool) -> bool {
        match (self, permission) {
            (CannedAcl::PublicReadWrite, _) => true,
            (CannedAcl::PublicRead, AclPermission::Read) => true,
            (CannedAcl::AuthenticatedRead, AclPermission::Read) => signed_in,
            (CannedAcl::BucketOwnerRead, AclPermission::Read) => is_bucket_owner,
            (CannedAcl::BucketOwnerFullControl, _) => is_bucket_owner,
            _ => false,
        }
    }
}

fn write_grant(writer: &mut XmlWriter, grantee: Result<&str, &str>, permission: &str) {
    writer.open("Grant");
    match grantee {
        Ok(user) => {
            writer.open_with_attributes(
                "Grantee",
                &[
                    ("xmlns:xsi", "http://www.w3.org/2001/XMLSchema-instance"),
                    ("xsi:type", "CanonicalUser"),
                ],
            );
            writer.text_element("ID", user);
            writer.text_element("DisplayName", user);
        }
        Err(group_uri) => {
            writer.open_with_attributes(
                "Grantee",
                &[
                    ("xmlns:xsi", "http://www.w3.org/2001/XMLSchema-instance"),
                    ("xsi:type", "Group"),
                ],
            );
            writer.text_element("URI", group_uri);
        }
    }
    writer.close("Grantee");
    writer.text_element("Permission", permission);
    writer.close("Grant");
}

/// GetBucketAcl / GetObjectAcl: the owner's FULL_CONTROL plus what the canned ACL grants.
pub fn access_control_policy_xml(owner: &str, bucket_owner: &str, acl: CannedAcl) -> String {
    let mut writer = XmlWriter::new();
    writer.open_root("AccessControlPolicy");
    writer.open("Owner");
    writer.text_element("ID", owner);
    writer.text_element("DisplayName", owner);
    writer.close("Owner");
    writer.open("AccessControlList");
    write_grant(&mut writer, Ok(owner), "FULL_CONTROL");
    match acl {
        CannedAcl::Private => {}
        CannedAcl::PublicRead => write_grant(&mut writer, Err(ALL_USERS_URI), "READ"),
        CannedAcl::PublicReadWrite => {
            write_grant(&mut writer, Err(ALL_USERS_URI), "READ");
            write_grant(&mut writer, Err(ALL_USERS_URI), "WRITE");
        }
        CannedAcl::AuthenticatedRead => {
            write_grant(&mut writer, Err(AUTHENTICATED_USERS_URI), "READ")
        }
        CannedAcl::BucketOwnerRead if bucket_owner != owner => {
            write_grant(&mut writer, Ok(bucket_owner), "READ")
        }
        CannedAcl::BucketOwnerFullControl if bucket_owner != owner => {
            write_grant(&mut writer, Ok(bucket_owner), "FULL_CONTROL")
        }
        CannedAcl::BucketOwnerRead | CannedAcl::BucketOwnerFullControl => {}
    }
    writer.close("AccessControlList");
    writer.close("AccessControlPolicy");
    writer.finish()
}

/// A bucket's Block Public Access settings (PutPublicAccessBlock).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PublicAccessBlock {
    /// Refuse requests that set a public ACL.
    pub block_public_acls: bool,
    /// Authorise as if public ACLs granted nothing.
    pub ignore_public_acls: bool,
    /// Refuse PutBucketPolicy of a public policy.
    pub block_public_policy: bool,
    /// With a public policy in place, only the owner has access.
    pub restrict_public_buckets: bool,
}

impl PublicAccessBlock {
    /// The `PublicAccessBlockConfiguration` document; absent elements are false, values other
    /// than true/false are `MalformedXML`.
    pub fn parse(body: &[u8]) -> Result<PublicAccessBlock, S3Error> {
        let root = crate::xml::parse_document(body, 64 * 1024)?;
        if root.name != "PublicAccessBlockConfiguration" {
            return Err(S3Error::MalformedXml);
        }
        let flag = |name: &str| match root.child_text(name).map(str::trim) {
            None => Ok(false),
            Some(text) if text.eq_ignore_ascii_case("true") => Ok(true),
            Some(text) if text.eq_ignore_ascii_case("false") => Ok(false),
            Some(_) => Err(S3Error::MalformedXml),
        };
        Ok(PublicAccessBlock {
            block_public_acls: flag("BlockPublicAcls")?,
            ignore_public_acls: flag("IgnorePublicAcls")?,
            block_public_policy: flag("BlockPublicPolicy")?,
            restrict_public_buckets: flag("RestrictPublicBuckets")?,
        })
    }

    pub fn to_xml(self) -> String {
        let mut writer = XmlWriter::new();
        writer.open_root("PublicAccessBlockConfiguration");
        writer.bool_element("BlockPublicAcls", self.block_public_acls);
        writer.bool_element("IgnorePublicAcls", self.ignore_public_acls);
        writer.bool_element("BlockPublicPolicy", self.block_public_policy);
        writer.bool_element("RestrictPublicBuckets", self.restrict_public_buckets);
        writer.close("PublicAccessBlockConfiguration");
        writer.finish()
    }

    /// Stored form: four `0`/`1` bytes in the order of the document.
    pub fn encode(self) -> Vec<u8> {
        [
            self.block_public_acls,
            self.ignore_public_acls,
            self.block_public_policy,
            self.restrict_public_buckets,
        ]
        .iter()
        .map(|flag| if *flag { b'1' } else { b'0' })
        .collect()
    }

    pub fn decode(stored: &[u8]) -> Option<PublicAccessBlock> {
        let flags: Vec<bool> = stored
            .iter()
            .map(|byte| match byte {
                b'1' => Some(true),
                b'0' => Some(false),
                _ => None,
            })
            .collect::<Option<_>>()?;
        let [
            block_public_acls,
            ignore_public_acls,
            block_public_policy,
            restrict_public_buckets,
        ] = flags[..]
        else {
            return None;
        };
        Some(PublicAccessBlock {
            block_public_acls,
            ignore_public_acls,
            block_public_policy,
            restrict_public_buckets,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canned_names_round_trip_and_unknown_ones_are_refused() {
        for name in [
            "private",
            "public-read",
            "public-read-write",
            "authenticated-read",
            "bucket-owner-read",
            "bucket-owner-full-control",
        ] {
            assert_eq!(CannedAcl::parse(name).unwrap().name(), name);
        }
        assert!(matches!(
            CannedAcl::parse("public"),
            Err(S3Error::InvalidArgument(_))
        ));
    }

    #[test]
    fn grants_follow_s3s_table() {
        use AclPermission::{Read, Write};
        assert!(!CannedAcl::Private.grants(Read, true, true));
        assert!(CannedAcl::PublicRead.grants(Read, false, false));
        assert!(!CannedAcl::PublicRead.grants(Write, true, false));
        assert!(CannedAcl::PublicReadWrite.grants(Write, false, false));
        assert!(CannedAcl::AuthenticatedRead.grants(Read, true, false));
        assert!(!CannedAcl::AuthenticatedRead.grants(Read, false, false));
        assert!(CannedAcl::BucketOwnerRead.grants(Read, true, true));
        assert!(!CannedAcl::BucketOwnerRead.grants(Read, true, false));
        assert!(CannedAcl::BucketOwnerFullControl.grants(Write, true, true));
        assert!(CannedAcl::PublicRead.is_public() && !CannedAcl::AuthenticatedRead.is_public());
    }

    #[test]
    fn public_access_block_parses_renders_and_stores() {
        let parsed = PublicAccessBlock::parse(
            b"<PublicAccessBlockConfiguration><BlockPublicAcls>true</BlockPublicAcls><RestrictPublicBuckets>TRUE</RestrictPublicBuckets></PublicAccessBlockConfiguration>",
        )
        .unwrap();
        assert_eq!(
            parsed,
            PublicAccessBlock {
                block_public_acls: true,
                ignore_public_acls: false,
                block_public_policy: false,
                restrict_public_buckets: true
            }
        );
        assert_eq!(PublicAccessBlock::decode(&parsed.encode()), Some(parsed));
        assert_eq!(
            PublicAccessBlock::parse(parsed.to_xml().as_bytes()),
            Ok(parsed)
        );
        assert_eq!(PublicAccessBlock::decode(b"10"), None);
        for bad in [
            &b"<Other/>"[..],
            b"<PublicAccessBlockConfiguration><BlockPublicAcls>yes</BlockPublicAcls></PublicAccessBlockConfiguration>",
            b"",
        ] {
            assert_eq!(PublicAccessBlock::parse(bad), Err(S3Error::MalformedXml));
        }
    }

    #[test]
    fn access_control_policy_lists_the_grants() {
        let xml = access_control_policy_xml("alice", "alice", CannedAcl::PublicRead);
        assert!(xml.contains("<Owner><ID>alice</ID><DisplayName>alice</DisplayName></Owner>"));
        assert!(xml.contains("<Permission>FULL_CONTROL</Permission>"));
        assert!(xml.contains(&format!("<URI>{ALL_USERS_URI}</URI>")));
        assert!(xml.contains("xsi:type=\"Group\""));
        let private = access_control_policy_xml("alice", "alice", CannedAcl::Private);
        assert_eq!(private.matches("<Grant>").count(), 1);
        let shared = access_control_policy_xml("bob", "alice", CannedAcl::BucketOwnerFullControl);
        assert_eq!(
            shared
                .matches("<Permission>FULL_CONTROL</Permission>")
                .count(),
            2
        );
    }
}
