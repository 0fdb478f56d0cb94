//! Name globs for selectors: `*` (any run of characters, also none), `?` (exactly one
//! character) and `|` between alternatives (`telnetd|rsh-server|*bittorrent*`). There is no
//! escape: a glob cannot match a literal `*`, `?` or `|`, which no CI name, mount point,
//! interface or package name in practice needs.
//!
//! Compiled once when rules load, matched without allocating: the engine matches instance
//! globs on every sample, and the software deny list against every installed package.

use std::fmt;

/// A compiled glob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    text: String,
    alternatives: Vec<Alternative>,
}

/// One `|`-separated alternative, with its fast paths decided at compile time.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Alternative {
    /// No wildcard: plain equality.
    Exact(String),
    /// `literal*`: a prefix test.
    Prefix(String),
    /// Anything else, matched by the backtracking loop.
    Pattern(Vec<u8>),
}

/// Why a glob was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GlobError {
    #[error("empty glob")]
    Empty,
    #[error("glob {0:?} has an empty alternative (two `|` in a row, or one at an end)")]
    EmptyAlternative(String),
}

impl Glob {
    pub fn parse(text: &str) -> Result<Glob, GlobError> {
        if text.is_empty() {
            return Err(GlobError::Empty);
        }
        let alternatives = text
            .split('|')
            .map(|alternative| {
                if alternative.is_empty() {
                    return Err(GlobError::EmptyAlternative(text.to_string()));
                }
                let wild = |c: char| c == '*' || c == '?';
                Ok(match alternative.find(wild) {
                    None => Alternative::Exact(alternative.to_string()),
                    Some(at) if at == alternative.len() - 1 && alternative.ends_with('*') => {
                        Alternative::Prefix(alternative[..at].to_string())
                    }
                    Some(_) => Alternative::Pattern(alternative.as_bytes().to_vec()),
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Glob {
            text: text.to_string(),
            alternatives,
        })
    }

    /// The glob as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn matches(&self, name: &str) -> bool {
        self.alternatives
            .iter()
            .any(|alternative| match alternative {
                Alternative::Exact(exact) => exact == name,
                Alternative::Prefix(prefix) => name.starts_with(prefix.as_str()),
                Alternative::Pattern(pattern) => pattern_matches(pattern, name.as_bytes()),
            })
    }
}

impl fmt::Display for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// The length in bytes of the UTF-8 character that starts with `lead` (1 for a stray
/// continuation byte, which cannot occur in a `&str` at a character boundary).
fn char_len(lead: u8) -> usize {
    match lead {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

/// The classic single-star-backtrack matcher over bytes. Literal bytes compare as bytes
/// (UTF-8 makes that exact); `?` and a star's retry step over whole characters, so `?`
/// matches one character, not one byte.
fn pattern_matches(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    // The last star seen and the name position it currently absorbs up to.
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, n));
                p += 1;
            }
            Some(b'?') => {
                p += 1;
                n += char_len(name[n]);
            }
            Some(&literal) if literal == name[n] => {
                p += 1;
                n += 1;
            }
            _ => match star {
                Some((star_p, star_n)) => {
                    let next = star_n + char_len(name[star_n]);
                    star = Some((star_p, next));
                    p = star_p + 1;
                    n = next;
                }
                None => return false,
            },
        }
    }
    pattern[p.min(pattern.len())..].iter().all(|&b| b == b'*') && n == name.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(glob: &str, name: &str) -> bool {
        Glob::parse(glob).unwrap().matches(name)
    }

    #[test]
    fn literal_matches_only_itself() {
        assert!(m("web-1", "web-1"));
        assert!(!m("web-1", "web-10"));
        assert!(!m("web-1", "web-"));
    }

    #[test]
    fn star_matches_any_run_including_none() {
        assert!(m("/var*", "/var"));
        assert!(m("/var*", "/var/log"));
        assert!(!m("/var*", "/usr/var"));
        assert!(m("*bittorrent*", "bittorrent"));
        assert!(m("*bittorrent*", "qbittorrent-nox"));
        assert!(m("Gi1/0/*", "Gi1/0/24"));
        assert!(m("*", ""));
        assert!(m("a*b*c", "aXXbYYc"));
        assert!(!m("a*b*c", "aXXbYY"));
        assert!(m("*.log", "x.log.log"));
    }

    #[test]
    fn question_mark_matches_exactly_one_character() {
        assert!(m("web-?", "web-1"));
        assert!(!m("web-?", "web-12"));
        assert!(!m("web-?", "web-"));
        assert!(
            m("caf?", "café"),
            "one character, even when it is two bytes"
        );
        assert!(m("*?", "é"));
    }

    #[test]
    fn alternatives_match_if_any_does() {
        let deny = Glob::parse("telnetd|rsh-server|*bittorrent*").unwrap();
        assert!(deny.matches("telnetd"));
        assert!(deny.matches("rsh-server"));
        assert!(deny.matches("transmission-bittorrent-client"));
        assert!(!deny.matches("openssh-server"));
        assert!(!deny.matches("telnet"));
    }

    #[test]
    fn multibyte_names_do_not_confuse_the_star_retry() {
        assert!(m("*ü*", "grün"));
        assert!(m("g*n", "grün"));
        assert!(!m("g*x", "grün"));
    }

    #[test]
    fn empty_glob_and_empty_alternatives_are_refused() {
        assert_eq!(Glob::parse(""), Err(GlobError::Empty));
        assert!(matches!(
            Glob::parse("a||b"),
            Err(GlobError::EmptyAlternative(_))
        ));
        assert!(matches!(
            Glob::parse("a|"),
            Err(GlobError::EmptyAlternative(_))
        ));
    }

    #[test]
    fn display_is_the_text_as_written() {
        assert_eq!(Glob::parse("a*|b?").unwrap().to_string(), "a*|b?");
    }
}
