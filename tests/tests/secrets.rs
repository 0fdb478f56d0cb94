//! Secrets never leak: with the collector logging at debug, an agent enrolled, tokens made,
//! SNMP targets with community and v3 passphrases added, a webhook connector with a secret and
//! admin calls made, no secret appears in what the collector prints, in any `--json` listing, or
//! in the database's bytes; and the files that hold secrets are readable by their owner only.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

#[cfg(unix)]
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use steward_e2e::{Collector, agent_once, enroll, free_port, stderr, stdout};

/// The base64 body of a PEM file, without its armour lines (what would leak of a key).
fn pem_body(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect()
}

/// Every secret, named, and the places it must not be.
fn assert_absent(secrets: &[(&str, String)], place: &str, bytes: &[u8]) {
    for (name, secret) in secrets {
        assert!(secret.len() >= 16, "{name} is too short to search for");
        // Keys are searched by a run of their base64 body: line breaks or a re-encoding could
        // split the whole of it.
        let needle = &secret.as_bytes()[..secret.len().min(48)];
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle),
            "the {name} appears in {place}"
        );
    }
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_stay_out_of_logs_listings_and_the_database() {
    let mut collector = Collector::start();
    let outside = collector.dir.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let webhook_secret = "whsec-Zq8rT3vN6yL1pK4m".to_string();
    let secret_file = outside.join("webhook.secret");
    std::fs::write(&secret_file, format!("{webhook_secret}\n")).unwrap();
    let dead_port = free_port();
    let config = collector.data_dir().join("collector.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text = text.replace("log_level = \"info\"", "log_level = \"debug\"");
    text.push_str(&format!(
        "\n[[connectors]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"http://127.0.0.1:{dead_port}/hook\"\nsecret_file = {:?}\n",
        secret_file.display().to_string()
    ));
    std::fs::write(&config, text).unwrap();
    collector.serve_keeping_stdout();

    // Enrollment: a token used by an agent, and one made and left unused.
    let used_token = collector.token(&[]);
    let state = collector.dir.path().join("agent");
    let out = enroll(
        &collector.url(),
        &used_token,
        &collector.fingerprint,
        &state,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let unused_token = collector.token(&["--uses", "5"]);
    let out = agent_once(&state);
    assert!(out.status.success(), "{}", stderr(&out));
    let admin_token = std::fs::read_to_string(collector.data_dir().join("admin.token"))
        .unwrap()
        .trim()
        .to_string();
    let out = collector.admin(&["admin-token", "create", "ops"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let named_admin_token = stdout(&out).trim().to_string();

    // SNMP: a v2c community and v3 passphrases, through the CLI (no device answers).
    let (community, auth_pass, priv_pass) = (
        "community-Hq2Wd9Lx5Rt".to_string(),
        "authpass-Ka7Ne3Vb8Jm".to_string(),
        "privpass-Tg4Xs6Pc1Fy".to_string(),
    );
    let v2 = format!("127.0.0.1:{}", free_port());
    let v3 = format!("127.0.0.1:{}", free_port());
    let out = collector.admin(&[
        "snmp",
        "add",
        &v2,
        "--version",
        "2c",
        "--community",
        &community,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v3_credentials = [
        "--version",
        "3",
        "--user",
        "steward",
        "--auth",
        "sha",
        "--auth-pass",
        &auth_pass,
        "--priv",
        "aes",
        "--priv-pass",
        &priv_pass,
    ];
    let out = collector.admin(&[&["snmp", "add", &v3][..], &v3_credentials].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    // A one-shot poll with the credentials in the request: it fails (nothing answers).
    let unanswered = format!("127.0.0.1:{}", free_port());
    let out = collector.admin(&[&["snmp", "poll", &unanswered][..], &v3_credentials].concat());
    let poll_output = [out.stdout, out.stderr].concat();

    // Admin calls, listings among them, with the named token over the URL too.
    let mut listings = Vec::new();
    for args in [
        &["agents", "list", "--json"][..],
        &["snmp", "list", "--json"],
        &["ci", "list", "--json"],
        &["events", "list", "--json"],
        &["tickets", "list", "--json"],
        &["rules", "list", "--json"],
        &["admin-token", "list", "--json"],
    ] {
        let out = collector.admin(args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        listings.push((format!("{args:?}"), [out.stdout, out.stderr].concat()));
    }
    let ci = collector.admin_json(&["ci", "list", "--json"])[0]["id"].to_string();
    let out = collector.admin(&["ci", "show", &ci, "--json"]);
    listings.push(("ci show".into(), [out.stdout, out.stderr].concat()));
    let out = steward_e2e::run(
        std::process::Command::new(steward_e2e::bin("steward-collector"))
            .args(["agents", "list", "--json", "--url", &collector.url()])
            .args(["--token", &named_admin_token, "--ca-cert"])
            .arg(collector.data_dir().join("ca.crt")),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    listings.push((
        "agents list over --url".into(),
        [out.stdout, out.stderr].concat(),
    ));
    // A wrong admin token and a wrong enrollment token are refused, and not logged either.
    let wrong_admin = "adm_wrong-Bv5Qe2Zr7Ut9Xw".to_string();
    let response = support::anonymous_client(&collector)
        .get(format!("{}/admin/v1/agents", collector.url()))
        .bearer_auth(&wrong_admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    let wrong_enroll = "stw_wrong-Mc3Hy8Dk1Ln6".to_string();
    let out = enroll(
        &collector.url(),
        &wrong_enroll,
        &collector.fingerprint,
        &collector.dir.path().join("refused"),
    );
    assert!(!out.status.success());

    // Let the poller try the targets (and log its failures) before looking.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(collector.is_running(), "{}", collector.log());
    let data = collector.data_dir();
    let secrets: Vec<(&str, String)> = vec![
        ("used enrollment token", used_token),
        ("unused enrollment token", unused_token),
        ("wrong enrollment token", wrong_enroll),
        ("admin token", admin_token),
        ("named admin token", named_admin_token),
        ("wrong admin token", wrong_admin),
        ("SNMP community", community),
        ("SNMP auth passphrase", auth_pass),
        ("SNMP privacy passphrase", priv_pass),
        ("webhook secret", webhook_secret),
        ("agent private key", pem_body(&state.join("agent.key"))),
        ("CA private key", pem_body(&data.join("ca.key"))),
        ("server private key", pem_body(&data.join("server.key"))),
        (
            "secrets.key",
            std::fs::read_to_string(data.join("secrets.key"))
                .unwrap()
                .trim()
                .to_string(),
        ),
    ];
    assert!(
        collector.log().contains("DEBUG"),
        "the collector is not logging at debug: {}",
        collector.log()
    );
    assert_absent(
        &secrets,
        "the collector's stderr",
        collector.log().as_bytes(),
    );
    assert_absent(
        &secrets,
        "the collector's stdout",
        collector.stdout_log().as_bytes(),
    );
    for (what, bytes) in &listings {
        assert_absent(&secrets, what, bytes);
    }
    assert_absent(&secrets, "the output of snmp poll", &poll_output);

    // The database, its WAL included: killed, so nothing is checkpointed away first.
    collector.kill();
    let mut db_files = 0;
    for entry in std::fs::read_dir(&data).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("steward.db") {
            db_files += 1;
            assert_absent(&secrets, &name, &std::fs::read(&path).unwrap());
        }
    }
    assert!(db_files >= 1);
    // Sealed SNMP credentials are there, only not in clear.
    let sealed: i64 = support::database(&collector)
        .query_row("SELECT COUNT(*) FROM snmp_targets", [], |r| r.get(0))
        .unwrap();
    assert_eq!(sealed, 2);

    #[cfg(unix)]
    {
        assert_eq!(mode(&data), 0o700, "data directory");
        for file in ["ca.key", "server.key", "admin.token", "secrets.key"] {
            assert_eq!(mode(&data.join(file)), 0o600, "{file}");
        }
        assert_eq!(mode(&state), 0o700, "agent state directory");
        assert_eq!(mode(&state.join("agent.key")), 0o600, "agent key");
    }
}
