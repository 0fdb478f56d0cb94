//! [`SnmpSession`]: the [`SnmpClient`] over the network, built on `snmp2::AsyncSession`.
//!
//! snmp2 encodes, decodes and does the SNMPv3 cryptography; this file adds what it leaves out
//! (see `shared/reference/dependencies.md`):
//! - **Timeout and retries.** Each attempt is bounded by [`SessionOptions::timeout`]; a request
//!   is tried `1 + retries` times, so it fails within `(1 + retries) × timeout`.
//! - **Late answers.** snmp2 reads whatever datagram arrives next, so after a timeout the late
//!   answer to the abandoned request would be read by the next one (`RequestIdMismatch`), and
//!   every retry would then read its predecessor's answer. The socket is therefore thrown away
//!   after a timeout, a socket error or a mismatch, and the next attempt uses a fresh one (a new
//!   local port, so stale datagrams go nowhere).
//! - **SNMPv3 engine discovery and resynchronisation.** The engine ID, boots and time are
//!   discovered before the first request on each socket. When the agent reports that they
//!   changed (a reboot increments engineBoots; a poll interval over 150 s leaves the time
//!   window), the request is sent again once, after rediscovery if the engine ID changed.
//! - **Short answers.** snmp2 stops listing varbinds at the first one it cannot decode. A GET
//!   or GETNEXT answer must hold exactly one varbind per requested OID, else the request fails
//!   with [`SnmpError::Decode`]. A GETBULK answer may legitimately be short; the walk continues
//!   from its last OID, so a truncated answer costs a request, never data.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use snmp2::{AsyncSession, v3};
use tokio::time::{Instant, sleep_until, timeout_at};

use super::client::{
    AuthProto, Credentials, PrivProto, SnmpClient, SnmpError, SnmpFuture, SnmpVersion,
};
use super::types::{Oid, VarBind};
use super::wire::{Op, decode_response, encode_oid};

/// Per-target request settings.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SessionOptions {
    /// How long one attempt waits for the answer (including SNMPv3 discovery when needed).
    pub timeout: Duration,
    /// How many times a request is sent again after a timeout or a socket error.
    pub retries: u32,
}

impl Default for SessionOptions {
    /// 2 s and 2 retries: net-snmp's defaults are 1 s and 5 retries, but a poller with many
    /// targets prefers to give up on a dead one within 6 s and try again next cycle.
    fn default() -> Self {
        SessionOptions {
            timeout: Duration::from_secs(2),
            retries: 2,
        }
    }
}

/// Counters of what a session had to do, for logs and tests.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct SessionStats {
    /// Requests asked of the session (a multi-OID GETNEXT counts once per OID).
    pub requests: u64,
    /// Datagrams sent for them, including retries and resends after resynchronisation.
    pub attempts: u64,
    /// Attempts that ended in a timeout.
    pub timeouts: u64,
    /// Sockets opened (the first one, and one after each timeout or socket error).
    pub sockets_opened: u64,
    /// SNMPv3 resynchronisations: the agent's engine boots/time/ID changed under us.
    pub resyncs: u64,
}

/// An SNMP session to one agent over UDP. Opens its socket on first use, so creating one never
/// fails for network reasons; see the module documentation for what it adds to snmp2.
pub struct SnmpSession {
    target: SocketAddr,
    credentials: Credentials,
    options: SessionOptions,
    /// `None` until the first request, and again after anything that may leave a stale answer
    /// queued on the socket.
    socket: Option<Connected>,
    stats: SessionStats,
}

struct Connected {
    session: AsyncSession,
    /// SNMPv3: whether the engine ID, boots and time have been discovered on this socket.
    /// Always true for v1/v2c.
    engine_known: bool,
}

impl fmt::Debug for SnmpSession {
    /// By hand: the credentials print redacted, and snmp2's session (which holds the keys) not
    /// at all.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SnmpSession")
            .field("target", &self.target)
            .field("credentials", &self.credentials)
            .field("options", &self.options)
            .field("connected", &self.socket.is_some())
            .field("stats", &self.stats)
            .finish()
    }
}

/// How an attempt failed, which decides what happens next.
enum Failure {
    /// Give up now: retrying cannot help (authentication, error status, undecodable answer).
    Fatal(SnmpError),
    /// Open a new socket and try again, as one of the retries. `pace` waits out the rest of
    /// the attempt's timeout first, so an agent that refuses at once (port closed while it
    /// restarts) is given as long as one that does not answer.
    Retry { error: SnmpError, pace: bool },
    /// SNMPv3: snmp2 has taken the agent's new boots/time from its report; send again.
    Resend(SnmpError),
    /// SNMPv3: rediscover the engine, then send again.
    Rediscover(SnmpError),
}

impl SnmpSession {
    /// A session to `target` (the agent's address, usually port 161). Checks the credentials;
    /// does no I/O.
    pub fn new(
        target: SocketAddr,
        credentials: Credentials,
        options: SessionOptions,
    ) -> Result<SnmpSession, SnmpError> {
        credentials.validate()?;
        Ok(SnmpSession {
            target,
            credentials,
            options,
            socket: None,
            stats: SessionStats::default(),
        })
    }

    pub fn target(&self) -> SocketAddr {
        self.target
    }

    pub fn options(&self) -> SessionOptions {
        self.options
    }

    pub fn stats(&self) -> SessionStats {
        self.stats
    }

    /// Sends one request with timeout, retries and v3 resynchronisation (module docs).
    async fn execute(&mut self, op: Op, oids: &[Oid]) -> Result<Vec<VarBind>, SnmpError> {
        let wire = oids.iter().map(encode_oid).collect::<Result<Vec<_>, _>>()?;
        self.stats.requests += 1;
        let attempts = self.options.retries.saturating_add(1);
        let mut attempt = 0;
        // One resynchronisation per request: a reboot needs one; an agent whose engine keeps
        // moving is broken, and looping on it would hide that.
        let mut resync_allowed = true;
        let mut last_error = None;
        while attempt < attempts {
            attempt += 1;
            self.stats.attempts += 1;
            let deadline = Instant::now() + self.options.timeout;
            let failure = match timeout_at(deadline, self.attempt(op, &wire, oids)).await {
                Ok(Ok(varbinds)) => return Ok(varbinds),
                Ok(Err(failure)) => failure,
                Err(_elapsed) => {
                    self.stats.timeouts += 1;
                    self.socket = None;
                    last_error = Some(SnmpError::Timeout {
                        attempts: attempt,
                        timeout: self.options.timeout,
                    });
                    continue;
                }
            };
            match failure {
                Failure::Fatal(error) => return Err(error),
                Failure::Retry { error, pace } => {
                    self.socket = None;
                    last_error = Some(error);
                    if pace && attempt < attempts {
                        sleep_until(deadline).await;
                    }
                }
                Failure::Resend(error) | Failure::Rediscover(error) if !resync_allowed => {
                    return Err(match error {
                        SnmpError::Engine { detail } => SnmpError::Engine {
                            detail: format!("{detail} (again after resynchronising)"),
                        },
                        other => other,
                    });
                }
                Failure::Resend(_) => {
                    resync_allowed = false;
                    self.stats.resyncs += 1;
                    attempt -= 1;
                }
                Failure::Rediscover(_) => {
                    resync_allowed = false;
                    self.stats.resyncs += 1;
                    attempt -= 1;
                    if let Some(connected) = self.socket.as_mut() {
                        connected.engine_known = false;
                    }
                }
            }
        }
        Err(last_error.unwrap_or(SnmpError::Timeout {
            attempts,
            timeout: self.options.timeout,
        }))
    }

    /// One attempt: (re)open the socket and discover the v3 engine if needed, send, decode.
    async fn attempt(
        &mut self,
        op: Op,
        wire: &[snmp2::Oid<'static>],
        requested: &[Oid],
    ) -> Result<Vec<VarBind>, Failure> {
        if self.socket.is_none() {
            let session = self
                .open()
                .await
                .map_err(|error| Failure::Retry { error, pace: true })?;
            self.stats.sockets_opened += 1;
            self.socket = Some(Connected {
                session,
                engine_known: self.credentials.version() != SnmpVersion::V3,
            });
        }
        let target = self.target;
        let Some(connected) = self.socket.as_mut() else {
            // Unreachable: set just above. Treated as a socket failure rather than a panic.
            return Err(Failure::Retry {
                error: SnmpError::Io {
                    detail: "no socket".into(),
                },
                pace: false,
            });
        };
        if !connected.engine_known {
            connected
                .session
                .init()
                .await
                .map_err(|e| classify(e, target))?;
            connected.engine_known = true;
        }
        let refs: Vec<&snmp2::Oid<'_>> = wire.iter().collect();
        let session = &mut connected.session;
        let pdu = match op {
            Op::Get => session.get_many(&refs).await,
            Op::GetNext => match refs.as_slice() {
                [oid] => session.getnext(oid).await,
                _ => {
                    return Err(Failure::Fatal(SnmpError::InvalidRequest {
                        detail: "a wire GETNEXT carries one OID".into(),
                    }));
                }
            },
            Op::GetBulk {
                non_repeaters,
                max_repetitions,
            } => session.getbulk(&refs, non_repeaters, max_repetitions).await,
        }
        .map_err(|e| classify(e, target))?;
        decode_response(&pdu, op, requested).map_err(Failure::Fatal)
    }

    /// Opens a UDP socket connected to the target, with a random first request ID (so two
    /// sessions, or one reopened, never reuse each other's IDs).
    async fn open(&self) -> Result<AsyncSession, SnmpError> {
        let request_id = first_request_id();
        let opened = match &self.credentials {
            Credentials::V1 { community } => {
                AsyncSession::new_v1(self.target, community.expose().as_bytes(), request_id).await
            }
            Credentials::V2c { community } => {
                AsyncSession::new_v2c(self.target, community.expose().as_bytes(), request_id).await
            }
            Credentials::V3 { .. } => {
                AsyncSession::new_v3(self.target, request_id, security(&self.credentials)).await
            }
        };
        opened.map_err(|e| SnmpError::Io {
            detail: format!("cannot open a UDP socket to {}: {e}", self.target),
        })
    }
}

impl SnmpClient for SnmpSession {
    fn version(&self) -> SnmpVersion {
        self.credentials.version()
    }

    fn get<'a>(&'a mut self, oids: &'a [Oid]) -> SnmpFuture<'a, Vec<VarBind>> {
        Box::pin(async move {
            if oids.is_empty() {
                return Ok(Vec::new());
            }
            self.execute(Op::Get, oids).await
        })
    }

    /// snmp2 builds single-OID GETNEXT requests only, so several OIDs are asked one by one.
    fn get_next<'a>(&'a mut self, oids: &'a [Oid]) -> SnmpFuture<'a, Vec<VarBind>> {
        Box::pin(async move {
            let mut out = Vec::with_capacity(oids.len());
            for oid in oids {
                out.extend(self.execute(Op::GetNext, std::slice::from_ref(oid)).await?);
            }
            Ok(out)
        })
    }

    fn get_bulk<'a>(
        &'a mut self,
        oids: &'a [Oid],
        non_repeaters: u32,
        max_repetitions: u32,
    ) -> SnmpFuture<'a, Vec<VarBind>> {
        Box::pin(async move {
            if self.credentials.version() == SnmpVersion::V1 {
                return Err(SnmpError::InvalidRequest {
                    detail: "GETBULK does not exist in SNMPv1".into(),
                });
            }
            if oids.is_empty() {
                return Ok(Vec::new());
            }
            let op = Op::GetBulk {
                non_repeaters,
                max_repetitions,
            };
            self.execute(op, oids).await
        })
    }
}

/// snmp2's security settings for v3 credentials. Both key-extension methods are set from the
/// protocol name; snmp2 applies one only where the hash is too short for the cipher.
fn security(credentials: &Credentials) -> v3::Security {
    let Credentials::V3 {
        user,
        auth,
        auth_pass,
        privacy,
        context,
    } = credentials
    else {
        return v3::Security::new(b"", b"");
    };
    let security = v3::Security::new(user.as_bytes(), auth_pass.expose().as_bytes())
        .with_auth_protocol(match auth {
            AuthProto::Md5 => v3::AuthProtocol::Md5,
            AuthProto::Sha1 => v3::AuthProtocol::Sha1,
            AuthProto::Sha224 => v3::AuthProtocol::Sha224,
            AuthProto::Sha256 => v3::AuthProtocol::Sha256,
            AuthProto::Sha384 => v3::AuthProtocol::Sha384,
            AuthProto::Sha512 => v3::AuthProtocol::Sha512,
        })
        .with_context_name(context);
    let Some(privacy) = privacy else {
        return security.with_auth(v3::Auth::AuthNoPriv);
    };
    let (cipher, extension) = match privacy.proto {
        PrivProto::Des => (v3::Cipher::Des, v3::KeyExtension::Blumenthal),
        PrivProto::Aes128 => (v3::Cipher::Aes128, v3::KeyExtension::Blumenthal),
        PrivProto::Aes192 => (v3::Cipher::Aes192, v3::KeyExtension::Blumenthal),
        PrivProto::Aes256 => (v3::Cipher::Aes256, v3::KeyExtension::Blumenthal),
        PrivProto::Aes192c => (v3::Cipher::Aes192, v3::KeyExtension::Reeder),
        PrivProto::Aes256c => (v3::Cipher::Aes256, v3::KeyExtension::Reeder),
    };
    security
        .with_auth(v3::Auth::AuthPriv {
            cipher,
            privacy_password: privacy.pass.expose().as_bytes().to_vec(),
        })
        .with_key_extension_method(extension)
}

/// Sorts snmp2's errors by what to do about them.
fn classify(error: snmp2::Error, target: SocketAddr) -> Failure {
    use snmp2::Error as E;
    use v3::AuthErrorKind as K;
    match error {
        E::Send | E::Receive => Failure::Retry {
            error: SnmpError::Io {
                detail: format!(
                    "sending to or receiving from {target} failed (nothing listening there, or \
                     no route)"
                ),
            },
            pace: true,
        },
        E::RequestIdMismatch => Failure::Retry {
            error: SnmpError::Decode {
                detail: "the answer was for another request (request ID mismatch)".into(),
            },
            pace: false,
        },
        E::AuthUpdated => Failure::Resend(SnmpError::Engine {
            detail: "the agent's engine boots or time changed".into(),
        }),
        E::AuthFailure(
            kind @ (K::EngineBootsMismatch
            | K::EngineTimeMismatch
            | K::EngineIdMismatch
            | K::EngineBootsNotProvided
            | K::SecurityNotReady),
        ) => Failure::Rediscover(SnmpError::Engine {
            detail: kind.to_string(),
        }),
        E::AuthFailure(kind @ (K::KeyExtensionRequired | K::KeyLengthMismatch)) => {
            Failure::Fatal(SnmpError::Config {
                detail: kind.to_string(),
            })
        }
        E::AuthFailure(
            kind @ (K::UnsupportedUSM | K::PrivLengthMismatch | K::PayloadLengthMismatch),
        ) => Failure::Fatal(SnmpError::Decode {
            detail: kind.to_string(),
        }),
        // NotAuthenticated (the agent's report: unknown user or wrong digest), a signature
        // that does not verify, an unencrypted answer to an encrypted request (the agent's
        // report that it could not decrypt ours), and whatever a later snmp2 adds.
        E::AuthFailure(kind) => Failure::Fatal(SnmpError::AuthFailure {
            detail: kind.to_string(),
        }),
        E::Crypto(message) => Failure::Fatal(SnmpError::Decode {
            detail: format!("decryption failed: {message}"),
        }),
        E::CommunityMismatch => Failure::Fatal(SnmpError::Decode {
            detail: "the answer carries another community or user name".into(),
        }),
        E::AsnWrongType => Failure::Fatal(SnmpError::Decode {
            detail: "the answer is not a Response PDU (or an ASN.1 type is wrong)".into(),
        }),
        other => Failure::Fatal(SnmpError::Decode {
            detail: other.to_string(),
        }),
    }
}

/// A random first request ID; falls back to the clock if the OS generator fails.
fn first_request_id() -> i32 {
    let bytes = crate::random_bytes::<4>().unwrap_or_else(|_| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(1)
            .to_le_bytes()
    });
    // Positive and well below i32::MAX: some agents mishandle negative IDs or the wrap.
    i32::from_le_bytes(bytes) & 0x3fff_ffff
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_password_fails_at_construction_not_in_snmp2() {
        let credentials = Credentials::V3 {
            user: "u".into(),
            auth: AuthProto::Sha1,
            auth_pass: "".into(),
            privacy: None,
            context: String::new(),
        };
        let err = SnmpSession::new(
            "127.0.0.1:161".parse().unwrap(),
            credentials,
            SessionOptions::default(),
        )
        .unwrap_err();
        assert!(matches!(err, SnmpError::Config { .. }), "{err:?}");
    }

    #[test]
    fn debug_of_a_session_shows_no_secret() {
        let session = SnmpSession::new(
            "127.0.0.1:161".parse().unwrap(),
            Credentials::V2c {
                community: "very-secret-community".into(),
            },
            SessionOptions::default(),
        )
        .unwrap();
        let text = format!("{session:?}");
        assert!(!text.contains("very-secret-community"), "{text}");
    }
}
