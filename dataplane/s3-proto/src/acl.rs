//! ACLs: the canned `x-amz-acl` header and the explicit grants of an `AccessControlPolicy` body
//! or the `x-amz-grant-*` headers (CreateBucket, PutObject, CreateMultipartUpload, CopyObject,
//! PutBucketAcl, PutObjectAcl), their stored form, their evaluation, and the
//! `AccessControlPolicy` document of GetBucketAcl / GetObjectAcl.
//!
//! Model: an ACL is either a canned name ([`Acl::Canned`], stored as the name, as before explicit
//! grants existed) or an explicit grant list ([`Acl::Grants`], stored in the versioned text form
//! of [`Acl::encode`]). A canned ACL stands for the grants of S3's table ([`CannedAcl::expand`]):
//! the owner's FULL_CONTROL, plus `public-read` READ to everyone, `public-read-write` READ and
//! WRITE to everyone, `authenticated-read` READ to every signed-in user, `bucket-owner-read` and
//! `bucket-owner-full-control` (objects) READ or FULL_CONTROL to the bucket's owner. An explicit
//! list is kept exactly as given (S3 replaces the whole ACL; the owner's implicit rights are the
//! gateway's business, not a grant).
//!
//! Grantees: a canonical user, whose id in Cairn is the user name (the owner string of the
//! user's access keys, the `Owner/ID` of ListBuckets and of the ACL documents), or one of S3's
//! groups (AllUsers, AuthenticatedUsers, LogDelivery; the last is stored but matches no caller).
//! Grants to an email address are refused with `UnresolvableGrantByEmailAddress`: Cairn's users
//! have no email addresses. Grants to AllUsers and AuthenticatedUsers are "public" for Block
//! Public Access.

use crate::S3Error;
use crate::xml::XmlWriter;

pub const ALL_USERS_URI: &str = "http://acs.amazonaws.com/groups/global/AllUsers";
pub const AUTHENTICATED_USERS_URI: &str =
    "http://acs.amazonaws.com/groups/global/AuthenticatedUsers";
pub const LOG_DELIVERY_URI: &str = "http://acs.amazonaws.com/groups/s3/LogDelivery";
const XSI_NAMESPACE: &str = "http://www.w3.org/2001/XMLSchema-instance";
/// S3's limit on the grants of one ACL.
pub const MAX_GRANTS: usize = 100;
/// The largest `AccessControlPolicy` body accepted.
pub const ACCESS_CONTROL_POLICY_LIMIT_BYTES: usize = 64 * 1024;
/// First line of the stored form of an explicit grant list (format version 1).
const STORED_GRANTS_HEADER: &str = "cairn-acl-grants/1";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CannedAcl {
    Private,
    PublicRead,
    PublicReadWrite,
    AuthenticatedRead,
    BucketOwnerRead,
    BucketOwnerFullControl,
}

/// What a grant allows. FULL_CONTROL covers the other four.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AclPermission {
    Read,
    Write,
    ReadAcp,
    WriteAcp,
    FullControl,
}

impl AclPermission {
    pub fn name(self) -> &'static str {
        match self {
            AclPermission::Read => "READ",
            AclPermission::Write => "WRITE",
            AclPermission::ReadAcp => "READ_ACP",
            AclPermission::WriteAcp => "WRITE_ACP",
            AclPermission::FullControl => "FULL_CONTROL",
        }
    }

    pub fn parse(name: &str) -> Option<AclPermission> {
        Some(match name {
            "READ" => AclPermission::Read,
            "WRITE" => AclPermission::Write,
            "READ_ACP" => AclPermission::ReadAcp,
            "WRITE_ACP" => AclPermission::WriteAcp,
            "FULL_CONTROL" => AclPermission::FullControl,
            _ => return None,
        })
    }

    /// Whether a grant of `self` allows `wanted`.
    pub fn covers(self, wanted: AclPermission) -> bool {
        self == AclPermission::FullControl || self == wanted
    }
}

/// Who a grant is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grantee {
    /// A user, by canonical id (in Cairn, the user name).
    CanonicalUser(String),
    /// One of S3's predefined groups, by URI ([`ALL_USERS_URI`], [`AUTHENTICATED_USERS_URI`],
    /// [`LOG_DELIVERY_URI`]).
    Group(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub grantee: Grantee,
    pub permission: AclPermission,
}

impl Grant {
    fn user(id: &str, permission: AclPermission) -> Grant {
        Grant {
            grantee: Grantee::CanonicalUser(id.to_owned()),
            permission,
        }
    }

    fn group(uri: &str, permission: AclPermission) -> Grant {
        Grant {
            grantee: Grantee::Group(uri.to_owned()),
            permission,
        }
    }

    /// A grant to everyone or to every signed-in user: what Block Public Access calls public.
    pub fn is_public(&self) -> bool {
        matches!(&self.grantee, Grantee::Group(uri) if uri == ALL_USERS_URI || uri == AUTHENTICATED_USERS_URI)
    }

    /// Whether this grant gives `permission` to the caller `user` (`None`: anonymous).
    /// `ignore_public`: grants to everyone or to every signed-in user count for nothing
    /// (Block Public Access `IgnorePublicAcls`).
    pub fn allows(
        &self,
        permission: AclPermission,
        user: Option<&str>,
        ignore_public: bool,
    ) -> bool {
        if !self.permission.covers(permission) || (ignore_public && self.is_public()) {
            return false;
        }
        match &self.grantee {
            Grantee::CanonicalUser(id) => user == Some(id.as_str()),
            Grantee::Group(uri) if uri == ALL_USERS_URI => true,
            Grantee::Group(uri) if uri == AUTHENTICATED_USERS_URI => user.is_some(),
            Grantee::Group(_) => false,
        }
    }
}

/// Whether any of `grants` gives `permission` to `user` (see [`Grant::allows`]).
pub fn grants_allow(
    grants: &[Grant],
    permission: AclPermission,
    user: Option<&str>,
    ignore_public: bool,
) -> bool {
    grants
        .iter()
        .any(|grant| grant.allows(permission, user, ignore_public))
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

    /// The grants this canned ACL stands for on a resource owned by `owner` in a bucket owned
    /// by `bucket_owner` (for a bucket, the two are the same), owner's FULL_CONTROL first.
    pub fn expand(self, owner: &str, bucket_owner: &str) -> Vec<Grant> {
        use AclPermission::{FullControl, Read, Write};
        let mut grants = vec![Grant::user(owner, FullControl)];
        match self {
            CannedAcl::Private => {}
            CannedAcl::PublicRead => grants.push(Grant::group(ALL_USERS_URI, Read)),
            CannedAcl::PublicReadWrite => {
                grants.push(Grant::group(ALL_USERS_URI, Read));
                grants.push(Grant::group(ALL_USERS_URI, Write));
            }
            CannedAcl::AuthenticatedRead => {
                grants.push(Grant::group(AUTHENTICATED_USERS_URI, Read))
            }
            CannedAcl::BucketOwnerRead if bucket_owner != owner => {
                grants.push(Grant::user(bucket_owner, Read))
            }
            CannedAcl::BucketOwnerFullControl if bucket_owner != owner => {
                grants.push(Grant::user(bucket_owner, FullControl))
            }
            CannedAcl::BucketOwnerRead | CannedAcl::BucketOwnerFullControl => {}
        }
        grants
    }
}

/// A bucket's or an object version's ACL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acl {
    Canned(CannedAcl),
    Grants(Vec<Grant>),
}

impl Acl {
    /// The grants in force on a resource owned by `owner` in a bucket owned by `bucket_owner`.
    pub fn grants(&self, owner: &str, bucket_owner: &str) -> Vec<Grant> {
        match self {
            Acl::Canned(canned) => canned.expand(owner, bucket_owner),
            Acl::Grants(grants) => grants.clone(),
        }
    }

    /// Whether the ACL grants anything to everyone or to every signed-in user.
    pub fn is_public(&self) -> bool {
        match self {
            Acl::Canned(canned) => matches!(
                canned,
                CannedAcl::PublicRead | CannedAcl::PublicReadWrite | CannedAcl::AuthenticatedRead
            ),
            Acl::Grants(grants) => grants.iter().any(Grant::is_public),
        }
    }

    /// The stored form: `None` for `private` (the default, not stored); a canned name as its
    /// name; a grant list as `STORED_GRANTS_HEADER` then one line per grant,
    /// `PERMISSION<TAB>id|uri<TAB>VALUE` (values never hold tabs or newlines: ids are user names
    /// and URIs are the known group URIs).
    pub fn encode(&self) -> Option<Vec<u8>> {
        match self {
            Acl::Canned(CannedAcl::Private) => None,
            Acl::Canned(canned) => Some(canned.name().as_bytes().to_vec()),
            Acl::Grants(grants) => {
                let mut text = String::from(STORED_GRANTS_HEADER);
                for grant in grants {
                    let (kind, value) = match &grant.grantee {
                        Grantee::CanonicalUser(id) => ("id", id),
                        Grantee::Group(uri) => ("uri", uri),
                    };
                    text.push('\n');
                    text.push_str(grant.permission.name());
                    text.push('\t');
                    text.push_str(kind);
                    text.push('\t');
                    text.push_str(value);
                }
                Some(text.into_bytes())
            }
        }
    }

    /// Reads a stored ACL; `None` when the bytes are not a form [`Acl::encode`] writes.
    pub fn decode(stored: &[u8]) -> Option<Acl> {
        let text = std::str::from_utf8(stored).ok()?;
        let mut lines = text.split('\n');
        let first = lines.next()?;
        if first != STORED_GRANTS_HEADER {
            return CannedAcl::parse(first)
                .ok()
                .filter(|canned| canned.name() == text)
                .map(Acl::Canned);
        }
        let mut grants = Vec::new();
        for line in lines {
            let mut fields = line.split('\t');
            let (Some(permission), Some(kind), Some(value), None) =
                (fields.next(), fields.next(), fields.next(), fields.next())
            else {
                return None;
            };
            let permission = AclPermission::parse(permission)?;
            let grantee = match kind {
                "id" => Grantee::CanonicalUser(value.to_owned()),
                "uri" => Grantee::Group(value.to_owned()),
                _ => return None,
            };
            grants.push(Grant {
                grantee,
                permission,
            });
        }
        Some(Acl::Grants(grants))
    }
}

/// A canonical id as a grant may name one: Cairn's ids are user names (1–64 letters, digits and
/// `_ . @ -`), so anything else names no user.
fn check_canonical_id(id: &str) -> Result<(), S3Error> {
    let valid = (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'.' | b'@' | b'-'));
    if valid {
        Ok(())
    } else {
        Err(S3Error::InvalidArgument("Invalid id".to_owned()))
    }
}

fn check_group_uri(uri: &str) -> Result<(), S3Error> {
    if [ALL_USERS_URI, AUTHENTICATED_USERS_URI, LOG_DELIVERY_URI].contains(&uri) {
        Ok(())
    } else {
        Err(S3Error::InvalidArgument("Invalid group uri".to_owned()))
    }
}

/// The grant headers and the permission each one grants.
pub const GRANT_HEADERS: [(&str, AclPermission); 5] = [
    ("x-amz-grant-read", AclPermission::Read),
    ("x-amz-grant-write", AclPermission::Write),
    ("x-amz-grant-read-acp", AclPermission::ReadAcp),
    ("x-amz-grant-write-acp", AclPermission::WriteAcp),
    ("x-amz-grant-full-control", AclPermission::FullControl),
];

/// The grants of a request's `x-amz-grant-*` headers (`None` when it has none). Each header is a
/// comma-separated list of `id="…"`, `uri="…"` or `emailAddress="…"` (quotes optional).
/// Errors: a malformed entry or unknown group is `InvalidArgument`, an email grantee
/// `UnresolvableGrantByEmailAddress`.
pub fn parse_grant_headers(headers: &[(&str, &str)]) -> Result<Option<Vec<Grant>>, S3Error> {
    let mut grants = Vec::new();
    let mut present = false;
    let mut email = false;
    for (header, permission) in GRANT_HEADERS {
        for (name, value) in headers {
            if !name.eq_ignore_ascii_case(header) {
                continue;
            }
            present = true;
            for entry in value.split(',') {
                let entry = entry.trim();
                let invalid = || S3Error::InvalidArgument(format!("Invalid grant: {entry}"));
                let (kind, grantee) = entry.split_once('=').ok_or_else(invalid)?;
                let grantee = grantee.trim();
                let grantee = grantee
                    .strip_prefix('"')
                    .and_then(|rest| rest.strip_suffix('"'))
                    .unwrap_or(grantee);
                let grantee = match kind.trim().to_ascii_lowercase().as_str() {
                    "id" => {
                        check_canonical_id(grantee)?;
                        Grantee::CanonicalUser(grantee.to_owned())
                    }
                    "uri" => {
                        check_group_uri(grantee)?;
                        Grantee::Group(grantee.to_owned())
                    }
                    "emailaddress" => {
                        email = true;
                        continue;
                    }
                    _ => return Err(invalid()),
                };
                grants.push(Grant {
                    grantee,
                    permission,
                });
            }
        }
    }
    if email {
        return Err(S3Error::UnresolvableGrantByEmailAddress);
    }
    if grants.len() > MAX_GRANTS {
        return Err(S3Error::InvalidArgument(format!(
            "An ACL may hold at most {MAX_GRANTS} grants"
        )));
    }
    Ok(present.then_some(grants))
}

/// A PutBucketAcl / PutObjectAcl body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessControlPolicy {
    /// `Owner/ID`, when the document has one.
    pub owner_id: Option<String>,
    pub grants: Vec<Grant>,
}

fn malformed_acl() -> S3Error {
    S3Error::MalformedAclError(
        "The XML you provided was not well-formed or did not validate against our published schema"
            .to_owned(),
    )
}

/// Parses an `AccessControlPolicy` document. A document that is not XML, has another root, or a
/// grant without a grantee or a known permission, or a grantee whose `xsi:type` does not match
/// its content, is `MalformedACLError`; an unknown group is `InvalidArgument`; an email grantee
/// `UnresolvableGrantByEmailAddress`.
pub fn parse_access_control_policy(body: &[u8]) -> Result<AccessControlPolicy, S3Error> {
    let root =
        crate::xml::parse_document(body, ACCESS_CONTROL_POLICY_LIMIT_BYTES).map_err(|error| {
            match error {
                S3Error::MaxMessageLengthExceeded => error,
                _ => malformed_acl(),
            }
        })?;
    if root.name != "AccessControlPolicy" {
        return Err(malformed_acl());
    }
    let owner_id = match root.child("Owner") {
        None => None,
        Some(owner) => Some(
            owner
                .child_text("ID")
                .ok_or_else(malformed_acl)?
                .trim()
                .to_owned(),
        ),
    };
    let list = root.child("AccessControlList").ok_or_else(malformed_acl)?;
    if list.children.iter().any(|child| child.name != "Grant") {
        return Err(malformed_acl());
    }
    let mut grants = Vec::new();
    let mut email = false;
    for grant in list.children_named("Grant") {
        let permission = grant
            .child_text("Permission")
            .and_then(|name| AclPermission::parse(name.trim()))
            .ok_or_else(malformed_acl)?;
        let grantee = grant.child("Grantee").ok_or_else(malformed_acl)?;
        let id = grantee.child_text("ID").map(str::trim);
        let uri = grantee.child_text("URI").map(str::trim);
        let address = grantee.child_text("EmailAddress").map(str::trim);
        // `xsi:type` names what the grantee holds; without it the content decides.
        let kind = match grantee.attribute("type") {
            Some(kind) => kind,
            None => match (id, uri, address) {
                (Some(_), None, None) => "CanonicalUser",
                (None, Some(_), None) => "Group",
                (None, None, Some(_)) => "AmazonCustomerByEmail",
                _ => return Err(malformed_acl()),
            },
        };
        let grantee = match (kind, id, uri, address) {
            ("CanonicalUser", Some(id), None, None) => {
                check_canonical_id(id)?;
                Grantee::CanonicalUser(id.to_owned())
            }
            ("Group", None, Some(uri), None) => {
                check_group_uri(uri)?;
                Grantee::Group(uri.to_owned())
            }
            ("AmazonCustomerByEmail", None, None, Some(_)) => {
                email = true;
                continue;
            }
            _ => return Err(malformed_acl()),
        };
        grants.push(Grant {
            grantee,
            permission,
        });
    }
    if email {
        return Err(S3Error::UnresolvableGrantByEmailAddress);
    }
    if grants.len() > MAX_GRANTS {
        return Err(malformed_acl());
    }
    Ok(AccessControlPolicy { owner_id, grants })
}

fn write_grant(writer: &mut XmlWriter, grant: &Grant) {
    writer.open("Grant");
    match &grant.grantee {
        Grantee::CanonicalUser(id) => {
            writer.open_with_attributes(
                "Grantee",
                &[("xmlns:xsi", XSI_NAMESPACE), ("xsi:type", "CanonicalUser")],
            );
            writer.text_element("ID", id);
            writer.text_element("DisplayName", id);
        }
        Grantee::Group(uri) => {
            writer.open_with_attributes(
                "Grantee",
                &[("xmlns:xsi", XSI_NAMESPACE), ("xsi:type", "Group")],
            );
            writer.text_element("URI", uri);
        }
    }
    writer.close("Grantee");
    writer.text_element("Permission", grant.permission.name());
    writer.close("Grant");
}

/// GetBucketAcl / GetObjectAcl: the owner and the grants in force.
pub fn access_control_policy_xml(owner: &str, grants: &[Grant]) -> String {
    let mut writer = XmlWriter::new();
    writer.open_root("AccessControlPolicy");
    writer.open("Owner");
    writer.text_element("ID", owner);
    writer.text_element("DisplayName", owner);
    writer.close("Owner");
    writer.open("AccessControlList");
    for grant in grants {
        write_grant(&mut writer, grant);
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
    fn canned_grants_follow_s3s_table() {
        use AclPermission::{FullControl, Read, ReadAcp, Write};
        let allows = |canned: CannedAcl, permission, user: Option<&str>| {
            grants_allow(&canned.expand("alice", "carol"), permission, user, false)
        };
        assert!(allows(CannedAcl::Private, FullControl, Some("alice")));
        assert!(!allows(CannedAcl::Private, Read, Some("bob")));
        assert!(allows(CannedAcl::PublicRead, Read, None));
        assert!(!allows(CannedAcl::PublicRead, Write, Some("bob")));
        assert!(allows(CannedAcl::PublicReadWrite, Write, None));
        assert!(!allows(CannedAcl::PublicReadWrite, ReadAcp, None));
        assert!(allows(CannedAcl::AuthenticatedRead, Read, Some("bob")));
        assert!(!allows(CannedAcl::AuthenticatedRead, Read, None));
        assert!(allows(CannedAcl::BucketOwnerRead, Read, Some("carol")));
        assert!(!allows(CannedAcl::BucketOwnerRead, Write, Some("carol")));
        assert!(allows(
            CannedAcl::BucketOwnerFullControl,
            ReadAcp,
            Some("carol")
        ));
        assert!(!allows(
            CannedAcl::BucketOwnerFullControl,
            Read,
            Some("bob")
        ));
        // IgnorePublicAcls voids group grants, not the owner's.
        let public = CannedAcl::PublicReadWrite.expand("alice", "alice");
        assert!(!grants_allow(&public, Read, None, true));
        assert!(grants_allow(&public, Read, Some("alice"), true));
        assert!(Acl::Canned(CannedAcl::PublicRead).is_public());
        assert!(Acl::Canned(CannedAcl::AuthenticatedRead).is_public());
        assert!(!Acl::Canned(CannedAcl::BucketOwnerRead).is_public());
    }

    #[test]
    fn explicit_grants_match_users_groups_and_permissions() {
        use AclPermission::{FullControl, Read, ReadAcp, Write, WriteAcp};
        let grants = vec![
            Grant::user("bob", Read),
            Grant::user("dave", FullControl),
            Grant::group(AUTHENTICATED_USERS_URI, ReadAcp),
            Grant::group(LOG_DELIVERY_URI, Write),
        ];
        assert!(grants_allow(&grants, Read, Some("bob"), false));
        assert!(!grants_allow(&grants, Write, Some("bob"), false));
        assert!(!grants_allow(&grants, Read, Some("carol"), false));
        for permission in [Read, Write, ReadAcp, WriteAcp] {
            assert!(grants_allow(&grants, permission, Some("dave"), false));
        }
        assert!(grants_allow(&grants, ReadAcp, Some("carol"), false));
        assert!(!grants_allow(&grants, ReadAcp, Some("carol"), true));
        assert!(!grants_allow(&grants, ReadAcp, None, false));
        assert!(
            !grants_allow(&grants, Write, None, false),
            "LogDelivery is no caller"
        );
        assert!(Acl::Grants(grants.clone()).is_public());
        assert!(!Acl::Grants(grants[..2].to_vec()).is_public());
    }

    #[test]
    fn stored_form_round_trips_and_canned_names_stay_as_they_were() {
        // Values written before explicit grants existed read back as the same canned ACL.
        assert_eq!(
            Acl::decode(b"public-read"),
            Some(Acl::Canned(CannedAcl::PublicRead))
        );
        assert_eq!(
            Acl::Canned(CannedAcl::AuthenticatedRead).encode().unwrap(),
            b"authenticated-read"
        );
        assert_eq!(Acl::Canned(CannedAcl::Private).encode(), None);
        let grants = Acl::Grants(vec![
            Grant::user("bob", AclPermission::Read),
            Grant::group(ALL_USERS_URI, AclPermission::WriteAcp),
        ]);
        let stored = grants.encode().unwrap();
        // Golden bytes of format version 1.
        assert_eq!(
            stored,
            b"cairn-acl-grants/1\nREAD\tid\tbob\nWRITE_ACP\turi\thttp://acs.amazonaws.com/groups/global/AllUsers"
        );
        assert_eq!(Acl::decode(&stored), Some(grants));
        let empty = Acl::Grants(Vec::new());
        assert_eq!(Acl::decode(&empty.encode().unwrap()), Some(empty));
        for bad in [
            &b"public"[..],
            b"public-read\n",
            b"cairn-acl-grants/1\nREAD\tid",
            b"cairn-acl-grants/1\nSEE\tid\tbob",
            b"cairn-acl-grants/1\nREAD\temail\tbob",
            b"cairn-acl-grants/2\nREAD\tid\tbob",
            b"\xff",
        ] {
            assert_eq!(Acl::decode(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn grant_headers_parse_lists_and_refuse_bad_entries() {
        let headers = [
            (
                "x-amz-grant-read",
                "id=\"bob\", uri=\"http://acs.amazonaws.com/groups/global/AllUsers\"",
            ),
            ("X-Amz-Grant-Write-Acp", "id=carol"),
            ("x-amz-meta-other", "id=\"ignored\""),
        ];
        let grants = parse_grant_headers(&headers).unwrap().unwrap();
        assert_eq!(
            grants,
            vec![
                Grant::user("bob", AclPermission::Read),
                Grant::group(ALL_USERS_URI, AclPermission::Read),
                Grant::user("carol", AclPermission::WriteAcp),
            ]
        );
        assert_eq!(parse_grant_headers(&[("x-amz-acl", "private")]), Ok(None));
        for bad in [
            "bob",
            "name=\"bob\"",
            "uri=\"http://example.com/group\"",
            "id=\"a b\"",
            "id=\"\"",
        ] {
            assert!(
                matches!(
                    parse_grant_headers(&[("x-amz-grant-read", bad)]),
                    Err(S3Error::InvalidArgument(_))
                ),
                "{bad}"
            );
        }
        assert_eq!(
            parse_grant_headers(&[("x-amz-grant-full-control", "emailAddress=\"a@example.com\"")]),
            Err(S3Error::UnresolvableGrantByEmailAddress)
        );
    }

    const POLICY: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<AccessControlPolicy xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Owner><ID>alice</ID><DisplayName>alice</DisplayName></Owner>
  <AccessControlList>
    <Grant>
      <Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="CanonicalUser"><ID>bob</ID></Grantee>
      <Permission>READ</Permission>
    </Grant>
    <Grant>
      <Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="Group"><URI>http://acs.amazonaws.com/groups/s3/LogDelivery</URI></Grantee>
      <Permission>WRITE</Permission>
    </Grant>
    <Grant>
      <Grantee><ID>carol</ID></Grantee>
      <Permission>FULL_CONTROL</Permission>
    </Grant>
  </AccessControlList>
</AccessControlPolicy>"#;

    #[test]
    fn access_control_policy_parses_and_renders_back() {
        let policy = parse_access_control_policy(POLICY.as_bytes()).unwrap();
        assert_eq!(policy.owner_id.as_deref(), Some("alice"));
        assert_eq!(
            policy.grants,
            vec![
                Grant::user("bob", AclPermission::Read),
                Grant::group(LOG_DELIVERY_URI, AclPermission::Write),
                Grant::user("carol", AclPermission::FullControl),
            ]
        );
        let rendered = access_control_policy_xml("alice", &policy.grants);
        let reparsed = parse_access_control_policy(rendered.as_bytes()).unwrap();
        assert_eq!(reparsed, policy);
    }

    #[test]
    fn bad_access_control_policies_are_refused_with_s3s_codes() {
        let malformed = |body: &str| {
            matches!(
                parse_access_control_policy(body.as_bytes()),
                Err(S3Error::MalformedAclError(_))
            )
        };
        assert!(malformed("not xml"));
        assert!(malformed("<AccessControlPolicy><Owner><ID>a</ID></Owner>"));
        assert!(malformed("<Other/>"));
        assert!(malformed(
            "<AccessControlPolicy><Owner><ID>a</ID></Owner></AccessControlPolicy>"
        ));
        assert!(malformed(
            "<AccessControlPolicy><AccessControlList><Grant><Grantee><ID>b</ID></Grantee><Permission>SEE</Permission></Grant></AccessControlList></AccessControlPolicy>"
        ));
        assert!(malformed(
            "<AccessControlPolicy><AccessControlList><Grant><Permission>READ</Permission></Grant></AccessControlList></AccessControlPolicy>"
        ));
        assert!(malformed(
            r#"<AccessControlPolicy><AccessControlList><Grant><Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="Group"><ID>b</ID></Grantee><Permission>READ</Permission></Grant></AccessControlList></AccessControlPolicy>"#
        ));
        assert_eq!(
            parse_access_control_policy(
                br#"<AccessControlPolicy><AccessControlList><Grant><Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="AmazonCustomerByEmail"><EmailAddress>b@example.com</EmailAddress></Grantee><Permission>READ</Permission></Grant></AccessControlList></AccessControlPolicy>"#
            ),
            Err(S3Error::UnresolvableGrantByEmailAddress)
        );
        assert!(matches!(
            parse_access_control_policy(
                b"<AccessControlPolicy><AccessControlList><Grant><Grantee><URI>http://example.com/g</URI></Grantee><Permission>READ</Permission></Grant></AccessControlList></AccessControlPolicy>"
            ),
            Err(S3Error::InvalidArgument(_))
        ));
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
    fn access_control_policy_of_a_canned_acl_reads_as_before() {
        // The document of a stored canned ACL is what it was when only canned ACLs existed.
        let render = |owner: &str, bucket_owner: &str, canned: CannedAcl| {
            access_control_policy_xml(owner, &canned.expand(owner, bucket_owner))
        };
        let xml = render("alice", "alice", CannedAcl::PublicRead);
        assert_eq!(
            xml,
            concat!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
                r#"<AccessControlPolicy xmlns="http://s3.amazonaws.com/doc/2006-03-01/">"#,
                "<Owner><ID>alice</ID><DisplayName>alice</DisplayName></Owner><AccessControlList>",
                r#"<Grant><Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="CanonicalUser">"#,
                "<ID>alice</ID><DisplayName>alice</DisplayName></Grantee><Permission>FULL_CONTROL</Permission></Grant>",
                r#"<Grant><Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="Group">"#,
                "<URI>http://acs.amazonaws.com/groups/global/AllUsers</URI></Grantee><Permission>READ</Permission></Grant>",
                "</AccessControlList></AccessControlPolicy>"
            )
        );
        let private = render("alice", "alice", CannedAcl::Private);
        assert_eq!(private.matches("<Grant>").count(), 1);
        let shared = render("bob", "alice", CannedAcl::BucketOwnerFullControl);
        assert_eq!(
            shared
                .matches("<Permission>FULL_CONTROL</Permission>")
                .count(),
            2
        );
    }
}
