//! The top-level dictionary of a property list, XML or binary (`bplist00`): all the macOS
//! sources need (`Info.plist` bundle keys, pkgutil receipt keys).
//!
//! Why not the `plist` crate: it brings quick-xml, indexmap, time (with parsing and formatting)
//! and base64, +75.6 KB on the static agent (3,647,576 → 3,723,168 bytes) for reading a handful
//! of strings; this reader is a few hundred lines. Only scalar values of the top-level
//! dictionary are decoded; nested dictionaries and arrays are skipped (in binary plists they are
//! not even visited, so shared or cyclic object references cannot make it loop). Every offset is
//! bounds-checked: a corrupt file is an error, never a panic.

use std::fmt;

/// One top-level value. Dictionaries, arrays and data blobs are [`Scalar::Other`].
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    String(String),
    Integer(i64),
    Real(f64),
    Bool(bool),
    /// Milliseconds since the Unix epoch.
    Date(i64),
    Other,
}

impl Scalar {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Scalar::String(s) => Some(s),
            _ => None,
        }
    }
}

/// A top-level dictionary, keys in file order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Dict(pub Vec<(String, Scalar)>);

impl Dict {
    pub fn get(&self, key: &str) -> Option<&Scalar> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// A non-empty string value.
    pub fn string(&self, key: &str) -> Option<&str> {
        self.get(key)?
            .as_str()
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlistError(pub String);

impl fmt::Display for PlistError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid property list: {}", self.0)
    }
}

impl std::error::Error for PlistError {}

fn err<T>(message: impl Into<String>) -> Result<T, PlistError> {
    Err(PlistError(message.into()))
}

/// Seconds from the Unix epoch to the plist epoch, 2001-01-01T00:00:00Z.
const PLIST_EPOCH: f64 = 978_307_200.0;

/// The top-level dictionary of an XML or binary property list.
pub fn top_level(bytes: &[u8]) -> Result<Dict, PlistError> {
    if bytes.starts_with(b"bplist00") {
        binary::top_level(bytes)
    } else {
        xml::top_level(bytes)
    }
}

mod xml {
    use super::{Dict, PlistError, Scalar, err};

    enum Token<'a> {
        Start { name: &'a str, empty: bool },
        End(&'a str),
        Text(&'a str),
    }

    /// XML tokens, skipping the declaration, doctype and comments.
    struct Tokens<'a> {
        rest: &'a str,
    }

    impl<'a> Tokens<'a> {
        fn next(&mut self) -> Result<Option<Token<'a>>, PlistError> {
            loop {
                if self.rest.is_empty() {
                    return Ok(None);
                }
                let Some(lt) = self.rest.find('<') else {
                    let text = std::mem::take(&mut self.rest);
                    return Ok(Some(Token::Text(text)));
                };
                if lt > 0 {
                    let text = &self.rest[..lt];
                    self.rest = &self.rest[lt..];
                    return Ok(Some(Token::Text(text)));
                }
                let skip_to = |rest: &str, end: &str| rest.find(end).map(|at| at + end.len());
                let skipped = if self.rest.starts_with("<?") {
                    skip_to(self.rest, "?>")
                } else if self.rest.starts_with("<!--") {
                    skip_to(self.rest, "-->")
                } else if self.rest.starts_with("<![CDATA[") {
                    let end = self
                        .rest
                        .find("]]>")
                        .ok_or_else(|| PlistError("unterminated CDATA section".into()))?;
                    let text = &self.rest[9..end];
                    self.rest = &self.rest[end + 3..];
                    return Ok(Some(Token::Text(text)));
                } else if self.rest.starts_with("<!") {
                    skip_to(self.rest, ">")
                } else {
                    None
                };
                if let Some(at) = skipped {
                    self.rest = &self.rest[at..];
                    continue;
                }
                if self.rest.starts_with("<!") || self.rest.starts_with("<?") {
                    return err("unterminated markup");
                }
                let Some(gt) = self.rest.find('>') else {
                    return err("unterminated tag");
                };
                let tag = &self.rest[1..gt];
                self.rest = &self.rest[gt + 1..];
                if let Some(name) = tag.strip_prefix('/') {
                    return Ok(Some(Token::End(name.trim())));
                }
                let empty = tag.ends_with('/');
                let tag = tag.trim_end_matches('/');
                let name = tag.split_whitespace().next().unwrap_or("");
                return Ok(Some(Token::Start { name, empty }));
            }
        }

        fn expect_next(&mut self) -> Result<Token<'a>, PlistError> {
            self.next()?
                .ok_or_else(|| PlistError("the document ends early".into()))
        }

        /// The text of an element whose start tag was just read, up to `</name>`.
        fn text_until_end(&mut self, name: &str) -> Result<String, PlistError> {
            let mut text = String::new();
            loop {
                match self.expect_next()? {
                    Token::Text(t) => text.push_str(t),
                    Token::End(end) if end == name => return Ok(text),
                    _ => return err(format!("<{name}> holds markup")),
                }
            }
        }

        /// Skips the rest of an element whose start tag was just read.
        fn skip_element(&mut self, name: &str) -> Result<(), PlistError> {
            let mut depth = 1usize;
            while depth > 0 {
                match self.expect_next()? {
                    Token::Start { empty: false, .. } => depth += 1,
                    Token::End(_) => depth -= 1,
                    _ => {}
                }
            }
            let _ = name;
            Ok(())
        }
    }

    pub(super) fn top_level(bytes: &[u8]) -> Result<Dict, PlistError> {
        let text = String::from_utf8_lossy(bytes);
        let mut tokens = Tokens { rest: &text };
        // Up to the first element inside <plist>.
        loop {
            match tokens.expect_next()? {
                Token::Start { name: "plist", .. } | Token::Text(_) => {}
                Token::Start {
                    name: "dict",
                    empty,
                } => {
                    if empty {
                        return Ok(Dict::default());
                    }
                    break;
                }
                Token::Start { name, .. } => {
                    return err(format!("the top-level object is <{name}>, not <dict>"));
                }
                Token::End(name) => return err(format!("unexpected </{name}>")),
            }
        }
        let mut dict = Dict::default();
        loop {
            let key = match tokens.expect_next()? {
                Token::Text(t) if t.trim().is_empty() => continue,
                Token::End("dict") => return Ok(dict),
                Token::Start { name: "key", empty } => {
                    if empty {
                        String::new()
                    } else {
                        super::super::decode_xml_entities(&tokens.text_until_end("key")?)
                    }
                }
                _ => return err("a <dict> entry does not start with <key>"),
            };
            let value = loop {
                match tokens.expect_next()? {
                    Token::Text(t) if t.trim().is_empty() => continue,
                    Token::Start { name, empty } => break value(&mut tokens, name, empty)?,
                    _ => return err(format!("key '{key}' has no value")),
                }
            };
            dict.0.push((key, value));
        }
    }

    fn value(tokens: &mut Tokens<'_>, name: &str, empty: bool) -> Result<Scalar, PlistError> {
        let text = |tokens: &mut Tokens<'_>| -> Result<String, PlistError> {
            if empty {
                Ok(String::new())
            } else {
                Ok(super::super::decode_xml_entities(
                    &tokens.text_until_end(name)?,
                ))
            }
        };
        Ok(match name {
            "true" | "false" => {
                if !empty {
                    tokens.skip_element(name)?;
                }
                Scalar::Bool(name == "true")
            }
            "string" => Scalar::String(text(tokens)?),
            "integer" => {
                let t = text(tokens)?;
                Scalar::Integer(
                    t.trim()
                        .parse()
                        .map_err(|_| PlistError(format!("<integer>{t}</integer>")))?,
                )
            }
            "real" => {
                let t = text(tokens)?;
                Scalar::Real(
                    t.trim()
                        .parse()
                        .map_err(|_| PlistError(format!("<real>{t}</real>")))?,
                )
            }
            "date" => {
                let t = text(tokens)?;
                Scalar::Date(
                    iso8601_ms(t.trim()).ok_or_else(|| PlistError(format!("<date>{t}</date>")))?,
                )
            }
            _ => {
                if !empty {
                    tokens.skip_element(name)?;
                }
                Scalar::Other
            }
        })
    }

    /// `YYYY-MM-DDTHH:MM:SSZ`, the only form XML plists write.
    pub(super) fn iso8601_ms(text: &str) -> Option<i64> {
        let b = text.as_bytes();
        if b.len() != 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[19] != b'Z' {
            return None;
        }
        let num = |range: std::ops::Range<usize>| text.get(range)?.parse::<u32>().ok();
        let day = super::super::date_to_ms(i64::from(num(0..4)?), num(5..7)?, num(8..10)?)?;
        let (h, m, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
        if h > 23 || m > 59 || s > 60 {
            return None;
        }
        Some(day + i64::from(h * 3600 + m * 60 + s) * 1000)
    }
}

mod binary {
    use super::{Dict, PLIST_EPOCH, PlistError, Scalar, err};

    struct Plist<'a> {
        bytes: &'a [u8],
        offsets: &'a [u8],
        offset_size: usize,
        ref_size: usize,
        objects: u64,
    }

    fn uint(bytes: &[u8]) -> u64 {
        bytes.iter().fold(0, |v, &b| (v << 8) | u64::from(b))
    }

    impl<'a> Plist<'a> {
        fn get(&self, at: usize, len: usize) -> Result<&'a [u8], PlistError> {
            at.checked_add(len)
                .and_then(|end| self.bytes.get(at..end))
                .ok_or_else(|| PlistError(format!("{len} bytes at {at} run past the end")))
        }

        /// Where object `index` starts.
        fn offset(&self, index: u64) -> Result<usize, PlistError> {
            if index >= self.objects {
                return err(format!("object reference {index} out of range"));
            }
            let at = index as usize * self.offset_size;
            let offset = uint(&self.offsets[at..at + self.offset_size]);
            usize::try_from(offset)
                .ok()
                .filter(|&o| o < self.bytes.len())
                .ok_or_else(|| PlistError(format!("object offset {offset} out of range")))
        }

        /// An object's marker byte, its length/count (reading an extended length) and where its
        /// contents start.
        fn header(&self, at: usize) -> Result<(u8, usize, usize), PlistError> {
            let marker = self.get(at, 1)?[0];
            let info = marker & 0x0f;
            if info != 0x0f || matches!(marker >> 4, 0..=3) {
                return Ok((marker, info as usize, at + 1));
            }
            let int_marker = self.get(at + 1, 1)?[0];
            if int_marker >> 4 != 1 || int_marker & 0x0f > 3 {
                return err(format!("bad length marker {int_marker:#04x} at {at}"));
            }
            let width = 1usize << (int_marker & 0x0f);
            let len = uint(self.get(at + 2, width)?);
            let len = usize::try_from(len)
                .ok()
                .filter(|&l| l <= self.bytes.len())
                .ok_or_else(|| PlistError(format!("length {len} at {at} is too large")))?;
            Ok((marker, len, at + 2 + width))
        }

        fn reference(&self, at: usize, i: usize) -> Result<u64, PlistError> {
            Ok(uint(self.get(at + i * self.ref_size, self.ref_size)?))
        }

        fn string(&self, index: u64) -> Result<String, PlistError> {
            let (marker, len, start) = self.header(self.offset(index)?)?;
            match marker >> 4 {
                0x5 => Ok(String::from_utf8_lossy(self.get(start, len)?).into_owned()),
                0x6 => {
                    let bytes = self.get(start, len.saturating_mul(2))?;
                    let units = bytes
                        .chunks_exact(2)
                        .map(|c| u16::from_be_bytes([c[0], c[1]]));
                    Ok(char::decode_utf16(units)
                        .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
                        .collect())
                }
                _ => err(format!("object {index} is not a string")),
            }
        }

        fn scalar(&self, index: u64) -> Result<Scalar, PlistError> {
            let at = self.offset(index)?;
            let (marker, len, start) = self.header(at)?;
            Ok(match marker >> 4 {
                0x0 => match marker {
                    0x08 => Scalar::Bool(false),
                    0x09 => Scalar::Bool(true),
                    _ => Scalar::Other,
                },
                0x1 => {
                    let width = 1usize << (marker & 0x0f).min(4);
                    let bytes = self.get(start, width)?;
                    // 1-, 2- and 4-byte integers are unsigned, 8-byte ones signed, 16-byte ones
                    // keep their low 8 bytes.
                    let low = &bytes[bytes.len().saturating_sub(8)..];
                    Scalar::Integer(uint(low) as i64)
                }
                0x2 => Scalar::Real(self.real(marker, start)?),
                0x3 if marker == 0x33 => {
                    let seconds = self.real(0x23, start)?;
                    let ms = (seconds + PLIST_EPOCH) * 1000.0;
                    if !ms.is_finite() || ms.abs() > 1e17 {
                        return err(format!("date {seconds} out of range"));
                    }
                    Scalar::Date(ms.round() as i64)
                }
                0x5 | 0x6 => Scalar::String(self.string(index)?),
                _ => {
                    let _ = len;
                    Scalar::Other
                }
            })
        }

        fn real(&self, marker: u8, start: usize) -> Result<f64, PlistError> {
            match marker & 0x0f {
                2 => {
                    let b = self.get(start, 4)?;
                    Ok(f64::from(f32::from_be_bytes([b[0], b[1], b[2], b[3]])))
                }
                3 => Ok(f64::from_bits(uint(self.get(start, 8)?))),
                n => err(format!("a {}-byte real", 1u32 << n.min(8))),
            }
        }
    }

    pub(super) fn top_level(bytes: &[u8]) -> Result<Dict, PlistError> {
        if bytes.len() < 8 + 32 {
            return err("too short for a binary plist");
        }
        let trailer = &bytes[bytes.len() - 32..];
        let offset_size = trailer[6] as usize;
        let ref_size = trailer[7] as usize;
        let objects = uint(&trailer[8..16]);
        let top = uint(&trailer[16..24]);
        let table = uint(&trailer[24..32]);
        if !(1..=8).contains(&offset_size) || !(1..=8).contains(&ref_size) {
            return err("bad offset or reference size");
        }
        let table_len = objects
            .checked_mul(offset_size as u64)
            .filter(|&l| l <= bytes.len() as u64)
            .ok_or_else(|| PlistError(format!("{objects} objects")))?;
        let offsets = usize::try_from(table)
            .ok()
            .and_then(|t| bytes.get(t..t.checked_add(table_len as usize)?))
            .ok_or_else(|| PlistError("offset table out of range".into()))?;
        let plist = Plist {
            bytes,
            offsets,
            offset_size,
            ref_size,
            objects,
        };
        let (marker, count, start) = plist.header(plist.offset(top)?)?;
        if marker >> 4 != 0xd {
            return err("the top-level object is not a dictionary");
        }
        let mut dict = Dict::default();
        for i in 0..count {
            let key = plist.string(plist.reference(start, i)?)?;
            let value = plist.scalar(plist.reference(start, count + i)?)?;
            dict.0.push((key, value));
        }
        Ok(dict)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO_PLIST: &[u8] = br#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<!-- a comment -->
	<key>CFBundleDocumentTypes</key>
	<array><dict><key>CFBundleTypeName</key><string>nested</string></dict><string/></array>
	<key>CFBundleIdentifier</key>
	<string>org.mozilla.firefox</string>
	<key>CFBundleName</key>
	<string>Firefox &amp; Co</string>
	<key>LSRequiresNativeExecution</key>
	<true/>
	<key>Count</key>
	<integer>-42</integer>
	<key>InstallDate</key>
	<date>2024-02-29T13:14:15Z</date>
	<key>Empty</key>
	<string/>
	<key>Nested</key>
	<dict/>
</dict>
</plist>
"#;

    #[test]
    fn xml_top_level_scalars() {
        let dict = top_level(INFO_PLIST).unwrap();
        assert_eq!(
            dict.string("CFBundleIdentifier"),
            Some("org.mozilla.firefox")
        );
        assert_eq!(dict.string("CFBundleName"), Some("Firefox & Co"));
        assert_eq!(dict.get("CFBundleDocumentTypes"), Some(&Scalar::Other));
        assert_eq!(dict.get("CFBundleTypeName"), None);
        assert_eq!(
            dict.get("LSRequiresNativeExecution"),
            Some(&Scalar::Bool(true))
        );
        assert_eq!(dict.get("Count"), Some(&Scalar::Integer(-42)));
        assert_eq!(
            dict.get("InstallDate"),
            Some(&Scalar::Date(1_709_212_455_000))
        );
        assert_eq!(dict.string("Empty"), None);
        assert_eq!(dict.get("Nested"), Some(&Scalar::Other));
    }

    #[test]
    fn xml_errors() {
        assert!(top_level(b"<plist><array></array></plist>").is_err());
        assert!(top_level(b"<plist><dict><string>x</string></dict></plist>").is_err());
        assert!(top_level(b"<plist><dict><key>a</key><integer>x</integer></dict>").is_err());
        assert!(top_level(b"").is_err());
        for len in 0..INFO_PLIST.len() {
            let _ = top_level(&INFO_PLIST[..len]);
        }
    }

    /// A binary plist written by Python's plistlib (the format macOS writes receipts in):
    /// `{"PackageIdentifier": "com.example.tool", "PackageVersion": "1.2", "InstallDate":
    /// 2024-02-29T13:14:15Z, "Ünïcode": "värde", "List": [1, 2], "Big": 4294967296, "Yes": True}`.
    const BINARY: &[u8] = include_bytes!("../../../tests/fixtures/software/plist/sample.bplist");

    #[test]
    fn binary_top_level_scalars() {
        let dict = top_level(BINARY).unwrap();
        assert_eq!(dict.string("PackageIdentifier"), Some("com.example.tool"));
        assert_eq!(dict.string("PackageVersion"), Some("1.2"));
        assert_eq!(
            dict.get("InstallDate"),
            Some(&Scalar::Date(1_709_212_455_000))
        );
        assert_eq!(dict.string("Ünïcode"), Some("värde"));
        assert_eq!(dict.get("List"), Some(&Scalar::Other));
        assert_eq!(dict.get("Big"), Some(&Scalar::Integer(4_294_967_296)));
        assert_eq!(dict.get("Yes"), Some(&Scalar::Bool(true)));
    }

    #[test]
    fn every_truncation_and_corruption_of_a_binary_plist_is_handled() {
        for len in 0..BINARY.len() {
            let _ = top_level(&BINARY[..len]);
        }
        for at in 0..BINARY.len() {
            for flip in [0x01, 0x80, 0xff] {
                let mut broken = BINARY.to_vec();
                broken[at] ^= flip;
                let _ = top_level(&broken);
            }
        }
    }

    #[test]
    fn iso_dates() {
        assert_eq!(xml::iso8601_ms("1970-01-01T00:00:01Z"), Some(1000));
        assert_eq!(xml::iso8601_ms("2024-13-01T00:00:00Z"), None);
        assert_eq!(xml::iso8601_ms("2024-01-01"), None);
    }
}
