//! DMI / SMBIOS system identification from `/sys/class/dmi/id/*`, the kernel's decoded copy of
//! SMBIOS types 0–3. Serial numbers and the UUID are readable by root only: without root they are
//! left empty and the source says so in a warning rather than failing. Values are kept as the
//! firmware wrote them ("To be filled by O.E.M." included): the collector's identification
//! decides what is junk.

use steward_shared::v1::{SourceStatus, SystemInfo};

use super::fs::{FILE_CAP, FileRead, Root};

const DIR: &str = "sys/class/dmi/id";

/// Every attribute read, in the order of [`SystemInfo`]'s fields.
pub const FIELDS: [&str; 16] = [
    "sys_vendor",
    "product_name",
    "product_version",
    "product_serial",
    "product_uuid",
    "product_sku",
    "product_family",
    "bios_vendor",
    "bios_version",
    "bios_date",
    "board_vendor",
    "board_name",
    "board_serial",
    "chassis_type",
    "chassis_asset_tag",
    "chassis_serial",
];

pub fn collect(root: &Root) -> (SystemInfo, SourceStatus) {
    let reads: Vec<(&str, FileRead)> = FIELDS
        .iter()
        .map(|field| {
            let read = FileRead::from_result(root.read(&format!("{DIR}/{field}"), FILE_CAP));
            (*field, read)
        })
        .collect();
    parse(&reads)
}

/// Builds [`SystemInfo`] from each attribute's read outcome. Missing attributes (no DMI at all on
/// most ARM boards, or an old kernel) are simply empty; denied ones become one warning; any other
/// read error fails the source but keeps the values that were read.
pub fn parse(reads: &[(&str, FileRead)]) -> (SystemInfo, SourceStatus) {
    let mut info = SystemInfo::default();
    let mut denied: Vec<&str> = Vec::new();
    let mut failures: Vec<String> = Vec::new();
    let mut warnings: Vec<String> = Vec::new();
    for (field, read) in reads {
        let value = match read {
            FileRead::Bytes(bytes) => super::fs::clean_string(bytes),
            FileRead::Missing => continue,
            FileRead::Denied => {
                denied.push(field);
                continue;
            }
            FileRead::Failed(error) => {
                failures.push(format!("cannot read /{DIR}/{field}: {error}"));
                continue;
            }
        };
        let slot = match *field {
            "sys_vendor" => &mut info.vendor,
            "product_name" => &mut info.product,
            "product_version" => &mut info.version,
            "product_serial" => &mut info.serial,
            "product_uuid" => &mut info.uuid,
            "product_sku" => &mut info.sku,
            "product_family" => &mut info.family,
            "bios_vendor" => &mut info.bios_vendor,
            "bios_version" => &mut info.bios_version,
            "bios_date" => &mut info.bios_date,
            "board_vendor" => &mut info.board_vendor,
            "board_name" => &mut info.board_product,
            "board_serial" => &mut info.board_serial,
            "chassis_asset_tag" => &mut info.chassis_asset_tag,
            "chassis_serial" => &mut info.chassis_serial,
            "chassis_type" => {
                match value.parse::<u8>() {
                    Ok(kind) => info.chassis_type = kind,
                    Err(_) if value.is_empty() => {}
                    Err(_) => warnings.push(format!(
                        "/{DIR}/chassis_type is not an SMBIOS chassis number: {value:?}"
                    )),
                }
                continue;
            }
            _ => continue,
        };
        *slot = value;
    }
    if !denied.is_empty() {
        let verb = if denied.len() == 1 { "needs" } else { "need" };
        warnings.insert(
            0,
            format!(
                "{} {verb} root; run the agent as root or grant CAP_DAC_READ_SEARCH",
                denied.join(", ")
            ),
        );
    }
    let filled = [
        &info.vendor,
        &info.product,
        &info.serial,
        &info.uuid,
        &info.bios_vendor,
        &info.board_vendor,
    ]
    .iter()
    .any(|v| !v.is_empty())
        || info.chassis_type != 0;
    let error = (!failures.is_empty()).then(|| failures.join("; "));
    let status = SourceStatus {
        source: "dmi".into(),
        items: u32::from(filled),
        error,
        warnings,
    };
    (info, status)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(text: &str) -> FileRead {
        FileRead::Bytes(text.as_bytes().to_vec())
    }

    #[test]
    fn values_are_trimmed_and_junk_is_kept() {
        let reads = [
            ("sys_vendor", bytes("Dell Inc.\n")),
            ("product_name", bytes("PowerEdge R740\n")),
            ("product_serial", bytes("  7XK2QH3 \n")),
            ("board_serial", bytes("To be filled by O.E.M.\n")),
            ("chassis_type", bytes("23\n")),
        ];
        let (info, status) = parse(&reads);
        assert_eq!(info.vendor, "Dell Inc.");
        assert_eq!(info.product, "PowerEdge R740");
        assert_eq!(info.serial, "7XK2QH3");
        assert_eq!(info.board_serial, "To be filled by O.E.M.");
        assert_eq!(info.chassis_type, 23);
        assert_eq!(status.items, 1);
        assert_eq!(status.error, None);
        assert!(status.warnings.is_empty());
    }

    #[test]
    fn root_only_fields_are_a_warning_not_a_failure() {
        let reads = [
            ("sys_vendor", bytes("LENOVO\n")),
            ("product_serial", FileRead::Denied),
            ("product_uuid", FileRead::Denied),
            ("board_serial", FileRead::Denied),
        ];
        let (info, status) = parse(&reads);
        assert_eq!(info.vendor, "LENOVO");
        assert_eq!(info.serial, "");
        assert_eq!(status.error, None);
        assert_eq!(
            status.warnings,
            [
                "product_serial, product_uuid, board_serial need root; run the agent as root or grant CAP_DAC_READ_SEARCH"
            ]
        );
    }

    #[test]
    fn non_utf8_strings_are_lossy() {
        let (info, _) = parse(&[(
            "sys_vendor",
            FileRead::Bytes(b"Acme\xff\xfeCorp\n".to_vec()),
        )]);
        assert_eq!(info.vendor, "Acme\u{fffd}\u{fffd}Corp");
    }

    #[test]
    fn no_dmi_at_all_is_empty_not_an_error() {
        let reads: Vec<(&str, FileRead)> = FIELDS.iter().map(|f| (*f, FileRead::Missing)).collect();
        let (info, status) = parse(&reads);
        assert_eq!(info, SystemInfo::default());
        assert_eq!(status.items, 0);
        assert_eq!(status.error, None);
    }

    #[test]
    fn a_read_error_names_the_file_and_keeps_the_rest() {
        let reads = [
            ("sys_vendor", bytes("HP\n")),
            (
                "bios_version",
                FileRead::Failed("Input/output error (os error 5)".into()),
            ),
        ];
        let (info, status) = parse(&reads);
        assert_eq!(info.vendor, "HP");
        assert_eq!(
            status.error.as_deref(),
            Some("cannot read /sys/class/dmi/id/bios_version: Input/output error (os error 5)")
        );
    }

    #[test]
    fn bad_chassis_type_is_a_warning() {
        let (info, status) = parse(&[("chassis_type", bytes("rack\n"))]);
        assert_eq!(info.chassis_type, 0);
        assert_eq!(status.warnings.len(), 1);
        let (info, _) = parse(&[("chassis_type", bytes("300\n"))]);
        assert_eq!(info.chassis_type, 0);
    }
}
