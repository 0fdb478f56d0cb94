//! Inventory through the real binaries: an agent on a fixture host (a Dell server tree with a
//! dpkg database and an asset file) reports its inventory; the collector stores it, answers
//! "which hosts run X older than V", imports a procurement CSV, lists warranties, and takes an
//! unchanged inventory as a marker.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use steward_e2e::{Collector, agent_once_on, fixture_root, stderr, stdout};

const FIXTURE: &str = "dell-poweredge-r740";

fn dpkg_status(openssl: &str) -> String {
    format!(
        "Package: openssl\nStatus: install ok installed\nArchitecture: amd64\nVersion: {openssl}\nMaintainer: Debian OpenSSL Team <pkg-openssl-devel@alioth-lists.debian.net>\nInstalled-Size: 2293\n\n\
         Package: curl\nStatus: install ok installed\nArchitecture: amd64\nVersion: 7.88.1-10+deb12u5\nMaintainer: Alessandro Ghedini <ghedo@debian.org>\nInstalled-Size: 500\n\n\
         Package: telnet\nStatus: deinstall ok config-files\nArchitecture: amd64\nVersion: 0.17+2.4-2\n\n"
    )
}

/// A copy of the fixture host with a dpkg database.
fn host_root(dir: &Path, openssl: &str) -> PathBuf {
    let root = fixture_root(dir, FIXTURE);
    std::fs::create_dir_all(root.join("var/lib/dpkg")).unwrap();
    std::fs::write(root.join("var/lib/dpkg/status"), dpkg_status(openssl)).unwrap();
    root
}

#[test]
fn inventory_reaches_the_cmdb_and_answers_software_and_warranty_questions() {
    let collector = Collector::start();
    let state = collector.enroll_agent("agent");
    let dir = tempfile::tempdir().unwrap();
    let root = host_root(dir.path(), "1.1.1n-0+deb11u5");

    let out = agent_once_on(&state, &root);
    assert!(out.status.success(), "run --once: {}", stderr(&out));
    let cis = collector.admin_json(&["ci", "list", "--json"]);
    assert_eq!(cis.as_array().unwrap().len(), 1, "{cis}");
    let id = cis[0]["id"].to_string();

    let detail = collector.admin_json(&["ci", "show", &id, "--json"]);
    let inventory = &detail["inventory"]["inventory"];
    let names: Vec<&str> = inventory["software"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names.len(),
        2,
        "the deinstalled package is not counted: {names:?}"
    );
    assert!(names.contains(&"openssl") && names.contains(&"curl"));
    assert_eq!(inventory["hardware"]["system"]["serial"], "7XK2QH3");
    assert_eq!(inventory["hardware"]["system"]["product"], "PowerEdge R740");
    assert_eq!(detail["asset"]["asset_tag"], "INV-004217");
    assert_eq!(detail["asset"]["warranty_end"], "2028-04-16");
    assert_eq!(
        detail["history"][0]["summary"],
        "asset data from agent: asset_tag, owner, location, cost_centre, purchase_date, warranty_end, supplier, support_contract"
    );
    assert_eq!(
        detail["history"][1]["summary"],
        "first inventory: 2 packages"
    );
    let human = stdout(&collector.admin(&["ci", "show", &id]));
    for expected in [
        "PowerEdge R740",
        "software (2 packages)",
        "INV-004217",
        "openssl",
    ] {
        assert!(
            human.contains(expected),
            "{expected} missing from:\n{human}"
        );
    }

    // Debian ordering: 1.1.1n-0+deb11u5 is older than 3.0.0 and newer than 1.1.1.
    let old = collector.admin_json(&[
        "ci",
        "software",
        "openssl",
        "--version-below",
        "3.0.0",
        "--json",
    ]);
    assert_eq!(old.as_array().unwrap().len(), 1, "{old}");
    assert_eq!(old[0]["version"], "1.1.1n-0+deb11u5");
    let older = collector.admin_json(&[
        "ci",
        "software",
        "openssl",
        "--version-below",
        "1.1.1",
        "--json",
    ]);
    assert!(older.as_array().unwrap().is_empty(), "{older}");

    // A procurement export with one bad row imports nothing, naming the line and column.
    let csv = dir.path().join("purchases.csv");
    std::fs::write(
        &csv,
        "Serial Number,Warranty End,Supplier,Model\n7XK2QH3,2020-01-31,Acme Leasing,R740\nNOPE,2027-13-01,Acme,\nUNKNOWN1,2027-01-01,Acme,\n",
    )
    .unwrap();
    let out = collector.admin(&["ci", "import-assets", csv.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("line 3, column Warranty End"),
        "{}",
        stderr(&out)
    );
    let detail = collector.admin_json(&["ci", "show", &id, "--json"]);
    assert_eq!(
        detail["asset"]["warranty_end"], "2028-04-16",
        "nothing imported"
    );

    let out = collector.admin(&[
        "ci",
        "import-assets",
        csv.to_str().unwrap(),
        "--skip-bad-rows",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report = stdout(&out);
    assert!(
        report.contains("1 row(s) matched a CI, 1 changed something; 1 unmatched; 1 skipped"),
        "{report}"
    );
    assert!(report.contains("unmatched line 4"), "{report}");
    assert!(report.contains("ignored columns: Model"), "{report}");
    let detail = collector.admin_json(&["ci", "show", &id, "--json"]);
    assert_eq!(detail["asset"]["warranty_end"], "2020-01-31");
    assert_eq!(detail["asset"]["supplier"], "Acme Leasing");
    assert_eq!(
        detail["asset"]["location"], "DC2 / row 4 / rack 12 / U20",
        "kept from the host"
    );
    assert_eq!(
        detail["history"][0]["summary"],
        "asset data from import purchases.csv: warranty_end, supplier"
    );

    let expired = collector.admin_json(&["warranty", "list", "--expired", "--json"]);
    assert_eq!(expired.as_array().unwrap().len(), 1, "{expired}");
    assert_eq!(expired[0]["serial"], "7XK2QH3");
    let soon = collector.admin_json(&["warranty", "list", "--expiring-within", "30d", "--json"]);
    assert_eq!(
        soon.as_array().unwrap().len(),
        1,
        "expired ones are included: {soon}"
    );
    let human = stdout(&collector.admin(&["warranty", "list"]));
    assert!(
        human.contains("expired") && human.contains("7XK2QH3"),
        "{human}"
    );

    // Unchanged: the agent sends a marker; nothing new in the history.
    let history_before = detail["history"].as_array().unwrap().len();
    let out = agent_once_on(&state, &root);
    assert!(out.status.success(), "{}", stderr(&out));
    let detail = collector.admin_json(&["ci", "show", &id, "--json"]);
    assert_eq!(detail["history"].as_array().unwrap().len(), history_before);

    // An upgrade is a changed inventory, sent in full and recorded.
    host_root(dir.path(), "3.0.15-1~deb12u1");
    let out = agent_once_on(&state, &root);
    assert!(out.status.success(), "{}", stderr(&out));
    let detail = collector.admin_json(&["ci", "show", &id, "--json"]);
    assert_eq!(
        detail["history"][0]["summary"],
        "software: 0 installed, 0 removed, 1 changed version"
    );
    assert_eq!(
        detail["history"][0]["detail"]["changed"][0],
        "openssl 1.1.1n-0+deb11u5 -> 3.0.15-1~deb12u1"
    );
    let old = collector.admin_json(&[
        "ci",
        "software",
        "openssl",
        "--version-below",
        "3.0.0",
        "--json",
    ]);
    assert!(old.as_array().unwrap().is_empty(), "{old}");
}

#[test]
fn two_agents_on_the_same_hardware_raise_a_conflict_that_an_admin_resolves() {
    let collector = Collector::start();
    let first = collector.enroll_agent("first");
    let second = collector.enroll_agent("second");
    let dir = tempfile::tempdir().unwrap();
    let root = host_root(dir.path(), "3.0.15-1~deb12u1");
    for state in [&first, &second] {
        let out = agent_once_on(state, &root);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    // Both report the same serial and UUID at once: not merged silently.
    let cis = collector.admin_json(&["ci", "list", "--json"]);
    assert_eq!(cis.as_array().unwrap().len(), 2, "{cis}");
    let conflicts = collector.admin_json(&["ci", "conflicts", "list", "--json"]);
    let conflicts = conflicts.as_array().unwrap();
    assert_eq!(conflicts.len(), 1, "{conflicts:?}");
    assert_eq!(conflicts[0]["rule"], "uuid_serial");
    assert!(
        conflicts[0]["reason"]
            .as_str()
            .unwrap()
            .contains("at the same time"),
        "{conflicts:?}"
    );
    let human = stdout(&collector.admin(&["ci", "conflicts", "list"]));
    assert!(
        human.contains("uuid_serial") || human.contains("same time"),
        "{human}"
    );

    let id = conflicts[0]["id"].to_string();
    let out = collector.admin(&["ci", "conflicts", "resolve", &id, "--merge"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("merged"), "{}", stdout(&out));
    let cis = collector.admin_json(&["ci", "list", "--json"]);
    assert_eq!(cis.as_array().unwrap().len(), 1, "{cis}");
    let detail = collector.admin_json(&["ci", "show", &cis[0]["id"].to_string(), "--json"]);
    assert_eq!(detail["agents"].as_array().unwrap().len(), 2, "{detail}");
    assert!(
        collector
            .admin_json(&["ci", "conflicts", "list", "--json"])
            .as_array()
            .unwrap()
            .is_empty()
    );
    // Resolving again is refused with a reason.
    let out = collector.admin(&["ci", "conflicts", "resolve", &id, "--split"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("already resolved"),
        "{}",
        stderr(&out)
    );
}
