//! Owned SNMP values, independent of the client library: what a walk returns and what the
//! MIB modules decode. Recorded walks (test goldens) are files of these, one varbind a line.

use std::fmt;
use std::str::FromStr;

/// An object identifier, e.g. `1.3.6.1.2.1.1.1.0`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Oid(pub Vec<u32>);

impl Oid {
    pub fn starts_with(&self, prefix: &Oid) -> bool {
        self.0.starts_with(&prefix.0)
    }

    /// The arcs after `prefix` (the table index of a column), or `None` if outside it.
    pub fn suffix(&self, prefix: &Oid) -> Option<&[u32]> {
        self.0.strip_prefix(prefix.0.as_slice())
    }

    pub fn child(&self, arcs: &[u32]) -> Oid {
        let mut out = self.0.clone();
        out.extend_from_slice(arcs);
        Oid(out)
    }
}

impl fmt::Display for Oid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, arc) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            write!(f, "{arc}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Oid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Oid {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim().trim_start_matches('.');
        if s.is_empty() {
            return Err("empty OID".into());
        }
        s.split('.')
            .map(|arc| {
                arc.parse::<u32>()
                    .map_err(|_| format!("bad OID arc {arc:?} in {s:?}"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Oid)
    }
}

/// An SNMP value, owned. The three exception values are kept so callers can tell "absent"
/// from "empty".
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Value {
    Integer(i64),
    OctetString(Vec<u8>),
    ObjectIdentifier(Oid),
    IpAddress([u8; 4]),
    Counter32(u32),
    Unsigned32(u32),
    Timeticks(u32),
    Counter64(u64),
    Opaque(Vec<u8>),
    Null,
    NoSuchObject,
    NoSuchInstance,
    EndOfMibView,
}

impl Value {
    /// The value as an unsigned number, for any integer-like type.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::Integer(n) => u64::try_from(n).ok(),
            Value::Counter32(n) | Value::Unsigned32(n) | Value::Timeticks(n) => Some(n.into()),
            Value::Counter64(n) => Some(n),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::Integer(n) => Some(n),
            _ => self.as_u64().and_then(|n| i64::try_from(n).ok()),
        }
    }

    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::OctetString(b) | Value::Opaque(b) => Some(b),
            _ => None,
        }
    }

    /// An octet string as text: UTF-8 (lossy), trailing NULs and whitespace trimmed.
    pub fn as_text(&self) -> Option<String> {
        self.as_bytes().map(|b| {
            String::from_utf8_lossy(b)
                .trim_end_matches(['\0', ' ', '\n', '\r', '\t'])
                .trim_start()
                .to_string()
        })
    }

    pub fn as_oid(&self) -> Option<&Oid> {
        match self {
            Value::ObjectIdentifier(o) => Some(o),
            _ => None,
        }
    }

    /// True for noSuchObject, noSuchInstance and endOfMibView.
    pub fn is_exception(&self) -> bool {
        matches!(
            self,
            Value::NoSuchObject | Value::NoSuchInstance | Value::EndOfMibView
        )
    }
}

/// One variable binding.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct VarBind {
    pub oid: Oid,
    pub value: Value,
}

/// Writes a value in the recorded-walk format (`OID = TYPE: VALUE`, octet strings as hex).
impl fmt::Display for VarBind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} = ", self.oid)?;
        match &self.value {
            Value::Integer(n) => write!(f, "INTEGER: {n}"),
            Value::OctetString(b) => write!(f, "Hex-STRING: {}", hex::encode(b)),
            Value::ObjectIdentifier(o) => write!(f, "OID: {o}"),
            Value::IpAddress(a) => write!(f, "IpAddress: {}.{}.{}.{}", a[0], a[1], a[2], a[3]),
            Value::Counter32(n) => write!(f, "Counter32: {n}"),
            Value::Unsigned32(n) => write!(f, "Gauge32: {n}"),
            Value::Timeticks(n) => write!(f, "Timeticks: {n}"),
            Value::Counter64(n) => write!(f, "Counter64: {n}"),
            Value::Opaque(b) => write!(f, "Opaque: {}", hex::encode(b)),
            Value::Null => write!(f, "NULL"),
            Value::NoSuchObject => write!(f, "noSuchObject"),
            Value::NoSuchInstance => write!(f, "noSuchInstance"),
            Value::EndOfMibView => write!(f, "endOfMibView"),
        }
    }
}

/// Parses one line of the recorded-walk format written by `Display` above.
impl FromStr for VarBind {
    type Err = String;
    fn from_str(line: &str) -> Result<Self, Self::Err> {
        let (oid, rest) = line
            .split_once(" = ")
            .ok_or_else(|| format!("no ' = ' in {line:?}"))?;
        let oid: Oid = oid.parse()?;
        // Split before trimming: an empty octet string is written `Hex-STRING: ` and must read
        // back as empty, not as a type named `Hex-STRING:`.
        let rest = rest.trim_end_matches(['\n', '\r']);
        let (kind, text) = match rest.split_once(": ") {
            Some((kind, text)) => (kind, text.trim_end()),
            None => (rest.trim_end().trim_end_matches(':'), ""),
        };
        let num = |t: &str| {
            t.trim()
                .parse::<u64>()
                .map_err(|_| format!("bad number {t:?} in {line:?}"))
        };
        let bytes =
            |t: &str| hex::decode(t.trim()).map_err(|_| format!("bad hex {t:?} in {line:?}"));
        let value = match kind {
            "INTEGER" => Value::Integer(
                text.trim()
                    .parse()
                    .map_err(|_| format!("bad integer {text:?} in {line:?}"))?,
            ),
            "Hex-STRING" => Value::OctetString(bytes(text)?),
            "STRING" => Value::OctetString(text.as_bytes().to_vec()),
            "OID" => Value::ObjectIdentifier(text.parse()?),
            "IpAddress" => {
                let parts = text
                    .trim()
                    .split('.')
                    .map(|p| p.parse::<u8>())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|_| format!("bad IpAddress {text:?} in {line:?}"))?;
                let a: [u8; 4] = parts
                    .try_into()
                    .map_err(|_| format!("bad IpAddress {text:?} in {line:?}"))?;
                Value::IpAddress(a)
            }
            "Counter32" | "Gauge32" | "Unsigned32" | "Timeticks" => {
                let n =
                    u32::try_from(num(text)?).map_err(|_| format!("over 32 bits in {line:?}"))?;
                match kind {
                    "Counter32" => Value::Counter32(n),
                    "Timeticks" => Value::Timeticks(n),
                    _ => Value::Unsigned32(n),
                }
            }
            "Counter64" => Value::Counter64(num(text)?),
            "Opaque" => Value::Opaque(bytes(text)?),
            "NULL" => Value::Null,
            "noSuchObject" => Value::NoSuchObject,
            "noSuchInstance" => Value::NoSuchInstance,
            "endOfMibView" => Value::EndOfMibView,
            other => return Err(format!("unknown value type {other:?} in {line:?}")),
        };
        Ok(VarBind { oid, value })
    }
}

/// Parses a recorded walk: one varbind a line; blank lines and `#` comments skipped.
pub fn parse_walk(text: &str) -> Result<Vec<VarBind>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|(n, l)| l.parse().map_err(|e| format!("line {}: {e}", n + 1)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varbinds_round_trip_through_the_walk_format() {
        let binds = vec![
            VarBind {
                oid: "1.3.6.1.2.1.1.1.0".parse().unwrap(),
                value: Value::OctetString(b"Linux r1".to_vec()),
            },
            VarBind {
                oid: "1.3.6.1.2.1.1.2.0".parse().unwrap(),
                value: Value::ObjectIdentifier("1.3.6.1.4.1.9.1.1".parse().unwrap()),
            },
            VarBind {
                oid: "1.3.6.1.2.1.1.3.0".parse().unwrap(),
                value: Value::Timeticks(12345),
            },
            VarBind {
                oid: "1.3.6.1.2.1.31.1.1.1.6.1".parse().unwrap(),
                value: Value::Counter64(u64::MAX),
            },
            VarBind {
                oid: "1.3.6.1.2.1.4.20.1.1.10.0.0.1".parse().unwrap(),
                value: Value::IpAddress([10, 0, 0, 1]),
            },
            VarBind {
                oid: "1.3.6.1.2.1.2.2.1.8.1".parse().unwrap(),
                value: Value::Integer(-3),
            },
            VarBind {
                oid: "1.3.6.1.2.1.2.2.1.5.1".parse().unwrap(),
                value: Value::NoSuchInstance,
            },
            VarBind {
                oid: "1.3.6.1.2.1.31.1.1.1.18.1".parse().unwrap(),
                value: Value::OctetString(Vec::new()),
            },
        ];
        let text: String = binds.iter().map(|b| format!("{b}\n")).collect();
        assert_eq!(parse_walk(&text).unwrap(), binds);
    }

    #[test]
    fn a_bad_line_names_its_number() {
        let err =
            parse_walk("1.3.6.1.2.1.1.3.0 = Timeticks: 5\n1.3.6 = Counter32: x\n").unwrap_err();
        assert!(err.starts_with("line 2:"), "{err}");
    }
}
