//! Reading conceptual tables and scalars out of a flat walk, with every oddity turned into a
//! problem string instead of a panic or an abort. The MIB modules only describe columns; how a
//! cell of the wrong type or a row without an index is reported lives here, once.

use std::collections::BTreeMap;

use crate::snmp::types::{Oid, Value, VarBind};

use super::Problems;

/// Builds an [`Oid`] from arcs. Module OIDs are written as `&[u32]` constants so they can be
/// `const`; this turns them into the owned form the walk uses.
pub(crate) fn oid(arcs: &[u32]) -> Oid {
    Oid(arcs.to_vec())
}

/// The name of a value's type, for problem messages.
pub(crate) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Integer(_) => "INTEGER",
        Value::OctetString(_) => "OCTET STRING",
        Value::ObjectIdentifier(_) => "OBJECT IDENTIFIER",
        Value::IpAddress(_) => "IpAddress",
        Value::Counter32(_) => "Counter32",
        Value::Unsigned32(_) => "Gauge32",
        Value::Timeticks(_) => "TimeTicks",
        Value::Counter64(_) => "Counter64",
        Value::Opaque(_) => "Opaque",
        Value::Null => "NULL",
        Value::NoSuchObject => "noSuchObject",
        Value::NoSuchInstance => "noSuchInstance",
        Value::EndOfMibView => "endOfMibView",
    }
}

/// Width of an SNMP counter: rates need it to tell a wrap (32-bit, wraps every 34 s at
/// 1 Gb/s) from a reset (64-bit never wraps in practice).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum CounterWidth {
    #[serde(rename = "32")]
    Bits32,
    #[serde(rename = "64")]
    Bits64,
}

/// A counter reading with the width it was read at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Counter {
    pub value: u64,
    pub bits: CounterWidth,
}

/// One row of a table: its index arcs and its cells by column number.
#[derive(Debug)]
pub(crate) struct Row<'a> {
    pub index: Vec<u32>,
    cells: BTreeMap<u32, &'a VarBind>,
}

/// Rows of the table whose entry OID is `entry` (e.g. `ifEntry` 1.3.6.1.2.1.2.2.1), keyed by
/// index. Varbinds outside the entry are ignored (a module may be handed the whole walk).
/// Exception values (noSuchObject, ...) are absences, not problems: a walk of an
/// unimplemented table returns one at its root. A cell with no index, or a duplicate, is a
/// problem; the first of duplicates wins so the result does not depend on walk order.
pub(crate) fn table<'a>(
    walked: &'a [VarBind],
    entry: &Oid,
    problems: &mut Problems,
) -> BTreeMap<Vec<u32>, Row<'a>> {
    let mut rows: BTreeMap<Vec<u32>, Row<'a>> = BTreeMap::new();
    for vb in walked {
        let Some(suffix) = vb.oid.suffix(entry) else {
            continue;
        };
        if vb.value.is_exception() {
            continue;
        }
        let Some((&column, index)) = suffix.split_first() else {
            problems.push(
                &vb.oid,
                "a value at the table entry itself, not in a column",
            );
            continue;
        };
        if index.is_empty() {
            problems.push(&vb.oid, format!("column {column} without an index"));
            continue;
        }
        let row = rows.entry(index.to_vec()).or_insert_with(|| Row {
            index: index.to_vec(),
            cells: BTreeMap::new(),
        });
        if row.cells.contains_key(&column) {
            problems.push(&vb.oid, "returned twice; the first value is kept");
            continue;
        }
        row.cells.insert(column, vb);
    }
    rows
}

/// The value of a scalar such as `sysName.0`, if walked and not an exception.
pub(crate) fn scalar<'a>(walked: &'a [VarBind], object: &Oid) -> Option<&'a VarBind> {
    let instance = object.child(&[0]);
    walked
        .iter()
        .find(|vb| vb.oid == instance && !vb.value.is_exception())
}

/// Typed reads of one value. Each returns `None` for an absent value and, for a value of the
/// wrong type, records a problem naming the OID and returns `None`, so one bad cell empties
/// one field rather than losing the row.
pub(crate) trait Cell<'a> {
    fn varbind(&self) -> Option<&'a VarBind>;

    /// An octet string as trimmed text; empty text is `None` (an empty `ifAlias` means "no
    /// alias", and keeping `Some("")` would make every consumer check for it).
    fn text(&self, problems: &mut Problems) -> Option<String> {
        self.bytes(problems)?;
        self.varbind()?.value.as_text().filter(|t| !t.is_empty())
    }

    fn bytes(&self, problems: &mut Problems) -> Option<&'a [u8]> {
        let vb = self.varbind()?;
        match &vb.value {
            Value::OctetString(b) | Value::Opaque(b) => Some(b),
            other => {
                problems.push(
                    &vb.oid,
                    format!("expected an OCTET STRING, got {}", kind(other)),
                );
                None
            }
        }
    }

    /// A signed integer. Any integer-like type is accepted: agents that send Gauge32 where
    /// the MIB says INTEGER are common and the number means the same.
    fn int(&self, problems: &mut Problems) -> Option<i64> {
        let vb = self.varbind()?;
        let n = vb.value.as_i64();
        if n.is_none() {
            problems.push(
                &vb.oid,
                format!("expected an integer, got {}", kind(&vb.value)),
            );
        }
        n
    }

    /// A non-negative integer that fits `u32` (indexes, enums, sizes in Mb/s).
    fn u32(&self, problems: &mut Problems) -> Option<u32> {
        let vb = self.varbind()?;
        let n = self.int(problems)?;
        let out = u32::try_from(n).ok();
        if out.is_none() {
            problems.push(&vb.oid, format!("{n} is out of range"));
        }
        out
    }

    /// A non-negative integer of any width (ifSpeed, sizes).
    fn u64(&self, problems: &mut Problems) -> Option<u64> {
        let vb = self.varbind()?;
        let n = vb.value.as_u64();
        if n.is_none() {
            let got = match vb.value {
                Value::Integer(i) => format!("negative {i}"),
                ref other => kind(other).to_string(),
            };
            problems.push(
                &vb.oid,
                format!("expected a non-negative integer, got {got}"),
            );
        }
        n
    }

    /// A counter with the width its type says. The width follows the value's type, not the
    /// column: an HC column answered with Counter32 (seen on buggy agents) still wraps at 2^32.
    fn counter(&self, problems: &mut Problems) -> Option<Counter> {
        let vb = self.varbind()?;
        match vb.value {
            Value::Counter32(n) | Value::Unsigned32(n) => Some(Counter {
                value: n.into(),
                bits: CounterWidth::Bits32,
            }),
            Value::Counter64(n) => Some(Counter {
                value: n,
                bits: CounterWidth::Bits64,
            }),
            ref other => {
                problems.push(&vb.oid, format!("expected a counter, got {}", kind(other)));
                None
            }
        }
    }

    fn timeticks(&self, problems: &mut Problems) -> Option<u32> {
        let vb = self.varbind()?;
        match vb.value {
            Value::Timeticks(n) => Some(n),
            ref other => {
                problems.push(&vb.oid, format!("expected TimeTicks, got {}", kind(other)));
                None
            }
        }
    }

    fn object_id(&self, problems: &mut Problems) -> Option<Oid> {
        let vb = self.varbind()?;
        match &vb.value {
            Value::ObjectIdentifier(o) => Some(o.clone()),
            other => {
                problems.push(
                    &vb.oid,
                    format!("expected an OBJECT IDENTIFIER, got {}", kind(other)),
                );
                None
            }
        }
    }
}

impl<'a> Cell<'a> for Option<&'a VarBind> {
    fn varbind(&self) -> Option<&'a VarBind> {
        *self
    }
}

impl<'a> Row<'a> {
    /// The cell of `column`, to read with [`Cell`].
    pub fn col(&self, column: u32) -> Option<&'a VarBind> {
        self.cells.get(&column).copied()
    }

    /// Any cell's OID, for problems about the row as a whole (e.g. a bad index).
    pub fn any_oid(&self) -> Option<&'a Oid> {
        self.cells.values().next().map(|vb| &vb.oid)
    }

    /// The index as a single `u32` arc (ifIndex, entPhysicalIndex, ...). Records a problem
    /// and returns `None` when the index has another shape, so the caller skips the row.
    pub fn single_index(&self, problems: &mut Problems) -> Option<u32> {
        match self.index.as_slice() {
            [n] => Some(*n),
            _ => {
                if let Some(oid) = self.any_oid() {
                    problems.push(
                        oid,
                        format!(
                            "index {} is not a single number; row skipped",
                            Oid(self.index.clone())
                        ),
                    );
                }
                None
            }
        }
    }
}

/// Reads a column a row cannot exist without (an FDB entry's port, a CDP device id). Absent or
/// unusable, it costs the row, and one problem says which and why.
pub(crate) fn required<'a, T>(
    row: &Row<'a>,
    column: u32,
    name: &str,
    read: impl FnOnce(&'a Value) -> Option<T>,
    problems: &mut Problems,
) -> Option<T> {
    match row.col(column) {
        Some(vb) => {
            let out = read(&vb.value);
            if out.is_none() {
                problems.push(
                    &vb.oid,
                    format!("{} is not a usable {name}; row skipped", kind(&vb.value)),
                );
            }
            out
        }
        None => {
            if let Some(oid) = row.any_oid() {
                problems.push(oid, format!("no {name}; row skipped"));
            }
            None
        }
    }
}

/// `aa:bb:cc:dd:ee:ff`, lower case; any length (EUI-64 and InfiniBand addresses too).
pub(crate) fn format_mac(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Text if the bytes are printable UTF-8, else `aa:bb:..` hex: several MIB columns (LLDP
/// ids, serials) are declared as octet strings that usually but not always hold text.
pub(crate) fn text_or_hex(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) if !s.is_empty() && s.chars().all(|c| !c.is_control()) => s.trim().to_string(),
        _ => format_mac(bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vb(oid: &str, value: Value) -> VarBind {
        VarBind {
            oid: oid.parse().unwrap(),
            value,
        }
    }

    #[test]
    fn cells_are_grouped_by_index_and_exceptions_are_absences() {
        let walked = vec![
            vb("1.3.6.1.2.1.2.2.1.2.1", Value::OctetString(b"lo".to_vec())),
            vb(
                "1.3.6.1.2.1.2.2.1.2.2",
                Value::OctetString(b"eth0".to_vec()),
            ),
            vb("1.3.6.1.2.1.2.2.1.5.2", Value::NoSuchInstance),
            vb("1.3.6.1.2.1.2.2.1", Value::NoSuchObject),
            vb(
                "1.3.6.1.2.1.31.1.1.1.1.1",
                Value::OctetString(b"x".to_vec()),
            ),
        ];
        let mut problems = Problems::default();
        let rows = table(&walked, &oid(&[1, 3, 6, 1, 2, 1, 2, 2, 1]), &mut problems);
        assert_eq!(rows.len(), 2);
        assert!(rows[&vec![2]].col(5).is_none());
        assert!(problems.is_empty(), "{problems:?}");
    }

    #[test]
    fn a_cell_without_index_or_twice_is_a_problem() {
        let walked = vec![
            vb(
                "1.3.6.1.2.1.2.2.1.2",
                Value::OctetString(b"no index".to_vec()),
            ),
            vb(
                "1.3.6.1.2.1.2.2.1.2.1",
                Value::OctetString(b"first".to_vec()),
            ),
            vb(
                "1.3.6.1.2.1.2.2.1.2.1",
                Value::OctetString(b"second".to_vec()),
            ),
        ];
        let mut problems = Problems::default();
        let rows = table(&walked, &oid(&[1, 3, 6, 1, 2, 1, 2, 2, 1]), &mut problems);
        assert_eq!(
            rows[&vec![1]].col(2).text(&mut problems).as_deref(),
            Some("first")
        );
        let list = problems.into_vec();
        assert_eq!(list.len(), 2, "{list:?}");
        assert!(list[0].contains("1.3.6.1.2.1.2.2.1.2:"), "{list:?}");
    }

    #[test]
    fn wrong_types_are_problems_naming_the_oid() {
        let cell = vb("1.3.6.1.2.1.2.2.1.10.3", Value::OctetString(b"12".to_vec()));
        let mut problems = Problems::default();
        assert_eq!(Some(&cell).counter(&mut problems), None);
        assert_eq!(Some(&cell).int(&mut problems), None);
        assert_eq!(Some(&cell).timeticks(&mut problems), None);
        let neg = vb("1.3.6.1.2.1.2.2.1.5.3", Value::Integer(-1));
        assert_eq!(Some(&neg).u64(&mut problems), None);
        assert_eq!(Some(&neg).u32(&mut problems), None);
        let list = problems.into_vec();
        assert_eq!(list.len(), 5, "{list:?}");
        assert!(
            list.iter()
                .all(|p| p.starts_with("1.3.6.1.2.1.2.2.1.10.3: ")
                    || p.starts_with("1.3.6.1.2.1.2.2.1.5.3: ")),
            "{list:?}"
        );
    }

    #[test]
    fn counter_width_follows_the_value_type() {
        let mut problems = Problems::default();
        let c32 = vb("1.3.6.1.2.1.31.1.1.1.6.1", Value::Counter32(7));
        assert_eq!(
            Some(&c32).counter(&mut problems).map(|c| c.bits),
            Some(CounterWidth::Bits32)
        );
        let c64 = vb("1.3.6.1.2.1.2.2.1.10.1", Value::Counter64(7));
        assert_eq!(
            Some(&c64).counter(&mut problems).map(|c| c.bits),
            Some(CounterWidth::Bits64)
        );
    }

    #[test]
    fn macs_and_binary_text_are_formatted() {
        assert_eq!(
            format_mac(&[0, 0x1a, 0x2b, 0xff, 0, 1]),
            "00:1a:2b:ff:00:01"
        );
        assert_eq!(text_or_hex(b"ge-0/0/1"), "ge-0/0/1");
        assert_eq!(text_or_hex(&[0x80, 1]), "80:01");
        assert_eq!(text_or_hex(&[1, 2]), "01:02");
    }
}
