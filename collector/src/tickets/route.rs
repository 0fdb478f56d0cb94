//! Routing: which connectors (and which queue of each) an escalated event goes to, by
//! severity, rule, CI class, service, tags (e.g. the support group's) and the CI's owner.

use serde::{Deserialize, Serialize};

use super::config::{ConnectorConfig, RouteConfig};
use crate::rules::Glob;

/// Where one event goes: a connector and the queue there ("" for the connector's default).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Destination {
    pub connector: String,
    pub queue: String,
}

/// What routing looks at.
#[derive(Debug, Clone, Default)]
pub struct RouteFacts<'a> {
    pub rule: &'a str,
    pub severity: &'a str,
    pub class: &'a str,
    pub services: &'a [String],
    pub tags: &'a [String],
    pub owner: &'a str,
}

/// The connectors and routes, with the routes' globs parsed once.
#[derive(Debug, Clone, Default)]
pub struct Routes {
    connectors: Vec<String>,
    routes: Vec<(RouteConfig, Vec<Glob>, Vec<Glob>)>,
}

impl Routes {
    /// From validated config (see `config::validate`); a glob that does not parse matches
    /// nothing.
    pub fn new(connectors: &[ConnectorConfig], routes: &[RouteConfig]) -> Routes {
        let globs = |list: &[String]| list.iter().filter_map(|g| Glob::parse(g).ok()).collect();
        Routes {
            connectors: connectors.iter().map(|c| c.name.clone()).collect(),
            routes: routes
                .iter()
                .map(|r| (r.clone(), globs(&r.rules), globs(&r.owners)))
                .collect(),
        }
    }

    /// True when there is nowhere to send anything.
    pub fn is_empty(&self) -> bool {
        self.connectors.is_empty()
    }

    /// Destinations for an event: with no routes, every connector; otherwise, for each
    /// connector, the first of its routes that matches.
    pub fn destinations(&self, facts: &RouteFacts<'_>) -> Vec<Destination> {
        if self.routes.is_empty() {
            return self
                .connectors
                .iter()
                .map(|c| Destination {
                    connector: c.clone(),
                    queue: String::new(),
                })
                .collect();
        }
        let mut out: Vec<Destination> = Vec::new();
        for (route, rules, owners) in &self.routes {
            if out.iter().any(|d| d.connector == route.connector)
                || !matches(route, rules, owners, facts)
            {
                continue;
            }
            out.push(Destination {
                connector: route.connector.clone(),
                queue: route.queue.clone().unwrap_or_default(),
            });
        }
        out
    }
}

fn matches(route: &RouteConfig, rules: &[Glob], owners: &[Glob], facts: &RouteFacts<'_>) -> bool {
    let any = |list: &[String], value: &str| list.is_empty() || list.iter().any(|v| v == value);
    let any_of = |list: &[String], values: &[String]| {
        list.is_empty() || list.iter().any(|v| values.contains(v))
    };
    any(&route.severity, facts.severity)
        && (rules.is_empty() || rules.iter().any(|g| g.matches(facts.rule)))
        && any(&route.classes, facts.class)
        && any_of(&route.services, facts.services)
        && any_of(&route.tags, facts.tags)
        && (owners.is_empty() || owners.iter().any(|g| g.matches(facts.owner)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn connector(name: &str) -> ConnectorConfig {
        let text = format!(
            "name = \"{name}\"\ntype = \"webhook\"\nurl = \"http://127.0.0.1:1\"\nsecret_file = \"/x\"\n"
        );
        toml::from_str(&text).unwrap()
    }

    #[test]
    fn without_routes_every_connector_gets_every_event() {
        let routes = Routes::new(&[connector("a"), connector("b")], &[]);
        let d = routes.destinations(&RouteFacts::default());
        assert_eq!(d.len(), 2);
        assert!(d.iter().all(|d| d.queue.is_empty()));
    }

    #[test]
    fn routes_match_on_every_condition_given_and_first_match_wins() {
        let connectors = [connector("rt"), connector("pd")];
        let routes = [
            RouteConfig {
                connector: "rt".into(),
                queue: Some("Network".into()),
                classes: vec!["network_device".into()],
                ..RouteConfig::default()
            },
            RouteConfig {
                connector: "rt".into(),
                queue: Some("Web".into()),
                services: vec!["webshop".into()],
                owners: vec!["web*".into()],
                ..RouteConfig::default()
            },
            RouteConfig {
                connector: "pd".into(),
                severity: vec!["critical".into()],
                rules: vec!["fs-*".into()],
                tags: vec!["team-storage".into()],
                ..RouteConfig::default()
            },
        ];
        let routes = Routes::new(&connectors, &routes);
        let services = vec!["webshop".to_string()];
        let tags = vec!["team-storage".to_string()];
        let web = RouteFacts {
            rule: "fs-full",
            severity: "critical",
            class: "server",
            services: &services,
            tags: &tags,
            owner: "web team",
        };
        assert_eq!(
            routes.destinations(&web),
            vec![
                Destination {
                    connector: "rt".into(),
                    queue: "Web".into()
                },
                Destination {
                    connector: "pd".into(),
                    queue: String::new()
                },
            ]
        );
        let switch = RouteFacts {
            rule: "if-down",
            severity: "warning",
            class: "network_device",
            ..RouteFacts::default()
        };
        assert_eq!(
            routes.destinations(&switch),
            vec![Destination {
                connector: "rt".into(),
                queue: "Network".into()
            }]
        );
        let warning = RouteFacts {
            severity: "warning",
            ..web.clone()
        };
        assert_eq!(
            routes.destinations(&warning).len(),
            1,
            "pd takes critical only"
        );
        let nobody = RouteFacts {
            class: "server",
            ..RouteFacts::default()
        };
        assert!(routes.destinations(&nobody).is_empty());
    }
}
