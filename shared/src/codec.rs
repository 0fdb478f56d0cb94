//! Encoding and decoding of report envelopes, with the version dispatch.

use crate::v1;

/// A decoded envelope of any supported protocol version.
#[derive(Debug, Clone, PartialEq)]
pub enum Envelope {
    V1(v1::Envelope),
}

impl Envelope {
    /// The protocol version this envelope was encoded with.
    pub fn version(&self) -> u16 {
        match self {
            Envelope::V1(_) => 1,
        }
    }

    /// The agent id the sender claims; the collector checks it against the client certificate.
    pub fn agent_id(&self) -> &str {
        match self {
            Envelope::V1(e) => &e.agent_id,
        }
    }

    /// The sender's sequence number, unique per agent.
    pub fn seq(&self) -> u64 {
        match self {
            Envelope::V1(e) => e.seq,
        }
    }
}

/// Why a report body could not be decoded. The `Display` text is sent back to the agent and
/// names the problem, so it must say what is wrong without echoing the body.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("empty report body")]
    Empty,
    #[error("malformed protocol version prefix")]
    BadVersionPrefix,
    #[error(
        "unsupported protocol version {version}: this collector decodes versions {supported:?}"
    )]
    UnsupportedVersion {
        version: u16,
        supported: &'static [u16],
    },
    #[error("truncated report: protocol v{version} envelope ends early")]
    Truncated { version: u16 },
    #[error("malformed protocol v{version} envelope: {detail}")]
    Malformed { version: u16, detail: String },
    #[error("{count} trailing bytes after the protocol v{version} envelope")]
    TrailingBytes { version: u16, count: usize },
}

/// Decodes one report body. The whole body must be exactly one envelope.
pub fn decode(bytes: &[u8]) -> Result<Envelope, DecodeError> {
    if bytes.is_empty() {
        return Err(DecodeError::Empty);
    }
    let (version, rest) =
        postcard::take_from_bytes::<u16>(bytes).map_err(|_| DecodeError::BadVersionPrefix)?;
    match version {
        1 => {
            let (envelope, rest) = postcard::take_from_bytes::<v1::Envelope>(rest)
                .map_err(|error| body_error(version, error))?;
            if !rest.is_empty() {
                return Err(DecodeError::TrailingBytes {
                    version,
                    count: rest.len(),
                });
            }
            Ok(Envelope::V1(envelope))
        }
        _ => Err(DecodeError::UnsupportedVersion {
            version,
            supported: crate::SUPPORTED_VERSIONS,
        }),
    }
}

fn body_error(version: u16, error: postcard::Error) -> DecodeError {
    match error {
        postcard::Error::DeserializeUnexpectedEnd => DecodeError::Truncated { version },
        other => DecodeError::Malformed {
            version,
            detail: other.to_string(),
        },
    }
}

/// Encoding failed; only possible for values postcard cannot represent, which the protocol types
/// never hold, so callers treat it as a bug report rather than a retryable condition.
#[derive(Debug, thiserror::Error)]
#[error("cannot encode report: {0}")]
pub struct EncodeError(#[from] postcard::Error);

/// Encodes a v1 envelope: the version prefix, then the envelope.
pub fn encode_v1(envelope: &v1::Envelope) -> Result<Vec<u8>, EncodeError> {
    let out = postcard::to_extend(&1u16, Vec::with_capacity(1024))?;
    Ok(postcard::to_extend(envelope, out)?)
}
