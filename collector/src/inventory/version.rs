//! Package-manager version ordering, so that "hosts running NAME older than V" is answered
//! the way the host's own package manager would answer it, not by string order.
//!
//! Each [`Scheme`] re-implements its reference algorithm on bytes, with no integer parsing (digit
//! runs are compared by stripping leading zeros, then by length, then bytewise, so arbitrarily
//! long numbers never overflow) and no panics on any input. Surrounding whitespace is ignored.
//!
//! - [`Scheme::Deb`]: Debian Policy §5.6.12 and dpkg's `verrevcmp` (`lib/dpkg/version.c`):
//!   `[epoch:]upstream[-revision]`, the epoch ending at the first `:`, the revision starting after
//!   the last `-` (absent: `""`, so `1.0` = `1.0-0`). Non-digit runs compare character by
//!   character with `~` before the end of the run, the end before letters, letters before other
//!   bytes; digit runs compare numerically. Where dpkg refuses the input ("bad syntax") a choice
//!   is made: an epoch that is not a number (empty, `x`, `-1`; `+1` and `-0` are, as for dpkg's
//!   `strtol`) sorts after every numeric epoch, and such epochs compare among themselves with
//!   `verrevcmp`; an epoch past `INT_MAX` still compares numerically; an empty version,
//!   upstream or revision is compared as empty (so `~` < empty < `a`). Non-ASCII bytes sort as
//!   on amd64 dpkg (signed `char`): after letters, before ASCII punctuation.
//! - [`Scheme::Rpm`]: rpm ≥ 4.15 `rpmvercmp` (`rpmio/rpmvercmp.c`) on `[epoch:]version[-release]`
//!   (`rpmverParse`: the epoch is the leading digits when a `:` follows them; the release follows
//!   the last `-`; no epoch = 0). Separators (anything but ASCII alphanumerics, `~`, `^`) are
//!   skipped; `~` sorts before anything, even the end; `^` after the end but before anything
//!   else; a numeric segment beats an alphabetic one; the longer string wins.
//! - [`Scheme::Pacman`]: libalpm's `alpm_pkg_vercmp` (`lib/libalpm/version.c`): the same EVR split
//!   with the older rpmvercmp it carries (no `~`/`^` rules; more separators before a segment
//!   win; a trailing letter segment loses to the end, so `1.0a` < `1.0`).
//! - [`Scheme::Apk`]: apk-tools `apk_version_compare` (`src/version.c`, current apk-tools):
//!   `digit{.digit}...{letter}{_suffix{N}}...{~hash}{-rN}`; a `.` component with a leading zero
//!   compares as a string; `_alpha` < `_beta` < `_pre` < `_rc` < (none) < `_cvs` < `_svn` < `_git`
//!   < `_hg` < `_p`. Numbers past `u64` compare by value (apk would wrap). If either string is
//!   not a valid apk version, both compare as [`Scheme::Generic`].
//! - [`Scheme::Generic`] (snap, flatpak, Windows, macOS): runs of digits and of non-digits;
//!   digits numerically, others ASCII case-insensitively; a number beats text; a prefix is older
//!   (`1.2` < `1.2.1`); one leading `v`/`V` before a digit is ignored.
//!
//! A missing release sorts before any release (`1.0` < `1.0-~1` < `1.0-1`), as rpm's `rpmverCmp`
//! does. libalpm instead ignores the release when only one side has one (`1.0` = `1.0-1` =
//! `1.0-2`); that is not a total order and could make `sort_by` panic, so Pacman follows rpm here.
//! "Installed older than V" answers agree with pacman's whenever the installed version has a
//! pkgrel, as installed packages always do.
//!
//! Deb, Rpm and Generic are total orders on all strings (checked exhaustively on short strings).
//! Two are not, as in their references, so sort such input with care: Pacman when a version
//! starts or ends with a separator (libalpm: `0` < `.a` < `.` yet `0` > `.`), and Apk when valid
//! and invalid versions are mixed (`0a` < `0.0` by apk, `0.0` < `0_` < `0a` by the fallback).

use std::cmp::Ordering::{self, Equal, Greater, Less};

/// Which ordering rules a version string follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Deb,
    Rpm,
    Apk,
    Pacman,
    Generic,
}

impl Scheme {
    /// The scheme for an inventory source name: `dpkg`, `rpm`, `apk`, `pacman`; anything else
    /// (snap, flatpak, windows-registry, pkgutil, macos-app, ...) is [`Scheme::Generic`].
    #[must_use]
    pub fn for_source(source: &str) -> Scheme {
        match source.to_ascii_lowercase().as_str() {
            "dpkg" => Scheme::Deb,
            "rpm" => Scheme::Rpm,
            "apk" => Scheme::Apk,
            "pacman" => Scheme::Pacman,
            _ => Scheme::Generic,
        }
    }
}

/// Orders version `a` against `b` under `scheme` (`Less`: `a` is older).
#[must_use]
pub fn compare(scheme: Scheme, a: &str, b: &str) -> Ordering {
    let (a, b) = (a.trim().as_bytes(), b.trim().as_bytes());
    match scheme {
        Scheme::Deb => deb(a, b),
        Scheme::Rpm => evr(a, b, rpmvercmp),
        Scheme::Pacman => evr(a, b, alpm_rpmvercmp),
        Scheme::Apk => match (apk_tokens(a), apk_tokens(b)) {
            (Some(x), Some(y)) => apk(&x, &y),
            _ => generic(a, b),
        },
        Scheme::Generic => generic(a, b),
    }
}

/// Compares two runs of ASCII digits by value, however long.
fn cmp_digits(a: &[u8], b: &[u8]) -> Ordering {
    fn strip(s: &[u8]) -> &[u8] {
        tail(s, s.iter().take_while(|&&c| c == b'0').count())
    }
    let (a, b) = (strip(a), strip(b));
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// `s` without its first `n` bytes (empty if it is shorter).
fn tail(s: &[u8], n: usize) -> &[u8] {
    s.get(n..).unwrap_or_default()
}

/// Splits `s` at its first `c`, or its last with `last`, dropping the `c`.
fn split_at_byte(s: &[u8], c: u8, last: bool) -> Option<(&[u8], &[u8])> {
    let p = if last {
        s.iter().rposition(|&x| x == c)
    } else {
        s.iter().position(|&x| x == c)
    }?;
    Some((&s[..p], tail(s, p + 1)))
}

fn digit_run(s: &[u8]) -> usize {
    s.iter().take_while(|c| c.is_ascii_digit()).count()
}

// ---------------------------------------------------------------- Debian

fn deb(a: &[u8], b: &[u8]) -> Ordering {
    fn parse(s: &[u8]) -> (bool, &[u8], &[u8], &[u8]) {
        let (bad, epoch, rest) = match split_at_byte(s, b':', false) {
            Some((e, rest)) => {
                // strtol(3) as dpkg calls it also takes a sign: "+1" is 1, "-0" is 0.
                let zero = |d: &&[u8]| d.iter().all(|&c| c == b'0');
                let d = e
                    .strip_prefix(b"+")
                    .or_else(|| e.strip_prefix(b"-").filter(zero));
                let d = d.unwrap_or(e);
                let numeric = !d.is_empty() && d.iter().all(u8::is_ascii_digit);
                (!numeric, if numeric { d } else { e }, rest)
            }
            None => (false, &b""[..], s),
        };
        let (up, rev) = split_at_byte(rest, b'-', true).unwrap_or((rest, b""));
        (bad, epoch, up, rev)
    }
    let ((abad, aep, aup, arev), (bbad, bep, bup, brev)) = (parse(a), parse(b));
    let epochs = if abad { verrevcmp } else { cmp_digits };
    abad.cmp(&bbad)
        .then_with(|| epochs(aep, bep))
        .then_with(|| verrevcmp(aup, bup))
        .then_with(|| verrevcmp(arev, brev))
}

/// dpkg's `order()` for a byte of a non-digit run (`None`: a digit or the end, weight 0).
fn deb_order(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(b'~') => -1,
        Some(c) if c >= 0x80 => i32::from(c), // (signed char)c + 256 on amd64
        Some(c) => i32::from(c) + 256,
    }
}

fn verrevcmp(mut a: &[u8], mut b: &[u8]) -> Ordering {
    let non_digit = |s: &[u8]| s.first().copied().filter(|c| !c.is_ascii_digit());
    while !a.is_empty() || !b.is_empty() {
        while non_digit(a).is_some() || non_digit(b).is_some() {
            let (x, y) = (deb_order(non_digit(a)), deb_order(non_digit(b)));
            if x != y {
                return x.cmp(&y);
            }
            (a, b) = (tail(a, 1), tail(b, 1));
        }
        let ((da, ra), (db, rb)) = (a.split_at(digit_run(a)), b.split_at(digit_run(b)));
        let ord = cmp_digits(da, db);
        if ord != Equal {
            return ord;
        }
        (a, b) = (ra, rb);
    }
    Equal
}

// ---------------------------------------------------------------- rpm and pacman

/// `[epoch:]version[-release]`, as rpm's `rpmverParse` and libalpm's `parseEVR` split it;
/// epochs compare numerically (absent or empty = 0), a missing release sorts first.
fn evr(a: &[u8], b: &[u8], cmp: fn(&[u8], &[u8]) -> Ordering) -> Ordering {
    fn parse(s: &[u8]) -> (&[u8], &[u8], Option<&[u8]>) {
        let d = digit_run(s);
        let (epoch, rest) = if s.get(d) == Some(&b':') {
            (&s[..d], tail(s, d + 1))
        } else {
            (&b""[..], s)
        };
        match split_at_byte(rest, b'-', true) {
            Some((v, r)) => (epoch, v, Some(r)),
            None => (epoch, rest, None),
        }
    }
    let ((ae, av, ar), (be, bv, br)) = (parse(a), parse(b));
    cmp_digits(ae, be)
        .then_with(|| cmp(av, bv))
        .then_with(|| match (ar, br) {
            (Some(x), Some(y)) => cmp(x, y),
            (x, y) => x.is_some().cmp(&y.is_some()),
        })
}

/// Compares the leading alphanumeric segments of `a` (non-empty) and `b` as rpmvercmp does:
/// digits by value, letters by bytes, a number newer than letters. `Ok`: equal, and the rests.
fn segments<'a, 'b>(a: &'a [u8], b: &'b [u8]) -> Result<(&'a [u8], &'b [u8]), Ordering> {
    let num = a.first().is_some_and(u8::is_ascii_digit);
    let run = |s: &[u8]| {
        s.iter()
            .take_while(|c| c.is_ascii_alphanumeric() && c.is_ascii_digit() == num)
            .count()
    };
    let ((sa, ra), (sb, rb)) = (a.split_at(run(a)), b.split_at(run(b)));
    let ord = match (sb.is_empty(), num) {
        (true, true) => Greater,
        (true, false) => Less,
        (false, true) => cmp_digits(sa, sb),
        (false, false) => sa.cmp(sb),
    };
    if ord == Equal { Ok((ra, rb)) } else { Err(ord) }
}

/// rpm ≥ 4.15 `rpmvercmp`.
fn rpmvercmp(mut a: &[u8], mut b: &[u8]) -> Ordering {
    fn skip(s: &[u8]) -> &[u8] {
        let sep = |c: &&u8| !(c.is_ascii_alphanumeric() || **c == b'~' || **c == b'^');
        tail(s, s.iter().take_while(sep).count())
    }
    loop {
        (a, b) = (skip(a), skip(b));
        match (a.first().copied(), b.first().copied()) {
            (Some(b'~'), Some(b'~')) | (Some(b'^'), Some(b'^')) => {
                (a, b) = (tail(a, 1), tail(b, 1));
            }
            (Some(b'~'), _) => return Less,
            (_, Some(b'~')) => return Greater,
            (None, Some(b'^')) | (Some(b'^'), Some(_)) => return Less,
            (Some(b'^'), None) | (Some(_), Some(b'^')) => return Greater,
            (Some(_), Some(_)) => match segments(a, b) {
                Ok((ra, rb)) => (a, b) = (ra, rb),
                Err(ord) => return ord,
            },
            (x, y) => return x.is_some().cmp(&y.is_some()),
        }
    }
}

/// libalpm's copy of rpmvercmp (pacman 5/6).
fn alpm_rpmvercmp(mut a: &[u8], mut b: &[u8]) -> Ordering {
    let skip = |s: &[u8]| s.iter().take_while(|c| !c.is_ascii_alphanumeric()).count();
    while !a.is_empty() && !b.is_empty() {
        let (sa, sb) = (skip(a), skip(b));
        (a, b) = (tail(a, sa), tail(b, sb));
        if a.is_empty() || b.is_empty() {
            break;
        }
        if sa != sb {
            return sa.cmp(&sb); // more separators win
        }
        match segments(a, b) {
            Ok((ra, rb)) => (a, b) = (ra, rb),
            Err(ord) => return ord,
        }
    }
    let alpha = |s: &[u8]| s.first().is_some_and(u8::is_ascii_alphabetic);
    if a.is_empty() && b.is_empty() {
        Equal
    } else if (a.is_empty() && !alpha(b)) || alpha(a) {
        Less
    } else {
        Greater
    }
}

// ---------------------------------------------------------------- apk

/// apk token kinds, in apk-tools' order (the order matters when one string runs out). A
/// suffix token's value is its name, ranked by its place in [`APK_SUFFIXES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Tok {
    Initial,
    Digit,
    Letter,
    Suffix,
    SuffixNo,
    Hash,
    Revision,
    End,
}

const APK_SUFFIXES: [&[u8]; 10] = [
    b"alpha", b"beta", b"pre", b"rc", b"", b"cvs", b"svn", b"git", b"hg", b"p",
];

fn suffix_rank(name: &[u8]) -> Option<usize> {
    APK_SUFFIXES.iter().position(|s| *s == name)
}

/// A suffix before "no suffix" (`_alpha` ... `_rc`), which loses to the end of the string.
fn pre_release(t: (Tok, &[u8])) -> bool {
    t.0 == Tok::Suffix && suffix_rank(t.1) < suffix_rank(b"")
}

/// Tokenises a whole apk version, or `None` if apk would call it invalid.
fn apk_tokens(s: &[u8]) -> Option<Vec<(Tok, &[u8])>> {
    fn digits(s: &[u8]) -> Option<(&[u8], &[u8])> {
        Some(s.split_at(digit_run(s))).filter(|(d, _)| !d.is_empty())
    }
    let mut out = Vec::new();
    let mut rest = s;
    let mut prev = Tok::Initial;
    let (d, r) = digits(rest)?;
    out.push((prev, d));
    rest = r;
    while let Some(&c) = rest.first() {
        let (tok, value, r) = match c {
            b'a'..=b'z' if prev <= Tok::Digit => (Tok::Letter, &rest[..1], &rest[1..]),
            b'.' | b'0'..=b'9' => {
                let tok = match prev {
                    Tok::Initial | Tok::Digit if c == b'.' => Tok::Digit,
                    Tok::Suffix if c != b'.' => Tok::SuffixNo,
                    _ => return None,
                };
                let (d, r) = digits(rest.get(usize::from(c == b'.')..)?)?;
                (tok, d, r)
            }
            b'_' if prev <= Tok::SuffixNo => {
                let body = &rest[1..];
                let (name, r) =
                    body.split_at(body.iter().take_while(|c| c.is_ascii_lowercase()).count());
                suffix_rank(name).filter(|_| !name.is_empty())?;
                (Tok::Suffix, name, r)
            }
            b'~' if prev < Tok::Hash => {
                let body = &rest[1..];
                let n = body
                    .iter()
                    .take_while(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
                    .count();
                if n == 0 {
                    return None;
                }
                let (h, r) = body.split_at(n);
                (Tok::Hash, h, r)
            }
            b'-' if prev < Tok::Revision && rest.get(1) == Some(&b'r') => {
                let (d, r) = digits(&rest[2..])?;
                (Tok::Revision, d, r)
            }
            _ => return None,
        };
        out.push((tok, value));
        (prev, rest) = (tok, r);
    }
    Some(out)
}

fn apk(a: &[(Tok, &[u8])], b: &[(Tok, &[u8])]) -> Ordering {
    let end = (Tok::End, &b""[..]);
    let mut k = 0;
    loop {
        let ((ta, va), (tb, vb)) = (
            a.get(k).copied().unwrap_or(end),
            b.get(k).copied().unwrap_or(end),
        );
        if ta != tb || ta == Tok::End {
            return match (ta == tb, pre_release((ta, va)), pre_release((tb, vb))) {
                (true, ..) => Equal,
                (_, true, _) => Less,
                (_, _, true) => Greater,
                _ => tb.cmp(&ta),
            };
        }
        let ord = match ta {
            Tok::Digit if va.first() == Some(&b'0') || vb.first() == Some(&b'0') => va.cmp(vb),
            Tok::Initial | Tok::Digit | Tok::SuffixNo | Tok::Revision => cmp_digits(va, vb),
            Tok::Suffix => suffix_rank(va).cmp(&suffix_rank(vb)),
            Tok::Letter | Tok::Hash | Tok::End => va.cmp(vb),
        };
        if ord != Equal {
            return ord;
        }
        k += 1;
    }
}

// ---------------------------------------------------------------- generic

fn generic(a: &[u8], b: &[u8]) -> Ordering {
    fn strip_v(s: &[u8]) -> &[u8] {
        match s {
            [b'v' | b'V', d, ..] if d.is_ascii_digit() => &s[1..],
            _ => s,
        }
    }
    /// The next run of digits or of non-digits, and the rest.
    fn next(s: &[u8]) -> Option<(bool, &[u8], &[u8])> {
        let num = s.first()?.is_ascii_digit();
        let n = s.iter().take_while(|c| c.is_ascii_digit() == num).count();
        let (run, rest) = s.split_at(n);
        Some((num, run, rest))
    }
    let (mut a, mut b) = (strip_v(a), strip_v(b));
    loop {
        match (next(a), next(b)) {
            (None, None) => return Equal,
            (None, Some(_)) => return Less,
            (Some(_), None) => return Greater,
            (Some((na, ra, a2)), Some((nb, rb, b2))) => {
                let ord = match (na, nb) {
                    (true, true) => cmp_digits(ra, rb),
                    (false, false) => ra
                        .iter()
                        .map(u8::to_ascii_lowercase)
                        .cmp(rb.iter().map(u8::to_ascii_lowercase)),
                    (x, y) => x.cmp(&y),
                };
                if ord != Equal {
                    return ord;
                }
                (a, b) = (a2, b2);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(a, op, b)` rows; the comment on each table says what it was checked against.
    type Table = &'static [(&'static str, char, &'static str)];

    // Every row matches `dpkg --compare-versions` (dpkg 1.21.22, Debian 12) except the last
    // four, which dpkg rejects as bad syntax (choices in the module doc).
    #[rustfmt::skip]
    const DEB: Table = &[
        ("1.0~rc1", '<', "1.0"), ("1.0", '<', "1.0+b1"), ("1:0.9", '>', "2.0"),
        ("1.0-1", '<', "1.0-1.1"), ("2.30-0ubuntu1", '<', "2.30-1"),
        ("7.88.1-10+deb12u5", '<', "7.88.1-10+deb12u8"), ("1.0~~", '<', "1.0~"),
        ("1.0~", '<', "1.0"), ("1.0", '<', "1.0a"), ("1.0a", '<', "1.0."), ("1.0.", '>', "1.0+"),
        ("1.0", '=', "1.0-0"), ("0:1.0", '=', "1.0"), ("2:0.1", '>', "1:99"),
        ("1.0-1ubuntu1", '>', "1.0-1"), ("1.0-1~bpo12+1", '<', "1.0-1"),
        ("2.36-9+deb12u4", '<', "2.36-9+deb12u10"), ("1.18.10", '>', "1.18.9.1"),
        ("1.0.0~alpha1", '<', "1.0.0~beta1"), ("1.2-3-4", '>', "1.2-3"), ("1.001", '=', "1.1"),
        ("99999999999999999999999999999999999", '<', "100000000000000000000000000000000000"),
        ("1.99999999999999999999999999999999", '<', "1.100000000000000000000000000000000"),
        ("6.1.0-18-amd64", '>', "6.1.0-9-amd64"), ("1.0+dfsg-1", '>', "1.0-1"),
        ("1.0A", '<', "1.0a"), ("+1:1.0", '=', "1:1.0"), ("1.\u{e9}", '<', "1.+"),
        ("~~", '<', "~"), ("~", '<', "a"), ("a", '>', "1.10"), ("a", '<', "1:0.1"),
        ("9999999999999999999999:1", '<', "10000000000000000000000:0"),
        ("x:1.0", '>', "99:1.0"), (":1.0", '>', "1.0"), ("x:1.0", '<', "y:0.1"),
    ];

    // Every row matches `rpm.vercmp` in rpm 4.18.0's Lua (Debian 12's rpm package).
    #[rustfmt::skip]
    const RPM: Table = &[
        ("1.0~rc1", '<', "1.0"), ("1.0", '<', "1.0^git1"), ("1.0^git1", '<', "1.0.1"),
        ("1.0~rc1", '<', "1.0^git1"), ("2:1.0", '>', "1:9.9"), ("1.0-1.el9", '<', "1.0-2.el9"),
        ("1.0a", '<', "1.0.1"), ("1.0a", '>', "1.0"), ("1.0", '<', "1.0.a"),
        ("5.14.0-362.8.1.el9_3", '>', "5.14.0-284.30.1.el9_2"), ("1.0", '<', "1.0-1"),
        ("1.0-~1", '>', "1.0"), ("1.0~~", '<', "1.0~"), ("1.0^", '>', "1.0"),
        ("1.0^~", '<', "1.0^"), ("1.0^git1", '>', "1.0^git1~1"), ("1.0_1", '=', "1.0.1"),
        ("1.0.0", '>', "1.0"), ("01.1", '=', "1.1"), ("a", '<', "1"), ("0:1.0", '=', "1.0"),
        (":1.0", '=', "1.0"), ("1.02", '>', "1.1"), ("1e10", '<', "1f1"),
        ("3.6.8-51.el9_4.1", '>', "3.6.8-51.el9"), ("1:2.6.1-2.fc39", '>', "2.7.0-1.fc39"),
        ("8.0.0-1.fc39", '>', "8.0.0~rc1-1.fc39"), ("2.4.57-5.el9", '<', "2.4.57-11.el9"),
        ("123456789012345678901234567890", '<', "123456789012345678901234567891"),
    ];

    // Every row matches pacman 6.0.2's `vercmp` except `1.0-1` vs `1.0` (libalpm: equal).
    #[rustfmt::skip]
    const PACMAN: Table = &[
        ("1:1.0-1", '>', "2.0-1"), ("1.0-2", '>', "1.0-1"), ("1.0-1", '<', "1.0-1.1"),
        ("1.0a", '<', "1.0"), ("1.0", '<', "1.0.1"), ("1.0", '<', "1.0.a"), ("1.0rc1", '<', "1.0"),
        ("1.0_rc1", '>', "1.0"), ("1.0.0", '>', "1.0"), ("1..0", '>', "1.0"), ("1.0-1", '>', "1.0"),
        ("2:1.0-1", '>', "1:3.0-9"), ("6.6.7.arch1-1", '<', "6.6.10.arch1-1"),
        ("1.2.3+r45+gabc-1", '<', "1.2.3+r46+gdef-1"), ("20240101-1", '>', "20231231-3"),
        ("a", '<', "1"), ("1.0-10", '>', "1.0-9"), ("0:1.0", '=', "1.0"),
        ("1.0alpha", '<', "1.0beta"), ("1.0.1", '>', "1.0a"), ("1.0.1", '<', "1.0..1"),
    ];

    // No apk binary here: rows from apk-tools' test/version.data, the rest traced by hand
    // through its src/version.c.
    #[rustfmt::skip]
    const APK: Table = &[
        ("1.2.3_rc1", '<', "1.2.3"), ("1.2.3", '<', "1.2.3_p1"), ("1.2.3", '<', "1.2.3-r1"),
        ("1.2.3_p1", '>', "1.2.3-r5"), ("1.2a", '>', "1.2"), ("1.2.3_alpha", '<', "1.2.3_beta"),
        ("1.2.3_beta", '<', "1.2.3_pre"), ("1.2.3_pre", '<', "1.2.3_rc"),
        ("1.2.3_cvs", '<', "1.2.3_svn"), ("1.2.3_svn", '<', "1.2.3_git"),
        ("1.2.3_git", '<', "1.2.3_hg"), ("1.2.3_hg", '<', "1.2.3_p"), ("1.2.3~abc", '>', "1.2.3"),
        ("1.2.3~abc-r1", '<', "1.2.3~abd"), ("1.01", '>', "1.001"), ("01", '=', "001"),
        ("0.1.0_alpha_pre2", '<', "0.1.0_alpha"), ("3.1.4-r0", '<', "3.1.4-r10"),
        ("2.4.58-r0", '>', "2.4.9-r0"), ("1.06-r6", '<', "006"), ("1.02", '<', "1.03-r1"),
        ("1.2.07.8", '<', "1.2.12.04"), ("2.5.1-r8", '<', "2.5.1a-r1"),
        ("20040401", '>', "2.0.0_rc3-r1"), ("3.0.0-r2", '<', "021109-r3"),
        ("0.15.1b-r2", '>', "0.15.1b"), ("2.12r-r4", '<', "2.12r-r5"), ("1.7", '<', "1.7b"),
        ("1.0.0_pre20191002222144-r0", '<', "1.0.0_pre20210530193627-r0"),
        // Invalid for apk, so generic (apk-tools' own answer is the same for the first two).
        ("1.0", '<', "1.0bc"), ("23_foo", '>', "4_beta"), ("v1.0", '<', "1.1"),
        ("1.2.3-1", '<', "1.2.3-2"),
    ];

    #[rustfmt::skip]
    const GENERIC: Table = &[
        ("1.2", '<', "1.2.1"), ("1.9", '<', "1.10"), ("v1.2", '=', "1.2"), ("V2", '>', "1.9"),
        ("1.0A", '=', "1.0a"), ("10.0.19041.1", '<', "10.0.22621.1"), ("01.2", '=', "1.2"),
        ("1.2beta", '>', "1.2"), ("1.2beta", '<', "1.2gamma"), ("2024.01", '<', "2024.1.1"),
        ("1", '>', "beta"), ("", '<', "0"), ("124.0.6367.91", '>', "124.0.6367.60"),
        ("99999999999999999999999", '<', "100000000000000000000000"), ("vim", '<', "v1"),
        (" 1.2 ", '=', "1.2"),
    ];

    const ALL: [Scheme; 5] = [
        Scheme::Deb,
        Scheme::Rpm,
        Scheme::Pacman,
        Scheme::Apk,
        Scheme::Generic,
    ];

    fn tables() -> [(Scheme, Table); 5] {
        [
            (Scheme::Deb, DEB),
            (Scheme::Rpm, RPM),
            (Scheme::Pacman, PACMAN),
            (Scheme::Apk, APK),
            (Scheme::Generic, GENERIC),
        ]
    }

    #[test]
    fn tables_hold_both_ways() {
        for (scheme, table) in tables() {
            for &(a, op, b) in table {
                let want = match op {
                    '<' => Less,
                    '=' => Equal,
                    _ => Greater,
                };
                assert_eq!(compare(scheme, a, b), want, "{scheme:?}: {a} {op} {b}");
                assert_eq!(
                    compare(scheme, b, a),
                    want.reverse(),
                    "{scheme:?}: {b} vs {a}"
                );
            }
        }
    }

    #[test]
    fn reflexive_antisymmetric_transitive_over_table_strings() {
        for (scheme, table) in tables() {
            let mut all: Vec<&str> = table.iter().flat_map(|&(a, _, b)| [a, b]).collect();
            if scheme == Scheme::Apk {
                // apk mixed with its generic fallback is not transitive (module doc).
                all.retain(|s| apk_tokens(s.as_bytes()).is_some());
            }
            for &a in &all {
                assert_eq!(compare(scheme, a, a), Equal, "{scheme:?}: {a}");
                for &b in &all {
                    let ab = compare(scheme, a, b);
                    assert_eq!(compare(scheme, b, a), ab.reverse(), "{scheme:?}: {a} {b}");
                    for &c in &all {
                        let bc = compare(scheme, b, c);
                        if ab != Greater && bc != Greater {
                            let want = if ab == Equal && bc == Equal {
                                Equal
                            } else {
                                Less
                            };
                            assert_eq!(compare(scheme, a, c), want, "{scheme:?}: {a} {b} {c}");
                        }
                    }
                }
            }
        }
    }

    /// Each list is strictly ascending under every pair (Deb, Rpm and Pacman lists checked
    /// pairwise against dpkg, rpm and vercmp, less `""` and pacman's release wildcard).
    #[test]
    #[rustfmt::skip]
    fn sorted_lists_are_strictly_ascending() {
        let lists: [(Scheme, &[&str]); 5] = [
            (Scheme::Deb, &["~~", "~", "", "0:1.0~rc1-1", "1.0-0", "1.0-1~bpo1", "1.0-1",
                "1.0-1.1", "1.0+b1", "1.0.1", "1.10", "a", "1:0.1"]),
            (Scheme::Rpm, &["1.0~rc1", "1.0", "1.0-1", "1.0^git1", "1.0a", "1.0.1", "1.10",
                "1:0.1"]),
            (Scheme::Pacman, &["1.0a", "1.0", "1.0-1", "1.0-2", "1.0.1", "1.0..1", "1:0.1-1"]),
            (Scheme::Apk, &["1.0_alpha", "1.0_rc1", "1.0", "1.0-r1", "1.0_p1", "1.0a", "1.0.1",
                "1.1"]),
            (Scheme::Generic, &["", "beta", "1", "1.2", "1.2.1", "1.2beta", "v1.10", "2"]),
        ];
        for (scheme, list) in lists {
            for (i, a) in list.iter().enumerate() {
                for b in &list[i + 1..] {
                    assert_eq!(compare(scheme, a, b), Less, "{scheme:?}: {a} < {b}");
                }
            }
        }
    }

    #[test]
    fn for_source_maps_inventory_sources() {
        assert_eq!(Scheme::for_source("dpkg"), Scheme::Deb);
        assert_eq!(Scheme::for_source("rpm"), Scheme::Rpm);
        assert_eq!(Scheme::for_source("apk"), Scheme::Apk);
        assert_eq!(Scheme::for_source("pacman"), Scheme::Pacman);
        for other in [
            "snap",
            "flatpak",
            "windows-registry",
            "pkgutil",
            "macos-app",
            "",
        ] {
            assert_eq!(Scheme::for_source(other), Scheme::Generic);
        }
    }

    /// Pseudo-random strings from an in-file LCG: no panic, reflexive, antisymmetric, and the
    /// three total orders sort without contradiction.
    #[test]
    fn arbitrary_input_never_panics() {
        const ALPHABET: &[u8] = b"0123456789abzAZ.~^-_:+ \xc3\xa9";
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            usize::try_from(state >> 33).unwrap()
        };
        let strings: Vec<String> = (0..400)
            .map(|_| {
                let len = next() % 14;
                let bytes: Vec<u8> = (0..len)
                    .map(|_| ALPHABET[next() % ALPHABET.len()])
                    .collect();
                String::from_utf8_lossy(&bytes).into_owned()
            })
            .collect();
        for scheme in ALL {
            for (i, a) in strings.iter().enumerate() {
                assert_eq!(compare(scheme, a, a), Equal, "{scheme:?}: {a:?}");
                for b in strings.iter().skip(i).take(40) {
                    let ab = compare(scheme, a, b);
                    assert_eq!(
                        compare(scheme, b, a),
                        ab.reverse(),
                        "{scheme:?}: {a:?} {b:?}"
                    );
                }
            }
            if matches!(scheme, Scheme::Deb | Scheme::Rpm | Scheme::Generic) {
                let mut sorted = strings.clone();
                sorted.sort_by(|a, b| compare(scheme, a, b));
                for (i, a) in sorted.iter().enumerate() {
                    for b in &sorted[i + 1..] {
                        assert_ne!(compare(scheme, a, b), Greater, "{scheme:?}: {a:?} {b:?}");
                    }
                }
            }
        }
    }
}
