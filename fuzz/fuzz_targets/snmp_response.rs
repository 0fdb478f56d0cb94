//! An SNMP response as the collector's session receives it: snmp2 parses the datagram into a
//! PDU (v1/v2c, or v3 through the USM of a user without authentication), then
//! `wire::decode_response` checks it and converts OIDs (our own BER codec) and values.
//!
//! Input: one selector byte (which request the answer is matched against, and v3 or not), then
//! the datagram.
#![no_main]

use libfuzzer_sys::fuzz_target;
use snmp2::{Pdu, v3};
use steward_collector::snmp::types::Oid;
use steward_collector::snmp::wire::{Op, decode_response};

fn requested() -> Vec<Oid> {
    vec![
        Oid(vec![1, 3, 6, 1, 2, 1, 1, 1, 0]),
        Oid(vec![1, 3, 6, 1, 2, 1, 1, 3, 0]),
        Oid(vec![1, 3, 6, 1, 2, 1, 2, 2, 1, 10]),
    ]
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, datagram)) = data.split_first() else {
        return;
    };
    let requested = requested();
    let asked = &requested[..usize::from(selector >> 4) % (requested.len() + 1)];
    let op = match selector & 3 {
        0 => Op::Get,
        1 => Op::GetNext,
        _ => Op::GetBulk {
            non_repeaters: u32::from(selector >> 6),
            max_repetitions: u32::from(selector & 0x3c),
        },
    };
    let mut security;
    let pdu = if selector & 4 == 0 {
        Pdu::from_bytes(datagram)
    } else {
        security = v3::Security::new(b"fuzz", b"").with_auth(v3::Auth::NoAuthNoPriv);
        Pdu::from_bytes_with_security(datagram, Some(&mut security))
    };
    let Ok(pdu) = pdu else {
        return;
    };
    let _ = decode_response(&pdu, op, asked);
});
