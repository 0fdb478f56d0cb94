//! Placeholder identifiers. Firmware ships boards with serials like "To be filled by O.E.M." and
//! UUIDs of all zeros; matching on them would merge unrelated machines, so they never identify.

/// Serials (compared case-insensitively, trimmed) that vendors leave in unconfigured firmware.
const PLACEHOLDER_SERIALS: &[&str] = &[
    "to be filled by o.e.m.",
    "to be filled by oem",
    "default string",
    "system serial number",
    "chassis serial number",
    "base board serial number",
    "0123456789",
    "123456789",
    "1234567890",
    "not specified",
    "not applicable",
    "not available",
    "none",
    "n/a",
    "na",
    "oem",
    "serial",
    "invalid",
    "unknown",
    "empty",
    "xxxxxxxxxx",
];

/// UUIDs (lower case) seen on many unrelated machines.
const PLACEHOLDER_UUIDS: &[&str] = &[
    "03000200-0400-0500-0006-000700080009",
    "00020003-0004-0005-0006-000700080009",
    "12345678-1234-5678-90ab-cddeefaabbcc",
];

/// The serial, trimmed, if it can identify a machine.
pub fn usable_serial(serial: &str) -> Option<String> {
    let trimmed = serial.trim();
    let lower = trimmed.to_ascii_lowercase();
    let repeated = lower
        .chars()
        .filter(|c| !matches!(c, '-' | ' ' | '.' | ':'))
        .collect::<Vec<_>>();
    let one_char = repeated.windows(2).all(|w| w[0] == w[1]);
    if trimmed.is_empty() || one_char || PLACEHOLDER_SERIALS.contains(&lower.as_str()) {
        return None;
    }
    Some(trimmed.to_string())
}

/// The UUID, lower case, if it can identify a machine (not all zeros, all F, or a known dummy).
pub fn usable_uuid(uuid: &str) -> Option<String> {
    let lower = uuid.trim().to_ascii_lowercase();
    let hex: String = lower.chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    if hex.chars().all(|c| c == '0')
        || hex.chars().all(|c| c == 'f')
        || PLACEHOLDER_UUIDS.contains(&lower.as_str())
    {
        return None;
    }
    Some(lower)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_never_identify() {
        for serial in [
            "",
            "  ",
            "To Be Filled By O.E.M.",
            "Default string",
            "System Serial Number",
            "0123456789",
            "Not Specified",
            "0000000000",
            "00-00-00",
            "FFFFFFFF",
        ] {
            assert_eq!(usable_serial(serial), None, "{serial:?}");
        }
        assert_eq!(usable_serial(" CZ1234ABC "), Some("CZ1234ABC".into()));
        for uuid in [
            "00000000-0000-0000-0000-000000000000",
            "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF",
            "03000200-0400-0500-0006-000700080009",
            "not-a-uuid",
        ] {
            assert_eq!(usable_uuid(uuid), None, "{uuid:?}");
        }
        assert_eq!(
            usable_uuid("4C4C4544-0042-3510-8052-B7C04F4E3232"),
            Some("4c4c4544-0042-3510-8052-b7c04f4e3232".into())
        );
    }
}
