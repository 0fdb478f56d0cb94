//! Which CIs and instances a rule (or a silence) applies to. Every part is optional and all
//! given parts must match: `class` (any of the listed classes), `tags` (all of them),
//! `service` (any of the listed services), `name` (a glob on the CI name) and `instance` (a
//! glob on the sample's instance: mount point, interface, package).
//!
//! The CI part is matched once per CI and cached by the engine; the instance part per sample.

use std::fmt;

use super::event::CiFacts;
use super::glob::Glob;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Selector {
    /// The CI's class is one of these (empty: any class).
    pub classes: Vec<String>,
    /// The CI carries every one of these tags.
    pub tags: Vec<String>,
    /// The CI belongs to at least one of these services (empty: any).
    pub services: Vec<String>,
    /// A glob on the CI's name.
    pub name: Option<Glob>,
    /// A glob on the sample's instance.
    pub instance: Option<Glob>,
}

impl Selector {
    /// Whether the selector selects everything.
    pub fn is_empty(&self) -> bool {
        self.classes.is_empty()
            && self.tags.is_empty()
            && self.services.is_empty()
            && self.name.is_none()
            && self.instance.is_none()
    }

    /// The CI part: class, tags, services and name.
    pub fn matches_ci(&self, ci: &CiFacts) -> bool {
        (self.classes.is_empty() || self.classes.contains(&ci.class))
            && self.tags.iter().all(|tag| ci.tags.contains(tag))
            && (self.services.is_empty()
                || self
                    .services
                    .iter()
                    .any(|service| ci.services.contains(service)))
            && self.name.as_ref().is_none_or(|glob| glob.matches(&ci.name))
    }

    /// The instance part.
    pub fn matches_instance(&self, instance: &str) -> bool {
        self.instance
            .as_ref()
            .is_none_or(|glob| glob.matches(instance))
    }

    pub fn matches(&self, ci: &CiFacts, instance: &str) -> bool {
        self.matches_ci(ci) && self.matches_instance(instance)
    }

    /// Parses the command-line form, `key=value` pairs separated by commas:
    /// `class=server,tag=prod,tag=eu,service=web-shop,name=web*,instance=/var*`. `class` and
    /// `service` may repeat (any of them), `tag` may repeat (all of them). Globs in this form
    /// cannot contain a comma. [`Selector`]'s `Display` writes this form back.
    pub fn parse(text: &str) -> Result<Selector, String> {
        let mut selector = Selector::default();
        for pair in text
            .split(',')
            .map(str::trim)
            .filter(|pair| !pair.is_empty())
        {
            let Some((key, value)) = pair.split_once('=') else {
                return Err(format!("selector part {pair:?} is not key=value"));
            };
            let (key, value) = (key.trim(), value.trim());
            if value.is_empty() {
                return Err(format!("selector {key}= has no value"));
            }
            let glob = |value: &str| Glob::parse(value).map_err(|e| format!("selector {key}: {e}"));
            match key {
                "class" => selector.classes.push(value.to_string()),
                "tag" | "tags" => selector.tags.push(value.to_string()),
                "service" => selector.services.push(value.to_string()),
                "name" => selector.name = Some(glob(value)?),
                "instance" => selector.instance = Some(glob(value)?),
                other => {
                    return Err(format!(
                        "unknown selector key {other:?}; known: class, tag, service, name, instance"
                    ));
                }
            }
        }
        if selector.is_empty() {
            return Err(
                "empty selector: give at least one of class, tag, service, name, instance".into(),
            );
        }
        Ok(selector)
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        parts.extend(self.classes.iter().map(|class| format!("class={class}")));
        parts.extend(self.tags.iter().map(|tag| format!("tag={tag}")));
        parts.extend(
            self.services
                .iter()
                .map(|service| format!("service={service}")),
        );
        parts.extend(self.name.iter().map(|glob| format!("name={glob}")));
        parts.extend(self.instance.iter().map(|glob| format!("instance={glob}")));
        f.write_str(&parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ci() -> CiFacts {
        CiFacts {
            id: 1,
            name: "web-1".into(),
            class: "server".into(),
            tags: vec!["prod".into(), "eu".into()],
            services: vec!["web-shop".into()],
        }
    }

    #[test]
    fn empty_selector_matches_everything() {
        assert!(Selector::default().matches(&ci(), "/var"));
    }

    #[test]
    fn class_is_any_of_the_list() {
        let mut selector = Selector {
            classes: vec!["workstation".into(), "server".into()],
            ..Selector::default()
        };
        assert!(selector.matches_ci(&ci()));
        selector.classes = vec!["laptop".into()];
        assert!(!selector.matches_ci(&ci()));
    }

    #[test]
    fn tags_must_all_be_present() {
        let mut selector = Selector {
            tags: vec!["prod".into(), "eu".into()],
            ..Selector::default()
        };
        assert!(selector.matches_ci(&ci()));
        selector.tags.push("pci".into());
        assert!(!selector.matches_ci(&ci()));
    }

    #[test]
    fn service_name_and_instance_globs() {
        let selector = Selector::parse("service=web-shop,name=web*,instance=/var*").unwrap();
        assert!(selector.matches(&ci(), "/var/log"));
        assert!(!selector.matches(&ci(), "/home"));
        let other = Selector::parse("service=billing").unwrap();
        assert!(!other.matches_ci(&ci()));
    }

    #[test]
    fn command_line_form_round_trips() {
        let text = "class=server,class=laptop,tag=prod,tag=eu,service=web-shop,name=web*,instance=/var*|/srv";
        let selector = Selector::parse(text).unwrap();
        assert_eq!(selector.to_string(), text);
        assert_eq!(Selector::parse(&selector.to_string()).unwrap(), selector);
    }

    #[test]
    fn command_line_form_errors_name_the_part() {
        assert!(
            Selector::parse("colour=red")
                .unwrap_err()
                .contains("colour")
        );
        assert!(Selector::parse("class").unwrap_err().contains("key=value"));
        assert!(Selector::parse("name=").unwrap_err().contains("no value"));
        assert!(Selector::parse("").unwrap_err().contains("empty"));
        assert!(
            Selector::parse("name=a||b")
                .unwrap_err()
                .contains("empty alternative")
        );
    }
}
