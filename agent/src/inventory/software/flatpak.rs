//! Flatpak, system-wide installation: `/var/lib/flatpak/{app,runtime}/<id>/<arch>/<branch>/active`
//! (a link to the deployed commit). Runtimes are reported beside apps: a vulnerable runtime is
//! as much installed software as an app.
//!
//! Per deployment: `metadata` (a key file whose `[Application]` or `[Runtime]` group names it)
//! must exist, else the deployment is skipped with a warning; the version is the first
//! `<release version=...>` of the AppStream file (`files/share/metainfo/<id>.metainfo.xml`, or
//! the older `appdata` names), which lists the newest release first, and the publisher its
//! `<developer_name>` (or `<developer><name>`). Without AppStream data the version is the
//! branch (`stable`, `23.08`), the only version flatpak itself shows. The install time is the
//! modification time of `deploy`, which flatpak writes when it deploys a commit; the installed
//! size is inside that GVariant file and is not read.

use std::path::Path;

use steward_shared::v1::SoftwarePackage;

use super::{Collected, SoftwareSource, SourceError, lossy};

pub struct Flatpak;

pub const FLATPAK_DIR: &str = "var/lib/flatpak";
const KINDS: [&str; 2] = ["app", "runtime"];

/// The cap for `metadata` and AppStream files.
const FILE_CAP: u64 = 4 << 20;

impl SoftwareSource for Flatpak {
    fn name(&self) -> &'static str {
        "flatpak"
    }

    fn present(&self, root: &Path) -> bool {
        KINDS
            .iter()
            .any(|kind| super::is_dir(root, &format!("{FLATPAK_DIR}/{kind}")))
    }

    fn collect(&self, root: &Path) -> Result<Collected, SourceError> {
        let mut collected = Collected::default();
        for kind in KINDS {
            let kind_dir = format!("{FLATPAK_DIR}/{kind}");
            if !super::is_dir(root, &kind_dir) {
                continue;
            }
            for id in plain_dirs(root, &kind_dir)? {
                let id_dir = format!("{kind_dir}/{id}");
                for arch in plain_dirs(root, &id_dir)? {
                    let arch_dir = format!("{id_dir}/{arch}");
                    for branch in plain_dirs(root, &arch_dir)? {
                        let active = format!("{arch_dir}/{branch}/active");
                        if !super::is_dir(root, &active) {
                            continue;
                        }
                        match deployment(root, &active, &id, &arch, &branch) {
                            Ok(package) => collected.packages.push(package),
                            Err(error) => collected.warnings.push(format!("{error}; skipped")),
                        }
                    }
                }
            }
        }
        Ok(collected)
    }
}

/// The real subdirectories of `rel`: links such as `<id>/current` are not deployments.
fn plain_dirs(root: &Path, rel: &str) -> Result<Vec<String>, SourceError> {
    Ok(super::list_dir(root, rel)?
        .into_iter()
        .filter(|name| {
            super::is_plain_name(name)
                && std::fs::symlink_metadata(root.join(rel).join(name)).is_ok_and(|m| m.is_dir())
        })
        .collect())
}

fn deployment(
    root: &Path,
    active: &str,
    id: &str,
    arch: &str,
    branch: &str,
) -> Result<SoftwarePackage, SourceError> {
    let metadata = super::read_capped(root, &format!("{active}/metadata"), FILE_CAP)?;
    let name = metadata_name(&metadata).unwrap_or_else(|| id.to_string());
    let appstream = APPSTREAM_FILES.iter().find_map(|pattern| {
        let rel = format!("{active}/files/share/{}", pattern.replace("{id}", id));
        super::read_capped(root, &rel, FILE_CAP).ok()
    });
    let (version, publisher) = appstream
        .as_deref()
        .map(appstream_release)
        .unwrap_or_default();
    Ok(SoftwarePackage {
        name,
        version: version.unwrap_or_else(|| branch.to_string()),
        arch: arch.to_string(),
        publisher: publisher.unwrap_or_default(),
        installed_at_ms: super::mtime_ms(&root.join(format!("{active}/deploy"))),
        size_bytes: None,
        source: "flatpak".to_string(),
    })
}

/// Where an app's AppStream file is, newest convention first.
const APPSTREAM_FILES: [&str; 4] = [
    "metainfo/{id}.metainfo.xml",
    "metainfo/{id}.appdata.xml",
    "appdata/{id}.appdata.xml",
    "appdata/{id}.metainfo.xml",
];

/// `name=` of the `[Application]` or `[Runtime]` group of a flatpak `metadata` key file.
pub fn metadata_name(text: &[u8]) -> Option<String> {
    let mut in_group = false;
    for (_, line) in super::numbered_lines(text) {
        let line = super::trim(line);
        if line.starts_with(b"[") {
            in_group = line == b"[Application]" || line == b"[Runtime]";
            continue;
        }
        if in_group && let Some(value) = line.strip_prefix(b"name=") {
            let name = lossy(super::trim(value));
            return (!name.is_empty()).then_some(name);
        }
    }
    None
}

/// The newest release's version and the developer's name from an AppStream XML file. Only
/// what is needed is scanned for; entities in the values are decoded.
pub fn appstream_release(xml: &[u8]) -> (Option<String>, Option<String>) {
    let text = String::from_utf8_lossy(xml);
    let version = find_tag(&text, "release").and_then(|(attrs, _)| attribute(attrs, "version"));
    let developer = element_text(&text, "developer_name").or_else(|| {
        let start = text.find("<developer")?;
        element_text(&text[start..], "name")
    });
    (version, developer)
}

/// The attributes of the first `<tag ...>` (not `<tagfoo`) and the offset just past its `>`.
fn find_tag<'a>(text: &'a str, tag: &str) -> Option<(&'a str, usize)> {
    let open = format!("<{tag}");
    let mut from = 0;
    while let Some(at) = text[from..].find(&open) {
        let attrs_start = from + at + open.len();
        let after = &text[attrs_start..];
        if after.starts_with(|c: char| c.is_whitespace() || c == '>' || c == '/') {
            let end = after.find('>')?;
            return Some((&after[..end], attrs_start + end + 1));
        }
        from = attrs_start;
    }
    None
}

fn attribute(attrs: &str, name: &str) -> Option<String> {
    let mut rest = attrs;
    while let Some(at) = rest.find(name) {
        let before_ok = at == 0 || rest[..at].ends_with(char::is_whitespace);
        let after = rest[at + name.len()..].trim_start();
        if before_ok && let Some(value) = after.strip_prefix('=') {
            let value = value.trim_start();
            let quote = value.chars().next().filter(|c| *c == '"' || *c == '\'')?;
            let inner = &value[1..];
            let end = inner.find(quote)?;
            return Some(super::decode_xml_entities(&inner[..end]));
        }
        rest = &rest[at + name.len()..];
    }
    None
}

/// The text of the first `<tag>text</tag>` (attributes allowed, `xml:lang` variants skipped).
fn element_text(text: &str, tag: &str) -> Option<String> {
    let mut from = 0;
    loop {
        let (attrs, body_start) = find_tag(&text[from..], tag)?;
        let body = &text[from + body_start..];
        if !attrs.contains("xml:lang") && !attrs.ends_with('/') {
            let end = body.find(&format!("</{tag}>"))?;
            let value = super::decode_xml_entities(body[..end].trim());
            return (!value.is_empty()).then_some(value);
        }
        from += body_start;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appstream_gives_the_newest_release_and_developer() {
        let xml = br#"<?xml version="1.0" encoding="UTF-8"?>
<component type="desktop-application">
  <id>org.gimp.GIMP</id>
  <developer_name xml:lang="de">Das GIMP-Team</developer_name>
  <developer_name>The GIMP Team &amp; friends</developer_name>
  <releases>
    <release version="2.10.38" date="2024-05-02"/>
    <release version="2.10.36" date="2023-11-05"/>
  </releases>
</component>"#;
        assert_eq!(
            appstream_release(xml),
            (
                Some("2.10.38".to_string()),
                Some("The GIMP Team & friends".to_string())
            )
        );
        let xml = br#"<component><developer id="org.mozilla"><name>Mozilla</name></developer>
<releases><release date="2024-01-01" version='122.0'></release></releases></component>"#;
        assert_eq!(
            appstream_release(xml),
            (Some("122.0".to_string()), Some("Mozilla".to_string()))
        );
        assert_eq!(
            appstream_release(b"<releases><releasenotes/>"),
            (None, None)
        );
        assert_eq!(appstream_release(b"<release version=\"1"), (None, None));
    }

    #[test]
    fn metadata_names_apps_and_runtimes() {
        assert_eq!(
            metadata_name(
                b"[Application]\nname=org.gimp.GIMP\nruntime=org.gnome.Platform/x86_64/46\n"
            ),
            Some("org.gimp.GIMP".to_string())
        );
        assert_eq!(
            metadata_name(b"[Runtime]\nname=org.freedesktop.Platform\n"),
            Some("org.freedesktop.Platform".to_string())
        );
        assert_eq!(metadata_name(b"[Context]\nname=nope\n"), None);
    }
}
