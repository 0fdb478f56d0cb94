#!/usr/bin/env python3
"""Converts `snmpbulkwalk -On -Ox -Oe` output (net-snmp 5.9) on stdin into Steward's
recorded-walk format (`OID = TYPE: VALUE`, see collector/src/snmp/types.rs) on stdout.

Why these flags: -On prints numeric OIDs (no MIB files needed, and none are installed by
default), -Oe prints enums as numbers, -Ox prints every octet string as hex so binary values
(MACs, addresses) survive. net-snmp wraps long hex over several lines; those continuation lines
are joined here. Printable text is written back as `STRING:` so the walk stays readable;
anything else (and text with leading/trailing blanks, which the parser trims) stays hex.
"""
import re
import sys

EXCEPTIONS = {
    "No Such Object available on this agent at this OID": "noSuchObject",
    "No Such Instance currently exists at this OID": "noSuchInstance",
    "No more variables left in this MIB View (It is past the end of the MIB tree)": "endOfMibView",
}


def printable(b: bytes) -> bool:
    try:
        text = b.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return (
        text != ""
        and text == text.strip()
        and all(c.isprintable() for c in text)
    )


def octets(oid: str, data: bytes) -> str:
    if printable(data):
        return f"{oid} = STRING: {data.decode('utf-8')}"
    return f"{oid} = Hex-STRING: {data.hex()}"


def convert(oid: str, value: str) -> str:
    oid = oid.lstrip(".")
    value = value.strip()
    if value in EXCEPTIONS:
        return f"{oid} = {EXCEPTIONS[value]}"
    if value == '""':
        return f"{oid} = Hex-STRING: "
    kind, _, text = value.partition(": ")
    if kind == "Hex-STRING":
        return octets(oid, bytes.fromhex(text.replace(" ", "")))
    if kind == "STRING":
        # Only when -Ox was not given; net-snmp quotes and backslash-escapes the text.
        text = text[1:-1] if text.startswith('"') and text.endswith('"') else text
        return octets(oid, text.replace('\\"', '"').replace("\\\\", "\\").encode())
    if kind == "Timeticks":
        ticks = re.match(r"\((\d+)\)", text)
        if ticks is None:
            raise SystemExit(f"netsnmp-to-walk: cannot read Timeticks {oid} = {value!r}")
        return f"{oid} = Timeticks: {ticks.group(1)}"
    if kind == "OID":
        return f"{oid} = OID: {text.lstrip('.')}"
    if kind in ("INTEGER", "Gauge32", "Counter32", "Counter64", "IpAddress", "Unsigned32"):
        return f"{oid} = {kind}: {text.split()[0]}"
    if kind == "Opaque":
        return f"{oid} = Opaque: {text.replace(' ', '').lower()}"
    if value == "NULL":
        return f"{oid} = NULL"
    raise SystemExit(f"netsnmp-to-walk: cannot convert {oid} = {value!r}")


def main() -> None:
    records: list[list[str]] = []
    for line in sys.stdin.read().splitlines():
        m = re.match(r"^(\.?[0-9][0-9.]*) = (.*)$", line)
        if m:
            records.append([m.group(1), m.group(2)])
        elif records and line.strip():
            # A wrapped Hex-STRING (16 bytes a line) or a multi-line STRING.
            sep = " " if records[-1][1].startswith("Hex-STRING") else "\n"
            records[-1][1] += sep + line.strip()
    for oid, value in records:
        print(convert(oid, value))


if __name__ == "__main__":
    main()
