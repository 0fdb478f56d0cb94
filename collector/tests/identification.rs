//! Identification scenarios, one folder each under `tests/identification/`: `input.json` is a
//! sequence of reports (and admin resolutions) fed to a real store; `expected.json` is the CIs,
//! open conflicts and history lines that must come out. `STEWARD_UPDATE_GOLDEN=1` rewrites the
//! expected files.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use steward_collector::store::{
    IngestOutcome, InventoryRecord, NewAgent, ReportContent, ReportRecord, Resolution, Store,
};
use steward_shared::v1::{Hardware, HostIdentity, Inventory, NicInfo, SystemInfo, Virtualization};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Step {
    /// The agent reporting (enrolled at its first step with `machine_id`).
    #[serde(default)]
    agent: String,
    #[serde(default)]
    machine_id: String,
    /// Seconds from the scenario's start when the report was collected.
    #[serde(default)]
    at: i64,
    #[serde(default)]
    hostname: String,
    /// A full inventory with this hardware; without it, a metrics report.
    hardware: Option<Hw>,
    /// An admin resolves the agent's open conflict.
    resolve: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Hw {
    #[serde(default)]
    vendor: String,
    #[serde(default)]
    serial: String,
    #[serde(default)]
    uuid: String,
    #[serde(default)]
    macs: Vec<String>,
    #[serde(default)]
    hypervisor: String,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Expected {
    /// Each CI: name → its agents, sorted.
    cis: BTreeMap<String, Vec<String>>,
    /// Open conflicts: agent → the names of the candidate CIs.
    conflicts: BTreeMap<String, Vec<String>>,
    /// Per CI name, its history summaries, oldest first.
    history: BTreeMap<String, Vec<String>>,
}

async fn enroll(store: &Store, id: &str, machine_id: &str, hostname: &str) {
    let hash = steward_collector::sha256_hex(id.as_bytes());
    store
        .create_enroll_token(hash.clone(), steward_collector::now_ms() + 60_000, 1)
        .await
        .unwrap();
    let agent = NewAgent {
        id: id.into(),
        hostname: hostname.into(),
        machine_id: machine_id.into(),
    };
    store
        .enroll_agent(hash, agent, |_| Ok(("CERT".into(), "01".into(), 0)))
        .await
        .unwrap();
}

fn inventory(hw: &Hw) -> Inventory {
    Inventory {
        hardware: Hardware {
            system: SystemInfo {
                vendor: hw.vendor.clone(),
                serial: hw.serial.clone(),
                uuid: hw.uuid.clone(),
                ..Default::default()
            },
            nics: hw
                .macs
                .iter()
                .enumerate()
                .map(|(i, mac)| NicInfo {
                    name: format!("eth{i}"),
                    mac: mac.clone(),
                    ..Default::default()
                })
                .collect(),
            virtualization: Virtualization {
                hypervisor: hw.hypervisor.clone(),
                container: String::new(),
            },
            ..Default::default()
        },
        ..Default::default()
    }
}

async fn run_case(dir: &Path) {
    let steps: Vec<Step> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("input.json")).unwrap()).unwrap();
    let db = tempfile::tempdir().unwrap();
    let store = Store::open(&db.path().join("test.db"), 64, 4096).unwrap();
    // A day ago, so every collection time is in the past.
    let start = steward_collector::now_ms() - 86_400_000;
    let mut enrolled = BTreeSet::new();
    let mut seqs: BTreeMap<String, u64> = BTreeMap::new();
    for step in &steps {
        if let Some(action) = &step.resolve {
            let open = store.list_conflicts(false).await.unwrap();
            let conflict = open
                .iter()
                .find(|c| c.agent_id == step.agent)
                .unwrap_or_else(|| {
                    panic!("{}: no open conflict for {}", dir.display(), step.agent)
                });
            let resolution = match action.as_str() {
                "merge" => Resolution::Merge { into: None },
                "split" => Resolution::Split,
                other => panic!("unknown resolution {other}"),
            };
            store
                .resolve_conflict(conflict.id, resolution)
                .await
                .unwrap();
            continue;
        }
        if enrolled.insert(step.agent.clone()) {
            enroll(&store, &step.agent, &step.machine_id, &step.hostname).await;
        }
        let seq = seqs.entry(step.agent.clone()).or_insert(0);
        *seq += 1;
        let host = HostIdentity {
            hostname: step.hostname.clone(),
            fqdn: step.hostname.clone(),
            machine_id: step.machine_id.clone(),
            ..Default::default()
        };
        let collected_at = start + step.at * 1000;
        let content = match &step.hardware {
            Some(hw) => {
                let inventory = inventory(hw);
                ReportContent::Inventory(InventoryRecord {
                    content_hash: format!("{}-{seq}", step.agent),
                    inventory: Some(Box::new(inventory)),
                })
            }
            None => ReportContent::Metrics(Vec::new()),
        };
        let outcome = store
            .ingest(ReportRecord {
                agent_id: step.agent.clone(),
                seq: *seq,
                version: 1,
                collected_at,
                host,
                content,
                spool: None,
                cert_serial: None,
            })
            .await
            .unwrap();
        assert!(matches!(outcome, IngestOutcome::Stored { .. }));
    }

    let cis = store.list_cis().await.unwrap();
    let names: BTreeMap<i64, String> = cis.iter().map(|c| (c.id, c.name.clone())).collect();
    let mut actual = Expected {
        cis: BTreeMap::new(),
        conflicts: BTreeMap::new(),
        history: BTreeMap::new(),
    };
    for ci in &cis {
        let detail = store
            .find_ci(ci.id.to_string())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let key = if actual.cis.contains_key(&ci.name) {
            format!("{} (#{})", ci.name, ci.id)
        } else {
            ci.name.clone()
        };
        actual.cis.insert(key.clone(), detail.agents.clone());
        let mut history: Vec<String> = detail
            .history
            .iter()
            .filter(|h| h.kind != "software")
            .map(|h| h.summary.clone())
            .collect();
        history.reverse();
        actual.history.insert(key, history);
    }
    for conflict in store.list_conflicts(false).await.unwrap() {
        let mut candidates: Vec<String> = conflict
            .candidates
            .iter()
            .map(|id| names.get(id).cloned().unwrap_or_else(|| format!("#{id}")))
            .collect();
        candidates.sort();
        actual.conflicts.insert(conflict.agent_id, candidates);
    }
    store.close();

    let path = dir.join("expected.json");
    if std::env::var_os("STEWARD_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, serde_json::to_string_pretty(&actual).unwrap() + "\n").unwrap();
        return;
    }
    let expected: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(
        serde_json::to_value(&actual).unwrap(),
        expected,
        "scenario {}",
        dir.display()
    );
}

#[tokio::test]
async fn identification_scenarios() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/identification");
    let mut cases: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert!(cases.len() >= 9, "scenarios missing: {cases:?}");
    for case in cases {
        run_case(&case).await;
    }
}
