//! The v1 wire format is pinned by golden bytes; bad bodies are rejected with errors that name
//! the problem. Set `STEWARD_UPDATE_GOLDEN=1` to rewrite the golden file on purpose (only ever
//! when adding a *new* version's file: a shipped version's bytes must never change).

use std::path::PathBuf;

use steward_shared::v1::{
    Cpu, DiskIo, DiskRates, Envelope, Filesystem, HostIdentity, Memory, Metrics, MetricsReport,
    NetInterface, NetRates, Payload,
};
use steward_shared::{DecodeError, decode, encode_v1};

fn sample_v1() -> Envelope {
    Envelope {
        agent_id: "a-3f2c9e71b0d84a56".into(),
        seq: 4_200_001,
        sent_at_ms: 1_795_000_000_123,
        payload: Payload::Metrics(MetricsReport {
            host: HostIdentity {
                hostname: "web-01".into(),
                fqdn: "web-01.example.org".into(),
                os_name: "Debian GNU/Linux".into(),
                os_version: "12".into(),
                kernel: "6.1.0-26-amd64".into(),
                arch: "x86_64".into(),
                machine_id: "4c4c4544004d3510804bc4c04f4e4a32".into(),
                agent_version: "0.1.0".into(),
            },
            metrics: Metrics {
                collected_at_ms: 1_795_000_000_100,
                interval_secs: 10,
                uptime_secs: 864_000,
                cpu: Cpu {
                    total_pct: 12.5,
                    per_core_pct: vec![10.0, 15.0, 12.5, 12.5],
                    load1: 0.42,
                    load5: 0.35,
                    load15: 0.30,
                },
                memory: Memory {
                    total: 8_589_934_592,
                    used: 3_221_225_472,
                    available: 5_368_709_120,
                    free: 1_073_741_824,
                    swap_total: 2_147_483_648,
                    swap_used: 0,
                },
                filesystems: vec![Filesystem {
                    mount: "/".into(),
                    device: "/dev/sda1".into(),
                    fs_type: "ext4".into(),
                    total_bytes: 52_710_469_632,
                    used_bytes: 21_474_836_480,
                    available_bytes: 28_467_216_384,
                    inodes_total: 3_276_800,
                    inodes_used: 412_000,
                    inodes_free: 2_864_800,
                    read_only: false,
                }],
                disks: vec![
                    DiskIo {
                        device: "sda".into(),
                        rates: Some(DiskRates {
                            read_bytes_per_sec: 40_960.0,
                            write_bytes_per_sec: 1_048_576.0,
                            reads_per_sec: 10.0,
                            writes_per_sec: 64.0,
                            busy_pct: 3.5,
                        }),
                    },
                    DiskIo {
                        device: "sdb".into(),
                        rates: None,
                    },
                ],
                networks: vec![NetInterface {
                    name: "eth0".into(),
                    mac: "52:54:00:12:34:56".into(),
                    addresses: vec!["192.0.2.10/24".into(), "2001:db8::10/64".into()],
                    link_up: Some(true),
                    speed_mbps: Some(1000),
                    mtu: Some(1500),
                    rates: Some(NetRates {
                        rx_bytes_per_sec: 125_000.0,
                        tx_bytes_per_sec: 64_000.0,
                        rx_packets_per_sec: 100.0,
                        tx_packets_per_sec: 80.0,
                        rx_errors_per_sec: 0.0,
                        tx_errors_per_sec: 0.0,
                        rx_drops_per_sec: 0.5,
                        tx_drops_per_sec: 0.0,
                    }),
                }],
            },
        }),
    }
}

fn golden_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/v1_metrics.bin")
}

#[test]
fn v1_encoding_matches_the_golden_bytes() {
    let bytes = encode_v1(&sample_v1()).unwrap();
    if std::env::var_os("STEWARD_UPDATE_GOLDEN").is_some() {
        std::fs::write(golden_path(), &bytes).unwrap();
    }
    let golden = std::fs::read(golden_path()).unwrap();
    assert_eq!(
        bytes, golden,
        "the v1 wire format changed: v1 is frozen, add a v2 instead"
    );
}

#[test]
fn golden_v1_bytes_decode_to_the_sample() {
    let golden = std::fs::read(golden_path()).unwrap();
    let decoded = decode(&golden).unwrap();
    assert_eq!(decoded.version(), 1);
    assert_eq!(decoded.agent_id(), "a-3f2c9e71b0d84a56");
    assert_eq!(decoded.seq(), 4_200_001);
    let steward_shared::Envelope::V1(envelope) = decoded;
    assert_eq!(envelope, sample_v1());
}

#[test]
fn the_version_prefix_is_the_first_byte() {
    // A varint 1; collectors read this before anything else, so it must never move.
    assert_eq!(encode_v1(&sample_v1()).unwrap()[0], 1);
}

#[test]
fn trailing_bytes_are_rejected() {
    let mut bytes = encode_v1(&sample_v1()).unwrap();
    bytes.extend_from_slice(&[0, 0, 7]);
    let error = decode(&bytes).unwrap_err();
    assert_eq!(
        error,
        DecodeError::TrailingBytes {
            version: 1,
            count: 3
        }
    );
    assert_eq!(
        error.to_string(),
        "3 trailing bytes after the protocol v1 envelope"
    );
}

#[test]
fn every_truncation_is_rejected_without_panicking() {
    let bytes = encode_v1(&sample_v1()).unwrap();
    for len in 0..bytes.len() {
        let error = decode(&bytes[..len]).unwrap_err();
        assert!(
            matches!(
                error,
                DecodeError::Empty | DecodeError::Truncated { .. } | DecodeError::Malformed { .. }
            ),
            "length {len}: {error:?}"
        );
    }
    assert_eq!(
        decode(&bytes[..10]).unwrap_err().to_string(),
        "truncated report: protocol v1 envelope ends early"
    );
}

#[test]
fn unknown_versions_are_rejected_with_the_supported_list() {
    // How a v2 agent's report looks to this collector: the prefix says 2, the rest is v2's.
    let mut bytes = postcard::to_stdvec(&2u16).unwrap();
    bytes.extend_from_slice(b"whatever v2 carries");
    let error = decode(&bytes).unwrap_err();
    assert_eq!(
        error,
        DecodeError::UnsupportedVersion {
            version: 2,
            supported: &[1]
        }
    );
    assert_eq!(
        error.to_string(),
        "unsupported protocol version 2: this collector decodes versions [1]"
    );
}

#[test]
fn garbage_is_rejected_not_panicked_on() {
    for body in [
        &b"\xff\xff\xff\xff"[..],
        b"GET / HTTP/1.1\r\n",
        b"\x01\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",
    ] {
        assert!(decode(body).is_err(), "{body:?}");
    }
}

#[test]
fn the_json_view_has_host_and_metrics_at_the_top() {
    let Payload::Metrics(report) = sample_v1().payload else {
        panic!("the sample is a metrics report")
    };
    let json = serde_json::to_value(&report).unwrap();
    let object = json.as_object().unwrap();
    assert!(object.contains_key("host") && object.contains_key("metrics"));
    assert_eq!(json["host"]["hostname"], "web-01");
    assert_eq!(json["metrics"]["filesystems"][0]["mount"], "/");
}

/// An inventory report using every inventory type, for the kind-1 golden bytes.
fn sample_v1_inventory() -> Envelope {
    use steward_shared::v1::{
        AssetInfo, BoardInfo, CpuInfo, Dimm, DiskInfo, Hardware, Inventory, InventoryReport,
        MemoryInfo, NicInfo, OsInfo, SoftwarePackage, SourceStatus, SystemInfo, VirtualGuest,
        Virtualization,
    };
    Envelope {
        agent_id: "a-3f2c9e71b0d84a56".into(),
        seq: 4_200_002,
        sent_at_ms: 1_795_000_000_456,
        payload: Payload::Inventory(InventoryReport {
            host: HostIdentity {
                hostname: "web-01".into(),
                machine_id: "4c4c4544004d3510804bc4c04f4e4a32".into(),
                ..Default::default()
            },
            collected_at_ms: 1_795_000_000_400,
            content_hash: "9f2c".repeat(16),
            content: Some(Inventory {
                hardware: Hardware {
                    system: SystemInfo {
                        vendor: "Dell Inc.".into(),
                        product: "PowerEdge R740".into(),
                        version: "".into(),
                        serial: "7XK2QH3".into(),
                        uuid: "4c4c4544-0058-4b10-8032-b7c04f514833".into(),
                        sku: "SKU=0715".into(),
                        family: "PowerEdge".into(),
                        bios_vendor: "Dell Inc.".into(),
                        bios_version: "2.19.1".into(),
                        bios_date: "06/05/2023".into(),
                        board_vendor: "Dell Inc.".into(),
                        board_product: "0YWR7D".into(),
                        board_serial: ".7XK2QH3.CNFCP0097A00B1.".into(),
                        chassis_type: 23,
                        chassis_asset_tag: "INV-004217".into(),
                        chassis_serial: "7XK2QH3".into(),
                    },
                    cpu: CpuInfo {
                        vendor: "GenuineIntel".into(),
                        model: "Intel(R) Xeon(R) Gold 6230R CPU @ 2.10GHz".into(),
                        sockets: 2,
                        cores: 52,
                        threads: 104,
                        max_mhz: Some(4000),
                    },
                    memory: MemoryInfo {
                        total_bytes: 412_316_860_416,
                        dimms: vec![Dimm {
                            locator: "A1".into(),
                            size_bytes: 34_359_738_368,
                            kind: "DDR4".into(),
                            speed_mts: Some(2933),
                            manufacturer: "Hynix".into(),
                            serial: "3A1B2C3D".into(),
                            part_number: "HMA84GR7CJR4N-WM".into(),
                        }],
                    },
                    disks: vec![DiskInfo {
                        name: "sda".into(),
                        model: "MZ7KH960HAJR0D3".into(),
                        serial: "S47NNA0M812345".into(),
                        size_bytes: 960_197_124_096,
                        rotational: Some(false),
                        transport: "sata".into(),
                        removable: false,
                    }],
                    nics: vec![NicInfo {
                        name: "eno1".into(),
                        mac: "b0:26:28:11:22:01".into(),
                        permanent_mac: "".into(),
                        speed_mbps: Some(10_000),
                        driver: "bnxt_en".into(),
                        virtual_nic: false,
                    }],
                    virtualization: Virtualization::default(),
                    board: Some(BoardInfo::default()),
                    os: OsInfo {
                        id: "debian".into(),
                        id_like: "".into(),
                        name: "Debian GNU/Linux".into(),
                        version: "12".into(),
                        pretty_name: "Debian GNU/Linux 12 (bookworm)".into(),
                        kernel: "6.1.0-26-amd64".into(),
                        arch: "x86_64".into(),
                        machine_id: "4c4c4544004d3510804bc4c04f4e4a32".into(),
                    },
                },
                software: vec![SoftwarePackage {
                    name: "openssl".into(),
                    version: "3.0.15-1~deb12u1".into(),
                    arch: "amd64".into(),
                    publisher: "Debian OpenSSL Team".into(),
                    installed_at_ms: Some(1_790_000_000_000),
                    size_bytes: Some(2_347_008),
                    source: "dpkg".into(),
                }],
                asset: Some(AssetInfo {
                    asset_tag: "INV-004217".into(),
                    warranty_end: "2028-04-16".into(),
                    ..Default::default()
                }),
                sources: vec![SourceStatus {
                    source: "dmi".into(),
                    items: 1,
                    error: None,
                    warnings: vec!["product_serial needs root".into()],
                }],
                guests: vec![VirtualGuest {
                    name: "app-01".into(),
                    uuid: "4dea22b3-1d52-d8f3-2516-782e98ab3fa0".into(),
                    source: "libvirt".into(),
                }],
            }),
        }),
    }
}

fn inventory_golden_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/v1_inventory.bin")
}

#[test]
fn v1_inventory_encoding_matches_the_golden_bytes() {
    let bytes = encode_v1(&sample_v1_inventory()).unwrap();
    if std::env::var_os("STEWARD_UPDATE_GOLDEN").is_some() {
        std::fs::write(inventory_golden_path(), &bytes).unwrap();
    }
    let golden = std::fs::read(inventory_golden_path()).unwrap();
    assert_eq!(
        bytes, golden,
        "the v1 inventory wire format changed: v1 is frozen, add a v2 instead"
    );
    let steward_shared::Envelope::V1(decoded) = decode(&golden).unwrap();
    assert_eq!(decoded, sample_v1_inventory());
    // Every truncation is refused, never misread.
    for cut in 0..golden.len() {
        assert!(
            decode(&golden[..cut]).is_err(),
            "a {cut}-byte prefix decoded"
        );
    }
}
