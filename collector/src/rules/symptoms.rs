//! Root cause over symptoms: when a router is down, the servers behind it go silent too; their
//! events are symptoms of the router's, not problems of their own to escalate.
//!
//! The topology is given as "reached through": for each CI, the CIs the collector reaches it
//! through (its upstreams: the switch a server is connected to, the host a VM runs on). A CI
//! with no entry, or an empty one, is reached directly.
//!
//! The rule implemented: a down CI is a **symptom** when none of its paths from the collector
//! is open, i.e. each runs through another down CI; it is a **root cause** when it is reached
//! directly or through at least one path of CIs that are all up. A symptom's root causes are
//! the root-cause CIs found walking upstream from it (through up and down CIs, stopping at each
//! root cause). A down CI whose upstream walk finds no root cause (it sits in a cycle or an
//! island with no way to the collector) is treated as a root cause itself: better one event
//! too many than a problem hidden.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};

/// Maps each symptom CI to its root-cause CIs (ascending, never empty; the first is "the"
/// root cause when one is needed). Down CIs absent from the result are root causes.
pub fn root_causes(
    reached_through: &HashMap<i64, Vec<i64>>,
    down: &HashSet<i64>,
) -> BTreeMap<i64, Vec<i64>> {
    let upstreams = |ci: i64| reached_through.get(&ci).map(Vec::as_slice).unwrap_or(&[]);
    let direct = |ci: i64| upstreams(ci).is_empty();

    // Downstream edges, to walk from the collector outwards.
    let mut downstreams: HashMap<i64, Vec<i64>> = HashMap::new();
    let mut all: HashSet<i64> = down.iter().copied().collect();
    for (&ci, ups) in reached_through {
        all.insert(ci);
        for &up in ups {
            all.insert(up);
            downstreams.entry(up).or_default().push(ci);
        }
    }

    // `open`: up CIs the collector reaches through up CIs only.
    let mut open: HashSet<i64> = HashSet::new();
    let mut queue: VecDeque<i64> = all
        .iter()
        .copied()
        .filter(|&ci| direct(ci) && !down.contains(&ci))
        .collect();
    open.extend(queue.iter().copied());
    while let Some(ci) = queue.pop_front() {
        for &next in downstreams.get(&ci).map(Vec::as_slice).unwrap_or(&[]) {
            if !down.contains(&next) && open.insert(next) {
                queue.push_back(next);
            }
        }
    }

    let independent = |ci: i64| direct(ci) || upstreams(ci).iter().any(|up| open.contains(up));

    let mut result = BTreeMap::new();
    for &ci in down {
        if independent(ci) {
            continue;
        }
        let mut roots = BTreeSet::new();
        let mut seen: HashSet<i64> = HashSet::from([ci]);
        let mut queue: VecDeque<i64> = upstreams(ci).iter().copied().collect();
        while let Some(up) = queue.pop_front() {
            if !seen.insert(up) {
                continue;
            }
            if down.contains(&up) && independent(up) {
                roots.insert(up);
                continue;
            }
            queue.extend(upstreams(up).iter().copied());
        }
        if !roots.is_empty() {
            result.insert(ci, roots.into_iter().collect());
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROUTER: i64 = 1;
    const SWITCH: i64 = 2;
    const SERVER: i64 = 3;
    const OTHER_SWITCH: i64 = 4;
    const VM: i64 = 5;

    fn topology(edges: &[(i64, &[i64])]) -> HashMap<i64, Vec<i64>> {
        edges.iter().map(|(ci, ups)| (*ci, ups.to_vec())).collect()
    }

    fn down(cis: &[i64]) -> HashSet<i64> {
        cis.iter().copied().collect()
    }

    /// router ← switch ← server ← vm (each reached through the one before).
    fn chain() -> HashMap<i64, Vec<i64>> {
        topology(&[(SWITCH, &[ROUTER]), (SERVER, &[SWITCH]), (VM, &[SERVER])])
    }

    #[test]
    fn everything_behind_a_down_router_is_its_symptom() {
        let result = root_causes(&chain(), &down(&[ROUTER, SWITCH, SERVER, VM]));
        assert_eq!(
            result,
            BTreeMap::from([
                (SWITCH, vec![ROUTER]),
                (SERVER, vec![ROUTER]),
                (VM, vec![ROUTER])
            ])
        );
    }

    #[test]
    fn the_first_down_ci_on_the_path_is_the_root_cause() {
        let result = root_causes(&chain(), &down(&[SWITCH, SERVER]));
        assert_eq!(result, BTreeMap::from([(SERVER, vec![SWITCH])]));
    }

    #[test]
    fn a_down_ci_behind_up_cis_is_a_root_cause() {
        assert!(root_causes(&chain(), &down(&[SERVER])).is_empty());
    }

    #[test]
    fn up_cis_between_a_symptom_and_its_root_are_walked_through() {
        // The switch is not reported down (no rule watches it), but the router is.
        let result = root_causes(&chain(), &down(&[ROUTER, SERVER]));
        assert_eq!(result, BTreeMap::from([(SERVER, vec![ROUTER])]));
    }

    /// router ← switch, router ← other switch, server reached through both switches.
    fn diamond() -> HashMap<i64, Vec<i64>> {
        topology(&[
            (SWITCH, &[ROUTER]),
            (OTHER_SWITCH, &[ROUTER]),
            (SERVER, &[SWITCH, OTHER_SWITCH]),
        ])
    }

    #[test]
    fn diamond_with_one_path_still_open_is_not_a_symptom() {
        assert!(root_causes(&diamond(), &down(&[SWITCH, SERVER])).is_empty());
    }

    #[test]
    fn diamond_with_both_paths_down_names_both_roots() {
        let result = root_causes(&diamond(), &down(&[SWITCH, OTHER_SWITCH, SERVER]));
        assert_eq!(
            result,
            BTreeMap::from([(SERVER, vec![SWITCH, OTHER_SWITCH])])
        );
    }

    #[test]
    fn diamond_below_a_down_router_has_one_root() {
        let result = root_causes(&diamond(), &down(&[ROUTER, SWITCH, OTHER_SWITCH, SERVER]));
        assert_eq!(
            result,
            BTreeMap::from([
                (SWITCH, vec![ROUTER]),
                (OTHER_SWITCH, vec![ROUTER]),
                (SERVER, vec![ROUTER])
            ])
        );
    }

    #[test]
    fn a_cycle_of_down_cis_with_no_way_out_is_not_hidden() {
        let ring = topology(&[(SWITCH, &[OTHER_SWITCH]), (OTHER_SWITCH, &[SWITCH])]);
        assert!(root_causes(&ring, &down(&[SWITCH, OTHER_SWITCH])).is_empty());
        let self_loop = topology(&[(SERVER, &[SERVER])]);
        assert!(root_causes(&self_loop, &down(&[SERVER])).is_empty());
    }

    #[test]
    fn a_cycle_hanging_off_a_down_router_resolves_to_the_router() {
        // Two switches reached through the router and each other (a redundant ring).
        let ring = topology(&[
            (SWITCH, &[ROUTER, OTHER_SWITCH]),
            (OTHER_SWITCH, &[SWITCH]),
            (SERVER, &[OTHER_SWITCH]),
        ]);
        let result = root_causes(&ring, &down(&[ROUTER, SWITCH, OTHER_SWITCH, SERVER]));
        assert_eq!(
            result,
            BTreeMap::from([
                (SWITCH, vec![ROUTER]),
                (OTHER_SWITCH, vec![ROUTER]),
                (SERVER, vec![ROUTER])
            ])
        );
    }

    #[test]
    fn a_cycle_with_an_up_exit_is_open() {
        let ring = topology(&[
            (SWITCH, &[ROUTER, OTHER_SWITCH]),
            (OTHER_SWITCH, &[SWITCH]),
            (SERVER, &[OTHER_SWITCH]),
        ]);
        assert!(root_causes(&ring, &down(&[SERVER])).is_empty());
    }

    #[test]
    fn nothing_down_nothing_to_say() {
        assert!(root_causes(&chain(), &HashSet::new()).is_empty());
        assert!(root_causes(&HashMap::new(), &down(&[ROUTER])).is_empty());
    }
}
