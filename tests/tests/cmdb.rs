//! The CMDB through the real binaries: classes from inventory, tags, relationships, services,
//! impact, filtered listing, history with sources, export and import.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use steward_e2e::{Collector, agent_once_on, fixture_root, stderr, stdout};

fn host(collector: &Collector, dir: &std::path::Path, fixture: &str, hostname: &str) {
    let root = fixture_root(dir, fixture);
    std::fs::write(root.join("etc/hostname"), format!("{hostname}\n")).unwrap();
    let state = collector.enroll_agent(hostname);
    let out = agent_once_on(&state, &root);
    assert!(out.status.success(), "{hostname}: {}", stderr(&out));
}

fn names(list: &serde_json::Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn classes_relationships_services_impact_history_export_and_import() {
    let collector = Collector::start();
    let dir = tempfile::tempdir().unwrap();
    host(&collector, dir.path(), "dell-poweredge-r740", "db1");
    host(&collector, dir.path(), "vmware-vm", "app1");
    host(&collector, dir.path(), "raspberry-pi-4", "gw1");
    host(&collector, dir.path(), "lenovo-thinkpad-t14", "laptop7");

    let classes: Vec<(String, String)> = collector
        .admin_json(&["ci", "list", "--json"])
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().into(),
                c["class"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        classes,
        vec![
            ("app1".to_string(), "virtual_machine".to_string()),
            ("db1".into(), "server".into()),
            ("gw1".into(), "iot_gateway".into()),
            ("laptop7".into(), "laptop".into()),
        ]
    );
    let detail = collector.admin_json(&["ci", "show", "gw1", "--json"]);
    assert!(
        detail["attributes"]["board_model"]
            .as_str()
            .unwrap()
            .contains("Raspberry Pi"),
        "{detail}"
    );

    // Relationships, tags, a service.
    for args in [
        vec!["ci", "relate", "app1", "runs_on", "db1"],
        vec!["ci", "tag", "db1", "prod"],
        vec![
            "service",
            "create",
            "webshop",
            "--description",
            "The public shop",
        ],
        vec!["service", "add", "webshop", "app1"],
    ] {
        let out = collector.admin(&args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    }
    let out = collector.admin(&["ci", "relate", "app1", "likes", "db1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("unknown relationship type"),
        "{}",
        stderr(&out)
    );
    let out = collector.admin(&["ci", "relate", "app1", "runs_on", "nosuch"]);
    assert!(
        stderr(&out).contains("no CI named or numbered nosuch"),
        "{}",
        stderr(&out)
    );

    // An outage of db1 affects app1 (runs on it) and the webshop (depends on app1).
    let impact = collector.admin_json(&["ci", "impact", "db1", "--json"]);
    assert_eq!(names(&impact), vec!["app1", "webshop"], "{impact}");
    assert_eq!(impact[1]["depth"], 2);
    let human = stdout(&collector.admin(&["ci", "impact", "db1"]));
    assert!(human.contains("services affected: webshop"), "{human}");

    let service = collector.admin_json(&["service", "show", "webshop", "--json"]);
    assert_eq!(names(&service["members"]), vec!["app1", "db1"], "{service}");
    assert_eq!(service["description"], "The public shop");

    // Filters.
    assert_eq!(
        names(&collector.admin_json(&["ci", "list", "--class", "server", "--json"])),
        vec!["db1"]
    );
    assert_eq!(
        names(&collector.admin_json(&["ci", "list", "--tag", "prod", "--json"])),
        vec!["db1"]
    );
    assert_eq!(
        names(&collector.admin_json(&["ci", "list", "--service", "webshop", "--json"])),
        vec!["app1", "db1"]
    );
    assert_eq!(
        names(&collector.admin_json(&["ci", "list", "--name", "*1", "--json"])),
        vec!["app1", "db1", "gw1"]
    );
    let out = collector.admin(&["ci", "list", "--class", "toaster"]);
    assert!(stderr(&out).contains("unknown class"), "{}", stderr(&out));

    // ci show lists relationships; history has sources.
    let human = stdout(&collector.admin(&["ci", "show", "db1"]));
    assert!(
        human.contains("app1 runs_on db1") && human.contains("tags        prod"),
        "{human}"
    );
    let history = collector.admin_json(&["ci", "history", "db1", "--json"]);
    let entries: Vec<(String, String)> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["source"].as_str().unwrap().into(),
                h["summary"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert!(
        entries.contains(&("admin".into(), "tag prod added".into())),
        "{entries:?}"
    );
    assert!(
        entries.contains(&("admin".into(), "app1 runs_on db1 added".into())),
        "{entries:?}"
    );
    assert!(
        entries.iter().any(|(source, _)| source == "agent"),
        "{entries:?}"
    );
    let recent = collector.admin_json(&["ci", "history", "db1", "--since", "1h", "--json"]);
    assert_eq!(
        recent.as_array().unwrap().len(),
        history.as_array().unwrap().len()
    );
    let human = stdout(&collector.admin(&["ci", "history", "db1"]));
    assert!(
        human.contains("SOURCE") && human.contains("admin"),
        "{human}"
    );

    // Export, then import the structure into a second collector that knows the same hosts.
    let csv = stdout(&collector.admin(&["ci", "export", "--format", "csv"]));
    assert!(csv.starts_with("id,name,class,"), "{csv}");
    assert!(
        csv.lines()
            .any(|l| l.contains(",db1,server,") && l.contains(",Dell Inc.,PowerEdge R740,7XK2QH3,")),
        "{csv}"
    );
    assert!(
        csv.lines()
            .any(|l| l.contains(",app1,virtual_machine,") && l.ends_with(",webshop")),
        "{csv}"
    );
    let export = stdout(&collector.admin(&["ci", "export", "--format", "json"]));
    let parsed: serde_json::Value = serde_json::from_str(&export).unwrap();
    assert_eq!(
        parsed["cis"].as_array().unwrap().len(),
        5,
        "four hosts and the service"
    );
    let file = dir.path().join("structure.json");
    std::fs::write(&file, &export).unwrap();

    let second = Collector::start();
    let dir2 = tempfile::tempdir().unwrap();
    host(&second, dir2.path(), "dell-poweredge-r740", "db1");
    // A file naming a CI this collector lacks (app1) imports nothing and says which entry.
    let out = second.admin(&["ci", "import", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no CI named or numbered app1"),
        "{}",
        stderr(&out)
    );
    assert!(
        second
            .admin_json(&["ci", "list", "--class", "service", "--json"])
            .as_array()
            .unwrap()
            .is_empty()
    );
    host(&second, dir2.path(), "vmware-vm", "app1");
    let out = second.admin(&["ci", "import", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("1 service(s) created, 2 relationship(s) added"),
        "{}",
        stdout(&out)
    );
    let impact = second.admin_json(&["ci", "impact", "db1", "--json"]);
    assert_eq!(names(&impact), vec!["app1", "webshop"]);
}
