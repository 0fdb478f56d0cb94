//! An SNMP agent in memory: answers GET, GETNEXT and GETBULK from a sorted set of varbinds
//! (a recorded walk), as a v1 or v2c agent would, with optional [`Fault`]s that reproduce
//! agent bugs the walk must survive.

use std::collections::BTreeMap;
use std::ops::Bound;

use crate::snmp::client::{ErrorStatus, SnmpClient, SnmpError, SnmpFuture, SnmpVersion};
use crate::snmp::types::{Oid, Value, VarBind, parse_walk};

/// A misbehaviour to reproduce.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Fault {
    /// GETBULK with max-repetitions above this answers tooBig.
    TooBigAbove(u32),
    /// GETBULK answers genErr.
    BulkGenErr,
    /// GETBULK answers with no varbinds.
    BulkEmpty,
    /// GETBULK answers its first varbind repeated (a known firmware bug).
    BulkRepeatsFirst,
    /// The object after the first OID is answered as the second (an agent that loops).
    LoopAfter(Oid, Oid),
    /// After this many requests every request times out (the agent went away).
    TimeoutAfterRequests(usize),
}

/// See the module documentation.
#[derive(Clone, Debug)]
pub struct MemoryAgent {
    version: SnmpVersion,
    mib: BTreeMap<Oid, Value>,
    faults: Vec<Fault>,
    requests: usize,
    bulk_requests: usize,
}

impl MemoryAgent {
    pub fn new(version: SnmpVersion, varbinds: impl IntoIterator<Item = VarBind>) -> MemoryAgent {
        MemoryAgent {
            version,
            mib: varbinds.into_iter().map(|vb| (vb.oid, vb.value)).collect(),
            faults: Vec::new(),
            requests: 0,
            bulk_requests: 0,
        }
    }

    /// An agent serving a recorded walk (the format of [`parse_walk`]).
    pub fn from_walk(version: SnmpVersion, text: &str) -> Result<MemoryAgent, String> {
        Ok(MemoryAgent::new(version, parse_walk(text)?))
    }

    pub fn fault(&mut self, fault: Fault) -> &mut MemoryAgent {
        self.faults.push(fault);
        self
    }

    /// Requests answered (or failed) so far.
    pub fn requests(&self) -> usize {
        self.requests
    }

    pub fn bulk_requests(&self) -> usize {
        self.bulk_requests
    }

    /// Counts a request; the timeout fault, if due.
    fn begin(&mut self) -> Result<(), SnmpError> {
        self.requests += 1;
        for fault in &self.faults {
            if let Fault::TimeoutAfterRequests(n) = fault
                && self.requests > *n
            {
                return Err(SnmpError::Timeout {
                    attempts: 1,
                    timeout: std::time::Duration::ZERO,
                });
            }
        }
        Ok(())
    }

    fn next_after(&self, oid: &Oid) -> Option<VarBind> {
        for fault in &self.faults {
            if let Fault::LoopAfter(after, back) = fault
                && after == oid
            {
                return self.mib.get(back).map(|value| VarBind {
                    oid: back.clone(),
                    value: value.clone(),
                });
            }
        }
        self.mib
            .range((Bound::Excluded(oid), Bound::Unbounded))
            .next()
            .map(|(oid, value)| VarBind {
                oid: oid.clone(),
                value: value.clone(),
            })
    }

    fn end_of_view(&self, oid: &Oid, index: usize) -> Result<VarBind, SnmpError> {
        match self.version {
            SnmpVersion::V1 => Err(SnmpError::Status {
                status: ErrorStatus::NoSuchName,
                index: u32::try_from(index + 1).unwrap_or(u32::MAX),
            }),
            _ => Ok(VarBind {
                oid: oid.clone(),
                value: Value::EndOfMibView,
            }),
        }
    }

    fn answer_get(&mut self, oids: &[Oid]) -> Result<Vec<VarBind>, SnmpError> {
        self.begin()?;
        let mut out = Vec::with_capacity(oids.len());
        for (i, oid) in oids.iter().enumerate() {
            let value = match self.mib.get(oid) {
                Some(value) => value.clone(),
                None if self.version == SnmpVersion::V1 => {
                    return Err(SnmpError::Status {
                        status: ErrorStatus::NoSuchName,
                        index: u32::try_from(i + 1).unwrap_or(u32::MAX),
                    });
                }
                None => {
                    let parent = Oid(oid.0[..oid.0.len().saturating_sub(1)].to_vec());
                    let object_exists = self
                        .mib
                        .range(&parent..)
                        .next()
                        .is_some_and(|(o, _)| o.starts_with(&parent) && !parent.0.is_empty());
                    if object_exists {
                        Value::NoSuchInstance
                    } else {
                        Value::NoSuchObject
                    }
                }
            };
            out.push(VarBind {
                oid: oid.clone(),
                value,
            });
        }
        Ok(out)
    }

    fn answer_get_next(&mut self, oids: &[Oid]) -> Result<Vec<VarBind>, SnmpError> {
        self.begin()?;
        let mut out = Vec::with_capacity(oids.len());
        for (i, oid) in oids.iter().enumerate() {
            match self.next_after(oid) {
                Some(varbind) => out.push(varbind),
                None => out.push(self.end_of_view(oid, i)?),
            }
        }
        Ok(out)
    }

    fn answer_get_bulk(
        &mut self,
        oids: &[Oid],
        non_repeaters: u32,
        max_repetitions: u32,
    ) -> Result<Vec<VarBind>, SnmpError> {
        if self.version == SnmpVersion::V1 {
            // A v1 agent drops what it cannot parse.
            self.requests += 1;
            return Err(SnmpError::Timeout {
                attempts: 1,
                timeout: std::time::Duration::ZERO,
            });
        }
        self.begin()?;
        self.bulk_requests += 1;
        for fault in &self.faults {
            match fault {
                Fault::TooBigAbove(n) if max_repetitions > *n => return Err(SnmpError::TooBig),
                Fault::BulkGenErr => {
                    return Err(SnmpError::Status {
                        status: ErrorStatus::GenErr,
                        index: 0,
                    });
                }
                Fault::BulkEmpty => return Ok(Vec::new()),
                _ => {}
            }
        }
        let repeats_first = self.faults.contains(&Fault::BulkRepeatsFirst);
        let singles = usize::try_from(non_repeaters)
            .unwrap_or(usize::MAX)
            .min(oids.len());
        let mut out = Vec::new();
        for oid in &oids[..singles] {
            out.push(self.next_after(oid).unwrap_or_else(|| end_of_mib_view(oid)));
        }
        let mut cursors: Vec<Oid> = oids[singles..].to_vec();
        for _ in 0..max_repetitions {
            for cursor in &mut cursors {
                let varbind = self
                    .next_after(cursor)
                    .unwrap_or_else(|| end_of_mib_view(cursor));
                if !repeats_first {
                    cursor.clone_from(&varbind.oid);
                }
                out.push(varbind);
            }
        }
        Ok(out)
    }
}

/// What a v2c agent answers past the end of its view.
fn end_of_mib_view(oid: &Oid) -> VarBind {
    VarBind {
        oid: oid.clone(),
        value: Value::EndOfMibView,
    }
}

impl SnmpClient for MemoryAgent {
    fn version(&self) -> SnmpVersion {
        self.version
    }

    fn get<'a>(&'a mut self, oids: &'a [Oid]) -> SnmpFuture<'a, Vec<VarBind>> {
        let answer = self.answer_get(oids);
        Box::pin(async move { answer })
    }

    fn get_next<'a>(&'a mut self, oids: &'a [Oid]) -> SnmpFuture<'a, Vec<VarBind>> {
        let answer = self.answer_get_next(oids);
        Box::pin(async move { answer })
    }

    fn get_bulk<'a>(
        &'a mut self,
        oids: &'a [Oid],
        non_repeaters: u32,
        max_repetitions: u32,
    ) -> SnmpFuture<'a, Vec<VarBind>> {
        let answer = self.answer_get_bulk(oids, non_repeaters, max_repetitions);
        Box::pin(async move { answer })
    }
}
