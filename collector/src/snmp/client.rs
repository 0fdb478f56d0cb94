//! The SNMP client boundary: the [`SnmpClient`] trait the walk, the MIB modules and the poller
//! talk to, the [`SnmpError`] they branch on, and the [`Credentials`] a target is polled with.
//!
//! The one implementation over the network is [`super::session::SnmpSession`] (snmp2); tests use
//! [`super::testing::MemoryAgent`], an in-memory agent that replays a recorded walk. Keeping the
//! library behind this trait means its quirks (no timeout, no retry, silent short answers) are
//! handled in one file and nothing else depends on its borrowed types.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::types::{Oid, VarBind};

/// The future every [`SnmpClient`] method returns. Boxed so the trait can be used as
/// `Box<dyn SnmpClient>` (the poller holds one per target, of whichever kind).
pub type SnmpFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, SnmpError>> + Send + 'a>>;

/// A connection to one SNMP agent. One request is in flight at a time (`&mut self`).
///
/// Every method either returns every varbind the agent sent, decoded, or an error: a short or
/// undecodable answer is [`SnmpError::Decode`], never a shorter list.
pub trait SnmpClient: Send {
    /// The protocol version in use; the walk uses GETBULK only where it exists (not v1).
    fn version(&self) -> SnmpVersion;

    /// GET: exactly one varbind per requested OID, in order. Absent objects come back as
    /// `noSuchObject`/`noSuchInstance` values (v2c/v3) or as
    /// [`SnmpError::Status`] `noSuchName` (v1).
    fn get<'a>(&'a mut self, oids: &'a [Oid]) -> SnmpFuture<'a, Vec<VarBind>>;

    /// GETNEXT: exactly one varbind per requested OID, the next one after it in the agent's
    /// MIB view (or `endOfMibView`).
    fn get_next<'a>(&'a mut self, oids: &'a [Oid]) -> SnmpFuture<'a, Vec<VarBind>>;

    /// GETBULK (v2c/v3): the first `non_repeaters` OIDs are answered once, the rest up to
    /// `max_repetitions` times each. The agent may answer with fewer rows than asked for.
    fn get_bulk<'a>(
        &'a mut self,
        oids: &'a [Oid],
        non_repeaters: u32,
        max_repetitions: u32,
    ) -> SnmpFuture<'a, Vec<VarBind>>;
}

impl<C: SnmpClient + ?Sized> SnmpClient for Box<C> {
    fn version(&self) -> SnmpVersion {
        (**self).version()
    }
    fn get<'a>(&'a mut self, oids: &'a [Oid]) -> SnmpFuture<'a, Vec<VarBind>> {
        (**self).get(oids)
    }
    fn get_next<'a>(&'a mut self, oids: &'a [Oid]) -> SnmpFuture<'a, Vec<VarBind>> {
        (**self).get_next(oids)
    }
    fn get_bulk<'a>(
        &'a mut self,
        oids: &'a [Oid],
        non_repeaters: u32,
        max_repetitions: u32,
    ) -> SnmpFuture<'a, Vec<VarBind>> {
        (**self).get_bulk(oids, non_repeaters, max_repetitions)
    }
}

/// SNMP protocol version.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SnmpVersion {
    V1,
    V2c,
    V3,
}

impl fmt::Display for SnmpVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SnmpVersion::V1 => "v1",
            SnmpVersion::V2c => "v2c",
            SnmpVersion::V3 => "v3",
        })
    }
}

/// Why an SNMP request failed. Callers branch on the variant: a timeout marks the target down,
/// an authentication failure is a configuration problem for an operator, a decode error is a
/// device bug. No variant carries a community or a password.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum SnmpError {
    /// No answer within the timeout, on every attempt.
    ///
    /// This is also what a wrong community looks like: v1/v2c agents drop requests with an
    /// unknown community without answering (RFC 3584), so it cannot be told apart from an
    /// unreachable agent. The same holds for a wrong SNMPv3 *privacy* password: net-snmp
    /// decrypts the request to garbage, fails to parse it and drops it without a report.
    #[error("no answer after {attempts} attempt(s) of {timeout:?} each")]
    Timeout { attempts: u32, timeout: Duration },

    /// SNMPv3 authentication failed: the agent answered with a report that it could not
    /// authenticate the request (unknown user, wrong authentication password or protocol), or
    /// its answer failed our own check (signature, missing encryption). Not retried: retrying
    /// with the same credentials cannot succeed, and failing fast makes the cause clear. (A
    /// wrong privacy password usually shows as a [`SnmpError::Timeout`] instead; see there.)
    #[error(
        "SNMPv3 authentication failed ({detail}): check the user name, authentication and \
         privacy protocols and passwords"
    )]
    AuthFailure { detail: String },

    /// The answer would not fit in one message (error status tooBig). The walk halves
    /// max-repetitions and asks again.
    #[error("the answer would be too big for one message (tooBig)")]
    TooBig,

    /// The agent answered with an error status other than tooBig (noSuchName, genErr, ...).
    /// `index` is the 1-based position of the varbind at fault (0 when the agent named none).
    #[error("the agent answered with error status {status} (varbind {index})")]
    Status { status: ErrorStatus, index: u32 },

    /// The answer could not be decoded, or it was short: fewer varbinds than the request asked
    /// for, a varbind of a type SNMP does not use, an OID other than the one requested.
    #[error("undecodable or short answer: {detail}")]
    Decode { detail: String },

    /// The socket failed: nothing listening (ICMP port unreachable), no route, bind failure.
    #[error("network error: {detail}")]
    Io { detail: String },

    /// SNMPv3 engine synchronisation failed even after rediscovering the engine: the agent's
    /// engine ID, boots or time keep disagreeing with ours (notInTimeWindow, engine ID change).
    #[error("SNMPv3 engine synchronisation failed: {detail}")]
    Engine { detail: String },

    /// The credentials cannot be used (e.g. a password shorter than SNMPv3's 8 characters).
    /// Names the field, never its value.
    #[error("invalid SNMP credentials: {detail}")]
    Config { detail: String },

    /// The request itself cannot be encoded (e.g. an OID whose first arcs BER cannot encode).
    #[error("invalid request: {detail}")]
    InvalidRequest { detail: String },

    /// A walk stopped before the end of its subtree (a bound was reached, or the agent
    /// returned OIDs out of order). Only returned by [`super::walk::Walk::into_complete`]; the
    /// walk itself returns the partial result flagged as such.
    #[error("walk of {root} incomplete after {varbinds} varbind(s): {reason}")]
    WalkIncomplete {
        root: Oid,
        varbinds: usize,
        reason: String,
    },
}

/// An SNMP PDU error status (RFC 3416 section 3).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum ErrorStatus {
    TooBig,
    NoSuchName,
    BadValue,
    ReadOnly,
    GenErr,
    NoAccess,
    WrongType,
    WrongLength,
    WrongEncoding,
    WrongValue,
    NoCreation,
    InconsistentValue,
    ResourceUnavailable,
    CommitFailed,
    UndoFailed,
    AuthorizationError,
    NotWritable,
    InconsistentName,
    /// A code RFC 3416 does not define.
    Other(u32),
}

impl ErrorStatus {
    /// The status for a non-zero PDU error-status code.
    pub fn from_code(code: u32) -> ErrorStatus {
        use ErrorStatus::*;
        match code {
            1 => TooBig,
            2 => NoSuchName,
            3 => BadValue,
            4 => ReadOnly,
            5 => GenErr,
            6 => NoAccess,
            7 => WrongType,
            8 => WrongLength,
            9 => WrongEncoding,
            10 => WrongValue,
            11 => NoCreation,
            12 => InconsistentValue,
            13 => ResourceUnavailable,
            14 => CommitFailed,
            15 => UndoFailed,
            16 => AuthorizationError,
            17 => NotWritable,
            18 => InconsistentName,
            other => Other(other),
        }
    }
}

impl fmt::Display for ErrorStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ErrorStatus::*;
        let name = match self {
            TooBig => "tooBig",
            NoSuchName => "noSuchName",
            BadValue => "badValue",
            ReadOnly => "readOnly",
            GenErr => "genErr",
            NoAccess => "noAccess",
            WrongType => "wrongType",
            WrongLength => "wrongLength",
            WrongEncoding => "wrongEncoding",
            WrongValue => "wrongValue",
            NoCreation => "noCreation",
            InconsistentValue => "inconsistentValue",
            ResourceUnavailable => "resourceUnavailable",
            CommitFailed => "commitFailed",
            UndoFailed => "undoFailed",
            AuthorizationError => "authorizationError",
            NotWritable => "notWritable",
            InconsistentName => "inconsistentName",
            Other(code) => return write!(f, "error status {code}"),
        };
        f.write_str(name)
    }
}

/// A secret (community, password) as configured. `Debug` prints `***`, and there is no
/// `Display`, so a secret cannot reach a log line or an error by accident; read it with
/// [`Secret::expose`]. Serialised as the plain string: whoever stores credentials encrypts them.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Secret {
        Secret(value.to_string())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

/// How to authenticate to one agent. `Debug` redacts every secret (they are [`Secret`]s).
///
/// In TOML: `version = "v2c"` and `community = "..."`, or `version = "v3"`, `user`, `auth`,
/// `auth_pass`, optional `privacy = { proto = "aes128", pass = "..." }` and `context`.
/// SNMPv3 always authenticates here (authNoPriv or authPriv): noAuthNoPriv sends the user name
/// in clear and proves nothing, so it is not offered.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(tag = "version", rename_all = "lowercase", deny_unknown_fields)]
pub enum Credentials {
    V1 {
        community: Secret,
    },
    V2c {
        community: Secret,
    },
    V3 {
        /// The USM user name.
        user: String,
        /// The authentication protocol.
        auth: AuthProto,
        /// The authentication password (at least 8 characters, as RFC 3414 requires).
        auth_pass: Secret,
        /// Encryption; `None` is authNoPriv.
        #[serde(default)]
        privacy: Option<Privacy>,
        /// The context name (empty for the default context).
        #[serde(default)]
        context: String,
    },
}

/// SNMPv3 privacy settings.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Privacy {
    pub proto: PrivProto,
    /// The privacy password (at least 8 characters).
    pub pass: Secret,
}

/// SNMPv3 authentication protocol (RFC 3414 MD5/SHA-1, RFC 7860 SHA-2). net-snmp's spellings
/// (`SHA`, `SHA-256`, ...) are accepted as well as the lowercase names.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthProto {
    #[serde(alias = "MD5")]
    Md5,
    #[serde(alias = "sha", alias = "SHA", alias = "sha-1", alias = "SHA-1")]
    Sha1,
    #[serde(alias = "sha-224", alias = "SHA-224")]
    Sha224,
    #[serde(alias = "sha-256", alias = "SHA-256")]
    Sha256,
    #[serde(alias = "sha-384", alias = "SHA-384")]
    Sha384,
    #[serde(alias = "sha-512", alias = "SHA-512")]
    Sha512,
}

/// SNMPv3 privacy protocol.
///
/// AES-192/256 need a key longer than MD5 and SHA-1 (and, for AES-256, SHA-224) produce, and
/// vendors disagree on how to extend it: net-snmp's `AES-192`/`AES-256` use the Blumenthal
/// draft (`aes192`, `aes256`); Cisco and others use the Reeder draft (`aes192c`, `aes256c`,
/// net-snmp's `AES-192-C`/`AES-256-C`). With SHA-256 and longer hashes both are the same.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PrivProto {
    #[serde(alias = "DES")]
    Des,
    #[serde(alias = "aes", alias = "AES", alias = "aes-128", alias = "AES-128")]
    Aes128,
    #[serde(alias = "aes-192", alias = "AES-192")]
    Aes192,
    #[serde(alias = "aes-256", alias = "AES-256")]
    Aes256,
    #[serde(alias = "aes-192-c", alias = "AES-192-C")]
    Aes192c,
    #[serde(alias = "aes-256-c", alias = "AES-256-C")]
    Aes256c,
}

/// RFC 3414 section 11.2: passwords shorter than this are refused (net-snmp refuses them too).
pub const MIN_V3_PASSWORD_LEN: usize = 8;

impl Credentials {
    /// The SNMPv3 user name (not a secret), empty for v1/v2c.
    pub fn user(&self) -> &str {
        match self {
            Credentials::V3 { user, .. } => user,
            _ => "",
        }
    }

    pub fn version(&self) -> SnmpVersion {
        match self {
            Credentials::V1 { .. } => SnmpVersion::V1,
            Credentials::V2c { .. } => SnmpVersion::V2c,
            Credentials::V3 { .. } => SnmpVersion::V3,
        }
    }

    /// Checks what the agent would reject anyway, so the error names the field at fault
    /// instead of surfacing later as an authentication failure. (It also keeps an empty
    /// password away from snmp2's key localisation, which would panic on one.)
    pub fn validate(&self) -> Result<(), SnmpError> {
        let Credentials::V3 {
            user,
            auth_pass,
            privacy,
            ..
        } = self
        else {
            return Ok(());
        };
        if user.is_empty() {
            return Err(SnmpError::Config {
                detail: "the SNMPv3 user name is empty".into(),
            });
        }
        if auth_pass.expose().chars().count() < MIN_V3_PASSWORD_LEN {
            return Err(SnmpError::Config {
                detail: format!(
                    "auth_pass of user {user:?} is shorter than {MIN_V3_PASSWORD_LEN} characters"
                ),
            });
        }
        if let Some(privacy) = privacy
            && privacy.pass.expose().chars().count() < MIN_V3_PASSWORD_LEN
        {
            return Err(SnmpError::Config {
                detail: format!(
                    "privacy pass of user {user:?} is shorter than {MIN_V3_PASSWORD_LEN} \
                     characters"
                ),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v3() -> Credentials {
        Credentials::V3 {
            user: "monitor".into(),
            auth: AuthProto::Sha256,
            auth_pass: "auth-secret-1".into(),
            privacy: Some(Privacy {
                proto: PrivProto::Aes256,
                pass: "priv-secret-2".into(),
            }),
            context: String::new(),
        }
    }

    #[test]
    fn debug_never_shows_a_secret() {
        let text = format!(
            "{:?} {:?}",
            v3(),
            Credentials::V2c {
                community: "community-secret".into()
            }
        );
        for secret in ["auth-secret-1", "priv-secret-2", "community-secret"] {
            assert!(!text.contains(secret), "{text}");
        }
        assert!(text.contains("monitor"), "{text}");
    }

    #[test]
    fn credentials_read_from_toml_with_net_snmp_spellings() {
        let text = r#"
            version = "v3"
            user = "monitor"
            auth = "SHA-256"
            auth_pass = "auth-secret-1"
            privacy = { proto = "AES-256", pass = "priv-secret-2" }
        "#;
        let parsed: Credentials = toml::from_str(text).unwrap();
        assert_eq!(parsed, v3());
        let back: Credentials = toml::from_str(&toml::to_string(&parsed).unwrap()).unwrap();
        assert_eq!(back, parsed);
        let v2: Credentials = toml::from_str("version = \"v2c\"\ncommunity = \"x\"").unwrap();
        assert_eq!(v2.version(), SnmpVersion::V2c);
    }

    #[test]
    fn an_unknown_credentials_key_is_an_error_naming_it() {
        let err = toml::from_str::<Credentials>("version = \"v2c\"\ncomunity = \"x\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("comunity"), "{err}");
    }

    #[test]
    fn short_passwords_are_refused_without_showing_them() {
        let Credentials::V3 {
            user,
            auth,
            privacy,
            context,
            ..
        } = v3()
        else {
            unreachable!()
        };
        let short = Credentials::V3 {
            user,
            auth,
            auth_pass: "pw-1234".into(),
            privacy,
            context,
        };
        let err = short.validate().unwrap_err();
        assert!(matches!(err, SnmpError::Config { .. }), "{err:?}");
        assert!(!err.to_string().contains("pw-1234"), "{err}");
        assert!(err.to_string().contains("auth_pass"), "{err}");
        assert!(v3().validate().is_ok());
    }
}
