//! Walking a subtree: GETBULK (GETNEXT on v1, or when the agent's GETBULK is broken) from a root
//! OID until the agent's answers leave it.
//!
//! A walk either ends where the subtree ends ([`WalkEnd::Complete`]), stops at a bound or at an
//! agent bug and says so ([`Walk::end`]), or fails with the error that stopped it. Data from a
//! walk that failed half-way is never returned as if it were the whole table.

use super::client::{ErrorStatus, SnmpClient, SnmpError, SnmpVersion};
use super::types::{Oid, Value, VarBind};

/// How a walk is done and where it stops.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct WalkOptions {
    /// Rows asked for per GETBULK. Halved on tooBig; 25 fits most agents' 1,472-byte answers
    /// for counter columns while keeping a 1,000-interface table to ~40 requests per column.
    pub max_repetitions: u32,
    /// Use GETBULK (v2c/v3). Off for agents known to mishandle it.
    pub use_bulk: bool,
    /// Stop after this many varbinds (a runaway table, or an agent that never ends).
    pub max_varbinds: usize,
    /// Stop after this many requests: a bound on the walk's duration. Over GETBULK at 25 rows
    /// it allows 500,000 varbinds, so `max_varbinds` binds first; over GETNEXT (one varbind a
    /// request) it binds at 20,000 varbinds, 100 s at 5 ms a request.
    pub max_requests: usize,
    /// When the subtree is empty, GET the root itself (walking a scalar instance such as
    /// `sysName.0` returns it, as `snmpwalk` does). The poller walks table and group roots,
    /// never instances, and turns this off: on a device without the table it saves a round
    /// trip per root (9 of net-snmp's 31 requests per poll).
    pub get_root_if_empty: bool,
}

impl Default for WalkOptions {
    fn default() -> Self {
        WalkOptions {
            max_repetitions: 25,
            use_bulk: true,
            max_varbinds: 100_000,
            max_requests: 20_000,
            get_root_if_empty: true,
        }
    }
}

/// Why a walk ended.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum WalkEnd {
    /// The agent's answers left the subtree or its MIB view ended: every varbind is there.
    Complete,
    /// [`WalkOptions::max_varbinds`] was reached.
    VarbindLimit,
    /// [`WalkOptions::max_requests`] was reached.
    RequestLimit,
    /// The agent answered with an OID not after the previous one (a loop, or a broken table),
    /// even over GETNEXT. The varbinds before it are kept.
    NotIncreasing { previous: Oid, next: Oid },
}

impl std::fmt::Display for WalkEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WalkEnd::Complete => f.write_str("complete"),
            WalkEnd::VarbindLimit => f.write_str("the varbind limit was reached"),
            WalkEnd::RequestLimit => f.write_str("the request limit was reached"),
            WalkEnd::NotIncreasing { previous, next } => {
                write!(
                    f,
                    "the agent answered {next} after {previous} (OIDs not increasing)"
                )
            }
        }
    }
}

/// The result of walking one subtree.
#[must_use = "check `end` (or use `into_complete`): a walk can stop early"]
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Walk {
    pub root: Oid,
    /// In the agent's order (increasing OIDs), all under `root`.
    pub varbinds: Vec<VarBind>,
    pub end: WalkEnd,
    /// Requests sent (a request retried by the client counts once).
    pub requests: usize,
    /// Whether the walk finished over GETNEXT (v1, bulk disabled, or bulk found broken).
    pub used_getnext: bool,
    /// The max-repetitions in use at the end (lower than asked if the agent said tooBig).
    pub max_repetitions: u32,
}

impl Walk {
    pub fn is_complete(&self) -> bool {
        self.end == WalkEnd::Complete
    }

    /// The varbinds if the walk is complete, else [`SnmpError::WalkIncomplete`].
    pub fn into_complete(self) -> Result<Vec<VarBind>, SnmpError> {
        match self.end {
            WalkEnd::Complete => Ok(self.varbinds),
            end => Err(SnmpError::WalkIncomplete {
                root: self.root,
                varbinds: self.varbinds.len(),
                reason: end.to_string(),
            }),
        }
    }
}

/// How the next request is asked.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Bulk(u32),
    GetNext,
}

/// Walks the subtree under `root`.
///
/// GETBULK with [`WalkOptions::max_repetitions`]; on tooBig the repetitions are halved (down to
/// GETNEXT); an error status, an undecodable or empty answer, or out-of-order OIDs over
/// GETBULK switch the rest of the walk to GETNEXT, since some agents get GETBULK wrong and
/// GETNEXT right. Timeouts and authentication failures end the walk with that error: asking
/// again differently would only take longer. If the subtree is empty, the root itself is tried
/// with GET, so walking a scalar instance (`sysName.0`) returns it, as `snmpwalk` does.
pub async fn walk<C: SnmpClient + ?Sized>(
    client: &mut C,
    root: &Oid,
    opts: &WalkOptions,
) -> Result<Walk, SnmpError> {
    let max_repetitions = opts.max_repetitions.max(1);
    let mut mode = if opts.use_bulk && client.version() != SnmpVersion::V1 {
        Mode::Bulk(max_repetitions)
    } else {
        Mode::GetNext
    };
    let mut walk = Walk {
        root: root.clone(),
        varbinds: Vec::new(),
        end: WalkEnd::Complete,
        requests: 0,
        used_getnext: mode == Mode::GetNext,
        max_repetitions,
    };
    let mut cursor = root.clone();
    loop {
        if walk.requests >= opts.max_requests {
            walk.end = WalkEnd::RequestLimit;
            break;
        }
        walk.requests += 1;
        let request = std::slice::from_ref(&cursor);
        let answer = match mode {
            Mode::Bulk(n) => client.get_bulk(request, 0, n).await,
            Mode::GetNext => client.get_next(request).await,
        };
        let varbinds = match (answer, mode) {
            (Ok(varbinds), _) => varbinds,
            (Err(SnmpError::TooBig), Mode::Bulk(n)) => {
                mode = if n > 1 {
                    Mode::Bulk(n / 2)
                } else {
                    Mode::GetNext
                };
                continue;
            }
            // Bulk broken: an error status or an answer we cannot use. GETNEXT from the same
            // place; everything up to here was already checked.
            (Err(SnmpError::Status { .. } | SnmpError::Decode { .. }), Mode::Bulk(_)) => {
                mode = Mode::GetNext;
                continue;
            }
            // v1 says "end of the MIB view" this way.
            (
                Err(SnmpError::Status {
                    status: ErrorStatus::NoSuchName,
                    ..
                }),
                Mode::GetNext,
            ) => break,
            (Err(error), _) => return Err(error),
        };
        if varbinds.is_empty() {
            match mode {
                Mode::Bulk(_) => {
                    mode = Mode::GetNext;
                    continue;
                }
                Mode::GetNext => {
                    return Err(SnmpError::Decode {
                        detail: format!("an empty answer to GETNEXT {cursor}"),
                    });
                }
            }
        }
        match take_answer(&mut walk, &mut cursor, varbinds, root, opts) {
            Step::Continue => {}
            Step::Stop => break,
            Step::NotIncreasing { previous, next } => match mode {
                Mode::Bulk(_) => mode = Mode::GetNext,
                Mode::GetNext => {
                    walk.end = WalkEnd::NotIncreasing { previous, next };
                    break;
                }
            },
        }
    }
    walk.used_getnext |= mode == Mode::GetNext;
    if let Mode::Bulk(n) = mode {
        walk.max_repetitions = n;
    }
    if opts.get_root_if_empty && walk.varbinds.is_empty() && walk.is_complete() {
        walk.requests += 1;
        match client.get(std::slice::from_ref(root)).await {
            Ok(found) => walk
                .varbinds
                .extend(found.into_iter().filter(|vb| !vb.value.is_exception())),
            // v1: the root is not an instance either.
            Err(SnmpError::Status {
                status: ErrorStatus::NoSuchName,
                ..
            }) => {}
            Err(error) => return Err(error),
        }
    }
    Ok(walk)
}

enum Step {
    Continue,
    Stop,
    NotIncreasing { previous: Oid, next: Oid },
}

/// Appends an answer's varbinds while they stay in the subtree and increase.
fn take_answer(
    walk: &mut Walk,
    cursor: &mut Oid,
    varbinds: Vec<VarBind>,
    root: &Oid,
    opts: &WalkOptions,
) -> Step {
    for varbind in varbinds {
        // endOfMibView ends the walk; noSuchObject/noSuchInstance are not valid GETNEXT
        // answers, but some agents send them at the end of their view.
        if varbind.value.is_exception() || !varbind.oid.starts_with(root) {
            return Step::Stop;
        }
        if varbind.oid <= *cursor {
            return Step::NotIncreasing {
                previous: cursor.clone(),
                next: varbind.oid,
            };
        }
        cursor.clone_from(&varbind.oid);
        walk.varbinds.push(varbind);
        if walk.varbinds.len() >= opts.max_varbinds {
            walk.end = WalkEnd::VarbindLimit;
            return Step::Stop;
        }
    }
    Step::Continue
}

/// Walks each root in turn. Fails at the first walk that fails; incomplete walks are returned
/// flagged, as from [`walk`].
pub async fn walk_many<C: SnmpClient + ?Sized>(
    client: &mut C,
    roots: &[Oid],
    opts: &WalkOptions,
) -> Result<Vec<Walk>, SnmpError> {
    let mut walks = Vec::with_capacity(roots.len());
    for root in roots {
        walks.push(walk(client, root, opts).await?);
    }
    Ok(walks)
}

/// The value of `oid` in a walk's varbinds, if present (binary search: they are sorted).
pub fn lookup<'a>(varbinds: &'a [VarBind], oid: &Oid) -> Option<&'a Value> {
    varbinds
        .binary_search_by(|vb| vb.oid.cmp(oid))
        .ok()
        .map(|i| &varbinds[i].value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snmp::testing::{Fault, MemoryAgent};

    fn oid(s: &str) -> Oid {
        s.parse().unwrap()
    }

    /// A small IF-MIB-like tree: 3 columns × `rows` rows under 1.3.6.1.2.1.2.2.1, plus objects
    /// before and after it so the walk has to stop at the subtree's edge.
    fn table(rows: u32) -> Vec<VarBind> {
        let mut out = vec![VarBind {
            oid: oid("1.3.6.1.2.1.1.5.0"),
            value: Value::OctetString(b"r1".to_vec()),
        }];
        for column in 1..=3 {
            for row in 1..=rows {
                out.push(VarBind {
                    oid: oid("1.3.6.1.2.1.2.2.1").child(&[column, row]),
                    value: Value::Counter32(column * 1000 + row),
                });
            }
        }
        out.push(VarBind {
            oid: oid("1.3.6.1.2.1.4.1.0"),
            value: Value::Integer(1),
        });
        out
    }

    fn if_table() -> Oid {
        oid("1.3.6.1.2.1.2.2")
    }

    fn expected(rows: u32) -> Vec<VarBind> {
        table(rows)
            .into_iter()
            .filter(|vb| vb.oid.starts_with(&if_table()))
            .collect()
    }

    #[tokio::test]
    async fn bulk_walk_returns_the_whole_subtree_and_stops_at_its_edge() {
        let mut agent = MemoryAgent::new(SnmpVersion::V2c, table(30));
        let walk = walk(&mut agent, &if_table(), &WalkOptions::default())
            .await
            .unwrap();
        assert!(walk.is_complete());
        assert_eq!(walk.varbinds, expected(30));
        assert!(!walk.used_getnext);
        // 90 varbinds at 25 a request: 4 requests, the last one crossing the edge.
        assert_eq!(walk.requests, 4);
    }

    #[tokio::test]
    async fn v1_walks_over_getnext_and_ends_on_no_such_name() {
        let mut agent = MemoryAgent::new(SnmpVersion::V1, expected(4));
        let walk = walk(&mut agent, &if_table(), &WalkOptions::default())
            .await
            .unwrap();
        assert!(walk.is_complete());
        assert_eq!(walk.varbinds, expected(4));
        assert!(walk.used_getnext);
        assert_eq!(agent.bulk_requests(), 0);
    }

    #[tokio::test]
    async fn too_big_halves_max_repetitions_until_the_answer_fits() {
        let mut agent = MemoryAgent::new(SnmpVersion::V2c, table(40));
        agent.fault(Fault::TooBigAbove(7));
        let walk = walk(&mut agent, &if_table(), &WalkOptions::default())
            .await
            .unwrap();
        assert!(walk.is_complete());
        assert_eq!(walk.varbinds, expected(40));
        // 25 → 12 → 6.
        assert_eq!(walk.max_repetitions, 6);
        assert!(!walk.used_getnext);
    }

    #[tokio::test]
    async fn too_big_even_for_one_row_falls_back_to_getnext() {
        let mut agent = MemoryAgent::new(SnmpVersion::V2c, table(3));
        agent.fault(Fault::TooBigAbove(0));
        let walk = walk(&mut agent, &if_table(), &WalkOptions::default())
            .await
            .unwrap();
        assert!(walk.is_complete());
        assert_eq!(walk.varbinds, expected(3));
        assert!(walk.used_getnext);
    }

    #[tokio::test]
    async fn broken_bulk_falls_back_to_getnext() {
        for fault in [Fault::BulkGenErr, Fault::BulkEmpty, Fault::BulkRepeatsFirst] {
            let mut agent = MemoryAgent::new(SnmpVersion::V2c, table(10));
            agent.fault(fault.clone());
            let walk = walk(&mut agent, &if_table(), &WalkOptions::default())
                .await
                .unwrap();
            assert!(walk.is_complete(), "{fault:?}");
            assert_eq!(walk.varbinds, expected(10), "{fault:?}");
            assert!(walk.used_getnext, "{fault:?}");
        }
    }

    #[tokio::test]
    async fn a_looping_agent_ends_the_walk_flagged_not_forever() {
        let mut agent = MemoryAgent::new(SnmpVersion::V2c, table(10));
        // After the 5th row of column 1 the agent answers the 2nd row again.
        agent.fault(Fault::LoopAfter(
            oid("1.3.6.1.2.1.2.2.1.1.5"),
            oid("1.3.6.1.2.1.2.2.1.1.2"),
        ));
        let walk = walk(&mut agent, &if_table(), &WalkOptions::default())
            .await
            .unwrap();
        assert!(!walk.is_complete());
        assert!(
            matches!(walk.end, WalkEnd::NotIncreasing { .. }),
            "{:?}",
            walk.end
        );
        assert_eq!(walk.varbinds, expected(10)[..5].to_vec());
        let err = walk.into_complete().unwrap_err();
        assert!(matches!(err, SnmpError::WalkIncomplete { .. }), "{err}");
    }

    #[tokio::test]
    async fn limits_stop_the_walk_and_say_so() {
        let mut agent = MemoryAgent::new(SnmpVersion::V2c, table(100));
        let opts = WalkOptions {
            max_varbinds: 42,
            ..WalkOptions::default()
        };
        let walk1 = walk(&mut agent, &if_table(), &opts).await.unwrap();
        assert_eq!(walk1.end, WalkEnd::VarbindLimit);
        assert_eq!(walk1.varbinds.len(), 42);

        let opts = WalkOptions {
            max_requests: 3,
            ..WalkOptions::default()
        };
        let walk2 = walk(&mut agent, &if_table(), &opts).await.unwrap();
        assert_eq!(walk2.end, WalkEnd::RequestLimit);
        assert_eq!(walk2.varbinds.len(), 75);
        assert_eq!(walk2.requests, 3);
    }

    #[tokio::test]
    async fn a_failure_mid_walk_is_an_error_not_a_short_table() {
        let mut agent = MemoryAgent::new(SnmpVersion::V2c, table(100));
        agent.fault(Fault::TimeoutAfterRequests(2));
        let err = walk(&mut agent, &if_table(), &WalkOptions::default())
            .await
            .unwrap_err();
        assert!(matches!(err, SnmpError::Timeout { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn walking_a_scalar_instance_returns_it() {
        let mut agent = MemoryAgent::new(SnmpVersion::V2c, table(2));
        let sys_name = oid("1.3.6.1.2.1.1.5.0");
        let walk = walk(&mut agent, &sys_name, &WalkOptions::default())
            .await
            .unwrap();
        assert!(walk.is_complete());
        assert_eq!(walk.varbinds.len(), 1);
        assert_eq!(walk.varbinds[0].value.as_text().as_deref(), Some("r1"));

        let absent = walk_many(
            &mut agent,
            &[oid("1.3.6.1.2.1.99"), if_table()],
            &WalkOptions::default(),
        )
        .await
        .unwrap();
        assert!(absent[0].varbinds.is_empty() && absent[0].is_complete());
        assert_eq!(absent[1].varbinds, expected(2));
    }

    #[tokio::test]
    async fn without_get_root_an_absent_table_costs_one_request() {
        let mut agent = MemoryAgent::new(SnmpVersion::V2c, table(2));
        let opts = WalkOptions {
            get_root_if_empty: false,
            ..WalkOptions::default()
        };
        let absent = walk(&mut agent, &oid("1.3.6.1.2.1.99"), &opts)
            .await
            .unwrap();
        assert!(absent.varbinds.is_empty() && absent.is_complete());
        assert_eq!(absent.requests, 1);
        // A present table is walked the same either way.
        let present = walk(&mut agent, &if_table(), &opts).await.unwrap();
        assert_eq!(present.varbinds, expected(2));
    }

    #[tokio::test]
    async fn end_of_mib_view_ends_the_walk() {
        // The table is the last thing in the agent's view.
        let mut agent = MemoryAgent::new(SnmpVersion::V2c, expected(7));
        let walk = walk(&mut agent, &if_table(), &WalkOptions::default())
            .await
            .unwrap();
        assert!(walk.is_complete());
        assert_eq!(walk.varbinds, expected(7));
        assert_eq!(
            lookup(&walk.varbinds, &oid("1.3.6.1.2.1.2.2.1.2.3")),
            Some(&Value::Counter32(2003))
        );
    }
}
