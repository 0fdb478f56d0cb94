//! The SNMP client against a real net-snmp `snmpd` on loopback (and, for answers snmpd never
//! sends, a scripted UDP agent): v2c and v3 requests, walks checked against net-snmp's own
//! `snmpbulkwalk`, and the faults a poller meets (agent killed mid-walk, wrong password, wrong
//! community, agent restarted, late and short answers).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // reason: test helpers

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use steward_collector::snmp::client::{AuthProto, PrivProto, SnmpFuture};
use steward_collector::snmp::testing::{Snmpd, SnmpdConfig, SnmpdUser};
use steward_collector::snmp::{
    Credentials, Oid, SessionOptions, SnmpClient, SnmpError, SnmpSession, SnmpVersion, Value,
    VarBind, WalkOptions, walk, walk_many,
};
use tokio::net::UdpSocket;

const SYS_DESCR: &str = "1.3.6.1.2.1.1.1.0";
const SYS_NAME: &str = "1.3.6.1.2.1.1.5.0";
const IF_NUMBER: &str = "1.3.6.1.2.1.2.1.0";
const IF_TABLE: &str = "1.3.6.1.2.1.2.2";
const IF_X_TABLE: &str = "1.3.6.1.2.1.31.1.1";
const HR_STORAGE_TABLE: &str = "1.3.6.1.2.1.25.2.3";
const SNMP_ENGINE_BOOTS: &str = "1.3.6.1.6.3.10.2.1.2.0";

fn oid(s: &str) -> Oid {
    s.parse().unwrap()
}

/// Every test is bounded: a hung agent or client fails the test instead of the CI job.
async fn bounded<T>(limit_secs: u64, test: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(limit_secs), test)
        .await
        .expect("test exceeded its time bound")
}

fn user(name: &str, auth: AuthProto, privacy: Option<PrivProto>) -> SnmpdUser {
    SnmpdUser {
        name: name.into(),
        auth,
        auth_pass: format!("{name}-auth-pass"),
        privacy: privacy.map(|p| (p, format!("{name}-priv-pass"))),
    }
}

fn agent() -> Snmpd {
    Snmpd::start(SnmpdConfig {
        users: vec![
            user("sha-aes", AuthProto::Sha1, Some(PrivProto::Aes128)),
            user("sha256-aes256", AuthProto::Sha256, Some(PrivProto::Aes256)),
            user("sha-aes256", AuthProto::Sha1, Some(PrivProto::Aes256)),
            user("md5-aes192", AuthProto::Md5, Some(PrivProto::Aes192)),
            user("sha512-aes128", AuthProto::Sha512, Some(PrivProto::Aes128)),
            user("sha224-auth", AuthProto::Sha224, None),
        ],
        ..SnmpdConfig::default()
    })
    .unwrap()
}

fn fast() -> SessionOptions {
    SessionOptions {
        timeout: Duration::from_millis(500),
        retries: 2,
    }
}

fn session(snmpd: &Snmpd, credentials: Credentials, options: SessionOptions) -> SnmpSession {
    SnmpSession::new(snmpd.addr(), credentials, options).unwrap()
}

fn text(varbind: &VarBind) -> String {
    varbind.value.as_text().unwrap_or_default()
}

#[tokio::test]
async fn v2c_get_returns_sys_descr_and_sys_name() {
    bounded(30, async {
        let snmpd = agent();
        let mut client = session(&snmpd, snmpd.v2c(), fast());
        let got = client.get(&[oid(SYS_DESCR), oid(SYS_NAME)]).await.unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].oid, oid(SYS_DESCR));
        assert!(text(&got[0]).starts_with("Linux"), "{:?}", got[0]);
        assert_eq!(text(&got[1]), snmpd.config().sys_name);

        // An absent instance is a value, not an error, in v2c.
        let absent = client.get(&[oid("1.3.6.1.2.1.1.5.1")]).await.unwrap();
        assert!(absent[0].value.is_exception(), "{absent:?}");
        assert_eq!(client.stats().timeouts, 0);
    })
    .await;
}

/// The OIDs net-snmp's own `snmpbulkwalk` finds under `root`: the oracle for our walk.
fn net_snmp_walk_oids(snmpd: &Snmpd, root: &str) -> BTreeSet<Oid> {
    let state = tempfile::tempdir().unwrap();
    let output = std::process::Command::new("snmpbulkwalk")
        .args(["-v2c", "-c", &snmpd.config().community, "-On", "-t", "2"])
        .arg(snmpd.addr().to_string())
        .arg(root)
        // Keep net-snmp's client away from /var/lib/snmp and from MIB files.
        .env("SNMP_PERSISTENT_DIR", state.path())
        .env("SNMPCONFPATH", state.path())
        .env("MIBS", "")
        .output()
        .expect("snmpbulkwalk (Debian package snmp) is needed by this test");
    assert!(output.status.success(), "{output:?}");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_once(" = "))
        .map(|(oid, _)| oid.parse().unwrap())
        .collect()
}

fn assert_well_formed(walk: &steward_collector::snmp::Walk) {
    assert!(walk.is_complete(), "{:?}", walk.end);
    assert!(!walk.varbinds.is_empty(), "nothing under {}", walk.root);
    for pair in walk.varbinds.windows(2) {
        assert!(
            pair[0].oid < pair[1].oid,
            "{} then {}",
            pair[0].oid,
            pair[1].oid
        );
    }
    for varbind in &walk.varbinds {
        assert!(varbind.oid.starts_with(&walk.root), "{}", varbind.oid);
        assert!(!varbind.value.is_exception(), "{varbind}");
    }
}

#[tokio::test]
async fn v2c_walks_of_if_table_if_x_table_and_hr_storage_match_net_snmp() {
    bounded(60, async {
        let snmpd = agent();
        let mut client = session(&snmpd, snmpd.v2c(), fast());
        let roots = [oid(IF_TABLE), oid(IF_X_TABLE), oid(HR_STORAGE_TABLE)];
        let walks = walk_many(&mut client, &roots, &WalkOptions::default())
            .await
            .unwrap();
        for walk in &walks {
            assert_well_formed(walk);
            assert!(!walk.used_getnext, "bulk should work against snmpd");
            let ours: BTreeSet<Oid> = walk.varbinds.iter().map(|vb| vb.oid.clone()).collect();
            assert_eq!(ours, net_snmp_walk_oids(&snmpd, &walk.root.to_string()));
        }

        // ifTable has one ifIndex per interface, as ifNumber says.
        let if_number = client.get(&[oid(IF_NUMBER)]).await.unwrap()[0]
            .value
            .as_u64()
            .unwrap();
        let if_index = oid("1.3.6.1.2.1.2.2.1.1");
        let rows = walks[0]
            .varbinds
            .iter()
            .filter(|vb| vb.oid.starts_with(&if_index))
            .count();
        assert_eq!(u64::try_from(rows).unwrap(), if_number);
        // Counter64 columns decode as such (ifHCInOctets).
        let hc_in = oid("1.3.6.1.2.1.31.1.1.1.6");
        assert!(
            walks[1]
                .varbinds
                .iter()
                .any(|vb| vb.oid.starts_with(&hc_in) && matches!(vb.value, Value::Counter64(_)))
        );

        // The same OIDs over GETNEXT and with tiny bulks.
        for opts in [
            WalkOptions {
                use_bulk: false,
                ..WalkOptions::default()
            },
            WalkOptions {
                max_repetitions: 3,
                ..WalkOptions::default()
            },
        ] {
            let again = walk(&mut client, &oid(HR_STORAGE_TABLE), &opts)
                .await
                .unwrap();
            assert_well_formed(&again);
            let a: Vec<&Oid> = again.varbinds.iter().map(|vb| &vb.oid).collect();
            let b: Vec<&Oid> = walks[2].varbinds.iter().map(|vb| &vb.oid).collect();
            assert_eq!(a, b, "{opts:?}");
        }
    })
    .await;
}

#[tokio::test]
async fn v1_get_and_walk_work_without_getbulk() {
    bounded(30, async {
        let snmpd = agent();
        let community = snmpd.config().community.clone();
        let mut client = session(
            &snmpd,
            Credentials::V1 {
                community: community.as_str().into(),
            },
            fast(),
        );
        assert_eq!(client.version(), SnmpVersion::V1);
        let got = client.get(&[oid(SYS_NAME)]).await.unwrap();
        assert_eq!(text(&got[0]), snmpd.config().sys_name);
        let walk = walk(&mut client, &oid(IF_TABLE), &WalkOptions::default())
            .await
            .unwrap();
        assert_well_formed(&walk);
        assert!(walk.used_getnext);
        // v1 reports an absent instance as an error status.
        let err = client.get(&[oid("1.3.6.1.2.1.1.5.1")]).await.unwrap_err();
        assert!(matches!(err, SnmpError::Status { .. }), "{err:?}");
    })
    .await;
}

#[tokio::test]
async fn v3_auth_priv_works_with_every_configured_protocol_pair() {
    bounded(60, async {
        let snmpd = agent();
        for user in snmpd.config().users.clone() {
            let mut client = session(&snmpd, user.credentials(), fast());
            let got = client.get(&[oid(SYS_NAME)]).await;
            let got = got.unwrap_or_else(|e| panic!("user {}: {e}", user.name));
            assert_eq!(text(&got[0]), snmpd.config().sys_name, "user {}", user.name);
        }
    })
    .await;
}

#[tokio::test]
async fn v3_walks_with_sha_aes_and_sha256_aes256() {
    bounded(60, async {
        let snmpd = agent();
        let mut reference = session(&snmpd, snmpd.v2c(), fast());
        let expected = walk(&mut reference, &oid(IF_TABLE), &WalkOptions::default())
            .await
            .unwrap();
        for name in ["sha-aes", "sha256-aes256"] {
            let mut client = session(&snmpd, snmpd.v3(name).unwrap(), fast());
            assert_eq!(client.version(), SnmpVersion::V3);
            let walk = walk(&mut client, &oid(IF_TABLE), &WalkOptions::default())
                .await
                .unwrap();
            assert_well_formed(&walk);
            let a: Vec<&Oid> = walk.varbinds.iter().map(|vb| &vb.oid).collect();
            let b: Vec<&Oid> = expected.varbinds.iter().map(|vb| &vb.oid).collect();
            assert_eq!(a, b, "user {name}");
            assert_eq!(client.stats().sockets_opened, 1, "user {name}");
        }
    })
    .await;
}

fn with_passwords(credentials: Credentials, auth: &str, privacy: Option<&str>) -> Credentials {
    let Credentials::V3 {
        user,
        auth: proto,
        privacy: configured,
        context,
        ..
    } = credentials
    else {
        panic!("not v3")
    };
    Credentials::V3 {
        user,
        auth: proto,
        auth_pass: auth.into(),
        privacy: configured.map(|mut p| {
            if let Some(pass) = privacy {
                p.pass = pass.into();
            }
            p
        }),
        context,
    }
}

#[tokio::test]
async fn wrong_v3_password_or_user_fails_fast_as_an_auth_failure() {
    bounded(30, async {
        let snmpd = agent();
        let good = snmpd.v3("sha256-aes256").unwrap();
        let unknown_user = {
            let mut c = good.clone();
            if let Credentials::V3 { user, .. } = &mut c {
                *user = "nobody-here".into();
            }
            c
        };
        let cases = [
            (
                "wrong auth password",
                with_passwords(good.clone(), "not-the-password", None),
            ),
            ("unknown user", unknown_user),
        ];
        let options = SessionOptions {
            timeout: Duration::from_secs(2),
            retries: 2,
        };
        for (case, credentials) in cases {
            let mut client = session(&snmpd, credentials, options);
            let started = Instant::now();
            let err = client.get(&[oid(SYS_NAME)]).await.unwrap_err();
            let elapsed = started.elapsed();
            // The agent answers with a report: no timeout, no retry.
            assert!(
                matches!(err, SnmpError::AuthFailure { .. }),
                "{case}: {err:?}"
            );
            assert!(elapsed < Duration::from_secs(1), "{case}: took {elapsed:?}");
            assert_eq!(client.stats().timeouts, 0, "{case}");
            let message = err.to_string();
            assert!(
                message.contains("authentication failed"),
                "{case}: {message}"
            );
            assert!(!message.contains("not-the-password"), "{case}: {message}");
            assert!(!format!("{err:?}").contains("not-the-password"), "{case}");
        }
    })
    .await;
}

#[tokio::test]
async fn a_wrong_v3_privacy_password_is_a_timeout() {
    bounded(30, async {
        // net-snmp drops a request it cannot decrypt without a report (the decrypted bytes
        // just fail to parse), so there is nothing to tell this from an agent that is down.
        let snmpd = agent();
        let good = snmpd.v3("sha-aes").unwrap();
        let Credentials::V3 { auth_pass, .. } = &good else {
            unreachable!()
        };
        let credentials =
            with_passwords(good.clone(), auth_pass.expose(), Some("not-the-password"));
        let mut client = session(
            &snmpd,
            credentials,
            SessionOptions {
                timeout: Duration::from_millis(300),
                retries: 1,
            },
        );
        let err = client.get(&[oid(SYS_NAME)]).await.unwrap_err();
        assert!(
            matches!(err, SnmpError::Timeout { attempts: 2, .. }),
            "{err:?}"
        );
        assert!(!format!("{err} {err:?}").contains("not-the-password"));
    })
    .await;
}

#[tokio::test]
async fn an_unknown_community_times_out_after_the_configured_retries() {
    bounded(30, async {
        let snmpd = agent();
        let options = SessionOptions {
            timeout: Duration::from_millis(300),
            retries: 2,
        };
        let mut client = session(
            &snmpd,
            Credentials::V2c {
                community: "not-a-community".into(),
            },
            options,
        );
        let started = Instant::now();
        let err = client.get(&[oid(SYS_NAME)]).await.unwrap_err();
        let elapsed = started.elapsed();
        assert_eq!(
            err,
            SnmpError::Timeout {
                attempts: 3,
                timeout: Duration::from_millis(300)
            }
        );
        assert!(elapsed >= Duration::from_millis(850), "{elapsed:?}");
        assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
        assert_eq!(client.stats().attempts, 3);
        assert!(!err.to_string().contains("not-a-community"));
    })
    .await;
}

/// A client that kills snmpd once it has sent `after` requests.
struct KillAfter<'a> {
    inner: SnmpSession,
    snmpd: &'a mut Snmpd,
    after: usize,
    sent: usize,
}

impl KillAfter<'_> {
    fn count(&mut self) {
        self.sent += 1;
        if self.sent == self.after + 1 {
            self.snmpd.stop();
        }
    }
}

impl SnmpClient for KillAfter<'_> {
    fn version(&self) -> SnmpVersion {
        self.inner.version()
    }
    fn get<'a>(&'a mut self, oids: &'a [Oid]) -> SnmpFuture<'a, Vec<VarBind>> {
        self.count();
        self.inner.get(oids)
    }
    fn get_next<'a>(&'a mut self, oids: &'a [Oid]) -> SnmpFuture<'a, Vec<VarBind>> {
        self.count();
        self.inner.get_next(oids)
    }
    fn get_bulk<'a>(
        &'a mut self,
        oids: &'a [Oid],
        non_repeaters: u32,
        max_repetitions: u32,
    ) -> SnmpFuture<'a, Vec<VarBind>> {
        self.count();
        self.inner.get_bulk(oids, non_repeaters, max_repetitions)
    }
}

#[tokio::test]
async fn snmpd_killed_mid_walk_is_an_error_not_a_short_table() {
    bounded(30, async {
        for credentials in ["v2c", "sha-aes"] {
            let mut snmpd = agent();
            let credentials = match credentials {
                "v2c" => snmpd.v2c(),
                name => snmpd.v3(name).unwrap(),
            };
            let options = SessionOptions {
                timeout: Duration::from_millis(300),
                retries: 1,
            };
            let inner = session(&snmpd, credentials, options);
            let mut client = KillAfter {
                inner,
                snmpd: &mut snmpd,
                after: 2,
                sent: 0,
            };
            let opts = WalkOptions {
                max_repetitions: 4,
                ..WalkOptions::default()
            };
            let started = Instant::now();
            let result = walk(&mut client, &oid(IF_TABLE), &opts).await;
            let err = result.expect_err("a walk cut short must fail");
            // Nothing listens any more: ICMP port unreachable (Io) or silence (Timeout).
            assert!(
                matches!(err, SnmpError::Io { .. } | SnmpError::Timeout { .. }),
                "{err:?}"
            );
            assert!(client.sent > 2);
            assert!(started.elapsed() < Duration::from_secs(5));
        }
    })
    .await;
}

#[tokio::test]
async fn a_v3_session_recovers_by_itself_when_the_agent_restarts() {
    bounded(60, async {
        let mut snmpd = agent();
        let mut client = session(&snmpd, snmpd.v3("sha256-aes256").unwrap(), fast());
        let boots = |varbinds: Vec<VarBind>| varbinds[0].value.as_u64().unwrap();
        let before = boots(client.get(&[oid(SNMP_ENGINE_BOOTS)]).await.unwrap());

        snmpd.restart().unwrap();
        let after = client.get(&[oid(SNMP_ENGINE_BOOTS)]).await;
        let after = boots(after.unwrap_or_else(|e| panic!("{e}\n{}", snmpd.log())));
        assert_eq!(after, before + 1, "a restart increments snmpEngineBoots");
        // The agent's notInTimeWindow report made the session take the new boots and send
        // again, on the same socket.
        assert_eq!(client.stats().resyncs, 1, "{:?}", client.stats());
        assert_eq!(client.stats().sockets_opened, 1, "{:?}", client.stats());

        // And it keeps working, walks included.
        let walk = walk(&mut client, &oid(IF_TABLE), &WalkOptions::default())
            .await
            .unwrap();
        assert_well_formed(&walk);

        // Down: requests fail within their retries. Back up: the same session works again
        // (a new socket and engine discovery).
        snmpd.stop();
        let err = client.get(&[oid(SYS_NAME)]).await.unwrap_err();
        assert!(
            matches!(err, SnmpError::Io { .. } | SnmpError::Timeout { .. }),
            "{err:?}"
        );
        snmpd.restart().unwrap();
        let got = client.get(&[oid(SYS_NAME)]).await.unwrap();
        assert_eq!(text(&got[0]), snmpd.config().sys_name);
    })
    .await;
}

#[tokio::test]
async fn a_v3_session_recovers_when_the_agent_comes_back_with_a_new_engine_id() {
    bounded(60, async {
        let mut snmpd = agent();
        let mut client = session(&snmpd, snmpd.v3("sha-aes").unwrap(), fast());
        let engine_id = [oid("1.3.6.1.6.3.10.2.1.1.0")];
        let before = client.get(&engine_id).await.unwrap();

        snmpd.restart_with_fresh_state().unwrap();
        let after = client.get(&engine_id).await;
        let after = after.unwrap_or_else(|e| panic!("{e}\n{}", snmpd.log()));
        assert_ne!(
            after[0].value, before[0].value,
            "a fresh snmpd has a new engine ID"
        );
        // The agent's unknownEngineID report: rediscovered, then sent again.
        assert_eq!(client.stats().resyncs, 1, "{:?}", client.stats());
    })
    .await;
}

/// A UDP relay in front of snmpd, one upstream socket per client socket. It holds back the
/// very first answer for `delay` and then delivers it to whichever client socket spoke last:
/// the late answer a timed-out request leaves behind, arriving where the next request waits.
async fn delaying_relay(upstream: SocketAddr, delay: Duration) -> SocketAddr {
    let front = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let address = front.local_addr().unwrap();
    let latest: Arc<Mutex<Option<SocketAddr>>> = Arc::default();
    let first_held = Arc::new(AtomicBool::new(false));
    tokio::spawn(async move {
        let mut backs: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
        let mut buf = vec![0u8; 65536];
        while let Ok((n, client)) = front.recv_from(&mut buf).await {
            *latest.lock().unwrap() = Some(client);
            if let std::collections::hash_map::Entry::Vacant(entry) = backs.entry(client) {
                let back = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
                back.connect(upstream).await.unwrap();
                entry.insert(back.clone());
                let (front, latest, first_held) =
                    (front.clone(), latest.clone(), first_held.clone());
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 65536];
                    while let Ok(n) = back.recv(&mut buf).await {
                        let packet = buf[..n].to_vec();
                        if first_held.swap(true, Ordering::SeqCst) {
                            let _ = front.send_to(&packet, client).await;
                            continue;
                        }
                        let (front, latest) = (front.clone(), latest.clone());
                        tokio::spawn(async move {
                            tokio::time::sleep(delay).await;
                            let to = *latest.lock().unwrap();
                            if let Some(to) = to {
                                let _ = front.send_to(&packet, to).await;
                            }
                        });
                    }
                });
            }
            let _ = backs[&client].send(&buf[..n]).await;
        }
    });
    address
}

#[tokio::test]
async fn a_late_answer_is_never_taken_for_the_next_requests_answer() {
    bounded(30, async {
        let snmpd = agent();
        let relay = delaying_relay(snmpd.addr(), Duration::from_millis(700)).await;
        let options = SessionOptions {
            timeout: Duration::from_millis(400),
            retries: 2,
        };
        let mut client = SnmpSession::new(relay, snmpd.v2c(), options).unwrap();
        // Attempt 1 times out; attempt 2 (a new socket) is answered.
        let name = client.get(&[oid(SYS_NAME)]).await.unwrap();
        assert_eq!(text(&name[0]), snmpd.config().sys_name);
        // Let the held-back answer to attempt 1 arrive on the current socket.
        tokio::time::sleep(Duration::from_millis(500)).await;
        // It must not be read as this request's answer: the session sees the request ID
        // mismatch, drops that socket and asks again on a new one.
        let descr = client.get(&[oid(SYS_DESCR)]).await.unwrap();
        assert_eq!(descr[0].oid, oid(SYS_DESCR));
        assert!(text(&descr[0]).starts_with("Linux"));
        let stats = client.stats();
        assert_eq!(stats.timeouts, 1, "{stats:?}");
        assert_eq!(stats.sockets_opened, 3, "{stats:?}");
        assert_eq!(stats.attempts, 4, "{stats:?}");
    })
    .await;
}

// A scripted v2c agent for answers snmpd never gives.

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 128 {
        out.push(u8::try_from(len).unwrap());
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|&b| b == 0)
            .collect();
        out.push(0x80 | u8::try_from(bytes.len()).unwrap());
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

fn integer(n: i64) -> Vec<u8> {
    let bytes = n.to_be_bytes();
    let mut start = 0;
    while start < 7
        && ((bytes[start] == 0 && bytes[start + 1] & 0x80 == 0)
            || (bytes[start] == 0xff && bytes[start + 1] & 0x80 != 0))
    {
        start += 1;
    }
    tlv(0x02, &bytes[start..])
}

/// A v2c response: `varbinds` are encoded varbind SEQUENCEs.
fn response(request_id: i32, error_status: i64, error_index: i64, varbinds: &[Vec<u8>]) -> Vec<u8> {
    let pdu = [
        integer(request_id.into()),
        integer(error_status),
        integer(error_index),
        tlv(0x30, &varbinds.concat()),
    ]
    .concat();
    tlv(
        0x30,
        &[integer(1), tlv(0x04, b"scripted"), tlv(0xa2, &pdu)].concat(),
    )
}

fn varbind(oid_ber: &[u8], value: Vec<u8>) -> Vec<u8> {
    tlv(0x30, &[tlv(0x06, oid_ber), value].concat())
}

/// sysDescr.0 and sysName.0, BER content octets.
const SYS_DESCR_BER: [u8; 8] = [0x2b, 6, 1, 2, 1, 1, 1, 0];
const SYS_NAME_BER: [u8; 8] = [0x2b, 6, 1, 2, 1, 1, 5, 0];

/// Answers every request with `answer(request_id)`.
async fn scripted_agent(answer: fn(i32) -> Vec<u8>) -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let address = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        while let Ok((n, from)) = socket.recv_from(&mut buf).await {
            let request_id = snmp2::Pdu::from_bytes(&buf[..n]).unwrap().req_id;
            let _ = socket.send_to(&answer(request_id), from).await;
        }
    });
    address
}

async fn scripted_get(answer: fn(i32) -> Vec<u8>) -> Result<Vec<VarBind>, SnmpError> {
    let address = scripted_agent(answer).await;
    let credentials = Credentials::V2c {
        community: "scripted".into(),
    };
    let mut client = SnmpSession::new(address, credentials, fast()).unwrap();
    client.get(&[oid(SYS_DESCR), oid(SYS_NAME)]).await
}

#[tokio::test]
async fn a_short_or_undecodable_answer_is_a_decode_error_not_fewer_values() {
    bounded(30, async {
        // The scripted agent itself, answering properly.
        let good = scripted_get(|id| {
            response(
                id,
                0,
                0,
                &[
                    varbind(&SYS_DESCR_BER, tlv(0x04, b"box")),
                    varbind(&SYS_NAME_BER, tlv(0x04, b"r1")),
                ],
            )
        })
        .await
        .unwrap();
        assert_eq!(text(&good[1]), "r1");

        // One varbind of the two asked for.
        let short =
            scripted_get(|id| response(id, 0, 0, &[varbind(&SYS_DESCR_BER, tlv(0x04, b"box"))]))
                .await;
        assert!(matches!(short, Err(SnmpError::Decode { .. })), "{short:?}");

        // The second value is a Counter64 of 10 octets: snmp2 stops listing there.
        let undecodable = scripted_get(|id| {
            response(
                id,
                0,
                0,
                &[
                    varbind(&SYS_DESCR_BER, tlv(0x04, b"box")),
                    varbind(&SYS_NAME_BER, tlv(0x46, &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10])),
                ],
            )
        })
        .await;
        assert!(
            matches!(undecodable, Err(SnmpError::Decode { .. })),
            "{undecodable:?}"
        );

        // The right count, but not the OIDs asked for.
        let swapped = scripted_get(|id| {
            response(
                id,
                0,
                0,
                &[
                    varbind(&SYS_NAME_BER, tlv(0x04, b"r1")),
                    varbind(&SYS_DESCR_BER, tlv(0x04, b"box")),
                ],
            )
        })
        .await;
        assert!(
            matches!(swapped, Err(SnmpError::Decode { .. })),
            "{swapped:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn error_statuses_are_reported_by_name() {
    bounded(30, async {
        let too_big = scripted_get(|id| response(id, 1, 0, &[])).await;
        assert_eq!(too_big, Err(SnmpError::TooBig));
        let gen_err = scripted_get(|id| response(id, 5, 2, &[]))
            .await
            .unwrap_err();
        assert_eq!(
            gen_err.to_string(),
            "the agent answered with error status genErr (varbind 2)"
        );
    })
    .await;
}
