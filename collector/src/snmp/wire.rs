//! Conversions between snmp2's borrowed wire types and the owned [`super::types`], with the
//! checks snmp2 leaves out: error status, short answers, non-SNMP value types, and OIDs
//! encoded here rather than by asn1-rs (see [`decode_oid`]).

use std::borrow::Cow;

use snmp2::Pdu;

use super::client::{ErrorStatus, SnmpError};
use super::types::{Oid, Value, VarBind};

/// One wire request.
#[derive(Clone, Copy, Debug)]
pub enum Op {
    Get,
    GetNext,
    GetBulk {
        non_repeaters: u32,
        max_repetitions: u32,
    },
}

/// Turns a response PDU into owned varbinds, checking the error status and that nothing is
/// missing (snmp2's varbind iterator ends silently at the first varbind it cannot decode).
pub fn decode_response(
    pdu: &Pdu<'_>,
    op: Op,
    requested: &[Oid],
) -> Result<Vec<VarBind>, SnmpError> {
    if pdu.error_status != 0 {
        return Err(match ErrorStatus::from_code(pdu.error_status) {
            ErrorStatus::TooBig => SnmpError::TooBig,
            status => SnmpError::Status {
                status,
                index: pdu.error_index,
            },
        });
    }
    let mut varbinds = Vec::new();
    for (name, value) in pdu.varbinds.clone() {
        let oid = decode_oid(name.as_bytes())?;
        let value = decode_value(value)?;
        varbinds.push(VarBind { oid, value });
    }
    match op {
        Op::Get | Op::GetNext if varbinds.len() != requested.len() => Err(SnmpError::Decode {
            detail: format!(
                "{} varbind(s) asked for, {} decoded from the answer",
                requested.len(),
                varbinds.len()
            ),
        }),
        Op::Get => {
            for (got, asked) in varbinds.iter().zip(requested) {
                if got.oid != *asked {
                    return Err(SnmpError::Decode {
                        detail: format!("the answer names {} where {asked} was asked", got.oid),
                    });
                }
            }
            Ok(varbinds)
        }
        Op::GetNext => Ok(varbinds),
        Op::GetBulk {
            non_repeaters,
            max_repetitions,
        } => {
            let total = u64::try_from(requested.len()).unwrap_or(u64::MAX);
            let singles = u64::from(non_repeaters).min(total);
            let most = singles.saturating_add((total - singles) * u64::from(max_repetitions));
            if u64::try_from(varbinds.len()).unwrap_or(u64::MAX) > most {
                return Err(SnmpError::Decode {
                    detail: format!(
                        "{} varbinds in a GETBULK answer of at most {most}",
                        varbinds.len()
                    ),
                });
            }
            Ok(varbinds)
        }
    }
}

fn decode_value(value: snmp2::Value<'_>) -> Result<Value, SnmpError> {
    use snmp2::Value as S;
    Ok(match value {
        S::Integer(n) => Value::Integer(n),
        S::OctetString(bytes) => Value::OctetString(bytes.to_vec()),
        S::ObjectIdentifier(oid) => Value::ObjectIdentifier(decode_oid(oid.as_bytes())?),
        S::IpAddress(address) => Value::IpAddress(address),
        S::Counter32(n) => Value::Counter32(n),
        S::Unsigned32(n) => Value::Unsigned32(n),
        S::Timeticks(n) => Value::Timeticks(n),
        S::Counter64(n) => Value::Counter64(n),
        S::Opaque(bytes) => Value::Opaque(bytes.to_vec()),
        S::Null => Value::Null,
        S::NoSuchObject => Value::NoSuchObject,
        S::NoSuchInstance => Value::NoSuchInstance,
        S::EndOfMibView => Value::EndOfMibView,
        S::Boolean(_) => return Err(non_smi("BOOLEAN")),
        S::Sequence(_) | S::Set(_) | S::Constructed(..) => return Err(non_smi("constructed")),
        _ => return Err(non_smi("PDU")),
    })
}

fn non_smi(kind: &str) -> SnmpError {
    SnmpError::Decode {
        detail: format!("a varbind value of ASN.1 type {kind}, which SNMP does not use"),
    }
}

/// BER content octets of an OID → arcs. Written here rather than taken from asn1-rs, whose
/// iterator mis-splits a first subidentifier of 80 or more (OIDs under `2.40` and up).
fn decode_oid(bytes: &[u8]) -> Result<Oid, SnmpError> {
    let bad = |why: &str| SnmpError::Decode {
        detail: format!("bad OID encoding ({why}): {}", hex::encode(bytes)),
    };
    let mut subidentifiers = Vec::new();
    let mut current: u64 = 0;
    let mut pending = false;
    for &byte in bytes {
        if !pending && byte == 0x80 {
            return Err(bad("non-minimal subidentifier"));
        }
        current = (current << 7) | u64::from(byte & 0x7f);
        if current > u64::from(u32::MAX) + 80 {
            return Err(bad("arc above 32 bits"));
        }
        pending = byte & 0x80 != 0;
        if !pending {
            subidentifiers.push(current);
            current = 0;
        }
    }
    if pending {
        return Err(bad("truncated subidentifier"));
    }
    let Some((&first, rest)) = subidentifiers.split_first() else {
        return Ok(Oid(Vec::new()));
    };
    let (a, b) = match first {
        0..40 => (0, first),
        40..80 => (1, first - 40),
        _ => (2, first - 80),
    };
    let mut arcs = Vec::with_capacity(subidentifiers.len() + 1);
    arcs.push(a);
    arcs.push(u32::try_from(b).map_err(|_| bad("arc above 32 bits"))?);
    for &arc in rest {
        arcs.push(u32::try_from(arc).map_err(|_| bad("arc above 32 bits"))?);
    }
    Ok(Oid(arcs))
}

/// Arcs → snmp2's OID (BER content octets).
pub(super) fn encode_oid(oid: &Oid) -> Result<snmp2::Oid<'static>, SnmpError> {
    let invalid = |why: &str| SnmpError::InvalidRequest {
        detail: format!("OID {oid} cannot be sent: {why}"),
    };
    let [first, second, rest @ ..] = oid.0.as_slice() else {
        return Err(invalid("fewer than two arcs"));
    };
    let head = match (*first, *second) {
        (0 | 1, b) if b < 40 => u64::from(*first) * 40 + u64::from(b),
        (2, b) => 80 + u64::from(b),
        _ => {
            return Err(invalid(
                "the first arc must be 0 or 1 (second below 40), or 2",
            ));
        }
    };
    let mut bytes = Vec::with_capacity(oid.0.len() + 4);
    push_subidentifier(&mut bytes, head);
    for &arc in rest {
        push_subidentifier(&mut bytes, u64::from(arc));
    }
    Ok(snmp2::Oid::new(Cow::Owned(bytes)))
}

fn push_subidentifier(out: &mut Vec<u8>, value: u64) {
    let mut groups = [0u8; 10];
    let mut n = 0;
    let mut rest = value;
    loop {
        groups[n] = u8::try_from(rest & 0x7f).unwrap_or(0);
        n += 1;
        rest >>= 7;
        if rest == 0 {
            break;
        }
    }
    for i in (0..n).rev() {
        out.push(if i == 0 { groups[i] } else { groups[i] | 0x80 });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oid(s: &str) -> Oid {
        s.parse().unwrap()
    }

    #[test]
    fn oids_round_trip_through_ber() {
        for text in [
            "1.3.6.1.2.1.1.1.0",
            "1.3.6.1.4.1.2021.10.1.3.1",
            "1.3.6.1.2.1.31.1.1.1.6.4294967295",
            "0.0",
            "2.999.3",
            "2.39",
        ] {
            let encoded = encode_oid(&oid(text)).unwrap();
            assert_eq!(decode_oid(encoded.as_bytes()).unwrap(), oid(text), "{text}");
        }
        // The same bytes snmp2/asn1-rs produce for ordinary OIDs.
        let ours = encode_oid(&oid("1.3.6.1.2.1.1.5.0")).unwrap();
        let theirs = snmp2::Oid::from(&[1, 3, 6, 1, 2, 1, 1, 5, 0]).unwrap();
        assert_eq!(ours.as_bytes(), theirs.as_bytes());
    }

    #[test]
    fn malformed_oids_are_errors_not_guesses() {
        assert!(matches!(
            decode_oid(&[0x2b, 0x86]),
            Err(SnmpError::Decode { .. })
        ));
        assert!(matches!(
            decode_oid(&[0x2b, 0x80, 0x01]),
            Err(SnmpError::Decode { .. })
        ));
        assert!(matches!(
            decode_oid(&[0x2b, 0x9f, 0xff, 0xff, 0xff, 0x7f]),
            Err(SnmpError::Decode { .. })
        ));
        assert!(matches!(
            encode_oid(&oid("3.1")),
            Err(SnmpError::InvalidRequest { .. })
        ));
        assert!(matches!(
            encode_oid(&Oid(vec![1])),
            Err(SnmpError::InvalidRequest { .. })
        ));
    }
}
