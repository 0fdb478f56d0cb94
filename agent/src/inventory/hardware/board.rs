//! The board of ARM machines (IoT gateways, Raspberry Pis): the device tree's `model` and
//! `serial-number`, NUL-terminated strings. Without them (older Raspberry Pi kernels), the
//! `Model` and `Serial` lines of `/proc/cpuinfo` stand in. x86 machines have neither: their board
//! is in DMI, and this source reports nothing.

use steward_shared::v1::{BoardInfo, SourceStatus};

use super::cpu;
use super::fs::{FILE_CAP, Root, clean_string};

pub fn collect(root: &Root, cpuinfo: &str) -> (Option<BoardInfo>, SourceStatus) {
    let model = root.read("proc/device-tree/model", FILE_CAP).ok();
    let serial = root.read("proc/device-tree/serial-number", FILE_CAP).ok();
    let board = parse(model.as_deref(), serial.as_deref(), cpuinfo);
    let status = SourceStatus {
        source: "board".into(),
        items: u32::from(board.is_some()),
        error: None,
        warnings: Vec::new(),
    };
    (board, status)
}

/// The board from the device tree's `model` and `serial-number` bytes, each falling back to
/// cpuinfo; `None` when nothing names a board. An all-zero serial (boards without one) is empty.
pub fn parse(model: Option<&[u8]>, serial: Option<&[u8]>, cpuinfo: &str) -> Option<BoardInfo> {
    let from_tree = |bytes: Option<&[u8]>| bytes.map(clean_string).filter(|s| !s.is_empty());
    let model = from_tree(model)
        .or_else(|| cpu::first(cpuinfo, "Model").map(str::to_string))
        .unwrap_or_default();
    let serial = from_tree(serial)
        .or_else(|| cpu::first(cpuinfo, "Serial").map(str::to_string))
        .filter(|s| !s.chars().all(|c| c == '0'))
        .unwrap_or_default();
    (!model.is_empty() || !serial.is_empty()).then_some(BoardInfo { model, serial })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PI_CPUINFO: &str = "processor\t: 0\nHardware\t: BCM2835\nSerial\t\t: 10000000abcdef01\nModel\t\t: Raspberry Pi 4 Model B Rev 1.1\n";

    #[test]
    fn device_tree_strings_are_nul_terminated() {
        let board = parse(
            Some(b"Raspberry Pi 4 Model B Rev 1.4\0"),
            Some(b"10000000deadbeef\0"),
            "",
        );
        assert_eq!(
            board,
            Some(BoardInfo {
                model: "Raspberry Pi 4 Model B Rev 1.4".into(),
                serial: "10000000deadbeef".into(),
            })
        );
    }

    #[test]
    fn cpuinfo_fallback() {
        let board = parse(None, None, PI_CPUINFO).unwrap();
        assert_eq!(board.model, "Raspberry Pi 4 Model B Rev 1.1");
        assert_eq!(board.serial, "10000000abcdef01");
        let board = parse(Some(b"\0"), None, PI_CPUINFO).unwrap();
        assert_eq!(
            board.model, "Raspberry Pi 4 Model B Rev 1.1",
            "empty tree string"
        );
    }

    #[test]
    fn nothing_on_x86_and_zero_serials() {
        assert_eq!(
            parse(None, None, "processor\t: 0\nmodel name\t: AMD EPYC\n"),
            None
        );
        assert_eq!(parse(None, None, "Serial\t\t: 0000000000000000\n"), None);
        let board = parse(Some(b"Acme \xffGateway\0"), None, "").unwrap();
        assert_eq!(board.model, "Acme \u{fffd}Gateway");
    }
}
