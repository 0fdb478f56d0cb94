//! `steward_shared::decode`: the versioned postcard envelope every report body goes through.
//! Whatever decodes must survive a round trip: re-encoded with `encode_v1` it decodes again to
//! the same envelope, and re-encodes to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use steward_shared::{Envelope, decode, encode_v1};

fuzz_target!(|data: &[u8]| {
    let Ok(envelope) = decode(data) else {
        return;
    };
    let Envelope::V1(v1) = &envelope;
    let bytes = encode_v1(v1).expect("a decoded envelope encodes");
    let again = decode(&bytes).expect("a re-encoded envelope decodes");
    // Debug rather than PartialEq: a NaN metric is a legal value and is not equal to itself.
    assert_eq!(format!("{envelope:?}"), format!("{again:?}"));
    let Envelope::V1(v1_again) = &again;
    assert_eq!(bytes, encode_v1(v1_again).expect("encodes"));
});
