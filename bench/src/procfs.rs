//! Process sampling from /proc: pure parsers for the text of `/proc/PID/status`,
//! `/proc/PID/smaps_rollup` and `/proc/PID/stat`, and readers that sum them over a process tree.

use std::collections::HashMap;
use std::fs;
use std::process::Command;

use anyhow::{Context, Result, anyhow};

/// Ticks per second assumed when `getconf CLK_TCK` cannot be run.
const DEFAULT_CLK_TCK: u64 = 100;

/// Memory figures from `/proc/PID/status`, in kB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusMem {
    pub rss_kb: u64,
    pub hwm_kb: u64,
}

/// The fields of `/proc/PID/stat` this benchmark uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub ppid: u32,
    /// utime + stime, in clock ticks.
    pub cpu_ticks: u64,
}

/// One reading of a process (or the sum over a process tree).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sample {
    pub rss_kb: u64,
    pub hwm_kb: u64,
    pub pss_kb: u64,
    pub cpu_ticks: u64,
    /// Time on CPU in nanoseconds, summed over the live threads' `schedstat`; a finer clock
    /// than `cpu_ticks`, but it misses threads that have exited.
    pub cpu_ns: u64,
    /// How many processes were summed.
    pub processes: usize,
}

impl Sample {
    fn add(&mut self, other: Sample) {
        self.rss_kb += other.rss_kb;
        self.hwm_kb += other.hwm_kb;
        self.pss_kb += other.pss_kb;
        self.cpu_ticks += other.cpu_ticks;
        self.cpu_ns += other.cpu_ns;
        self.processes += other.processes;
    }
}

/// Reads `VmRSS` and `VmHWM` (kB) from the text of `/proc/PID/status`.
pub fn parse_status(text: &str) -> Result<StatusMem> {
    Ok(StatusMem {
        rss_kb: kb_field(text, "VmRSS:")?,
        hwm_kb: kb_field(text, "VmHWM:")?,
    })
}

/// Reads `Pss` (kB) from the text of `/proc/PID/smaps_rollup`.
pub fn parse_smaps_rollup_pss(text: &str) -> Result<u64> {
    kb_field(text, "Pss:")
}

/// Reads the parent PID and utime + stime from the text of `/proc/PID/stat`. The command name
/// (field 2) may contain spaces and parentheses, so fields are counted after the last `)`.
pub fn parse_stat(text: &str) -> Result<Stat> {
    let close = text
        .rfind(')')
        .ok_or_else(|| anyhow!("no ')' in stat line"))?;
    let rest: Vec<&str> = text[close + 1..].split_whitespace().collect();
    // rest[0] is field 3 (state): field N is rest[N - 3].
    let field = |n: usize| -> Result<u64> {
        let raw = rest
            .get(n - 3)
            .ok_or_else(|| anyhow!("stat line has no field {n}"))?;
        raw.parse::<u64>()
            .with_context(|| format!("stat field {n} is not a number: {raw:?}"))
    };
    let ppid = u32::try_from(field(4)?).context("ppid out of range")?;
    Ok(Stat {
        ppid,
        cpu_ticks: field(14)? + field(15)?,
    })
}

/// Nanoseconds on CPU: the first field of the text of `/proc/PID/task/TID/schedstat`.
pub fn parse_schedstat(text: &str) -> Result<u64> {
    let first = text
        .split_whitespace()
        .next()
        .ok_or_else(|| anyhow!("empty schedstat"))?;
    first
        .parse::<u64>()
        .with_context(|| format!("schedstat field is not a number: {first:?}"))
}

/// Nanoseconds on CPU of the calling thread (`/proc/thread-self/schedstat`).
pub fn this_thread_cpu_ns() -> Result<u64> {
    let path = "/proc/thread-self/schedstat";
    let text = fs::read_to_string(path).with_context(|| format!("cannot read {path}"))?;
    parse_schedstat(&text).with_context(|| path.to_string())
}

/// Nanoseconds on CPU over the live threads of `pid`.
fn threads_cpu_ns(pid: u32) -> Result<u64> {
    let dir = format!("/proc/{pid}/task");
    let entries = fs::read_dir(&dir).with_context(|| format!("cannot list {dir}"))?;
    let mut total = 0;
    for entry in entries.flatten() {
        // A thread may exit between listing and reading.
        if let Ok(text) = fs::read_to_string(entry.path().join("schedstat")) {
            total += parse_schedstat(&text)?;
        }
    }
    Ok(total)
}

/// The value of a `Key:   123 kB` line.
fn kb_field(text: &str, key: &str) -> Result<u64> {
    let line = text
        .lines()
        .find(|line| line.starts_with(key))
        .ok_or_else(|| anyhow!("no {key} line"))?;
    let value = line[key.len()..]
        .split_whitespace()
        .next()
        .ok_or_else(|| anyhow!("{key} has no value"))?;
    value
        .parse::<u64>()
        .with_context(|| format!("{key} value is not a number: {value:?}"))
}

/// Reads one process.
pub fn sample_pid(pid: u32) -> Result<Sample> {
    let read = |file: &str| {
        fs::read_to_string(format!("/proc/{pid}/{file}"))
            .with_context(|| format!("cannot read /proc/{pid}/{file} (has the process exited?)"))
    };
    let status = parse_status(&read("status")?).with_context(|| format!("/proc/{pid}/status"))?;
    let pss_kb = parse_smaps_rollup_pss(&read("smaps_rollup")?)
        .with_context(|| format!("/proc/{pid}/smaps_rollup"))?;
    let stat = parse_stat(&read("stat")?).with_context(|| format!("/proc/{pid}/stat"))?;
    Ok(Sample {
        rss_kb: status.rss_kb,
        hwm_kb: status.hwm_kb,
        pss_kb,
        cpu_ticks: stat.cpu_ticks,
        cpu_ns: threads_cpu_ns(pid)?,
        processes: 1,
    })
}

/// Resets the peak resident set size (`VmHWM`) of `pid` to its current RSS, by writing `5` to
/// `/proc/PID/clear_refs` (Linux 4.0+; the caller must own the process). Lets a benchmark report
/// the peak of one phase rather than since the process started.
pub fn reset_peak_rss(pid: u32) -> Result<()> {
    let path = format!("/proc/{pid}/clear_refs");
    fs::write(&path, "5").with_context(|| format!("cannot write {path}"))
}

/// Reads `root` and every live descendant, summed. The root must be readable; a descendant
/// that exits between listing and reading is skipped.
pub fn sample_tree(root: u32) -> Result<Sample> {
    let mut total = sample_pid(root)?;
    for pid in descendants(root) {
        if let Ok(sample) = sample_pid(pid) {
            total.add(sample);
        }
    }
    Ok(total)
}

/// Every live descendant of `root` (children, grandchildren, ...), found through the ppid
/// field of /proc/*/stat.
pub fn descendants(root: u32) -> Vec<u32> {
    let parents = parent_map();
    descendants_in(root, &parents)
}

/// The descendants of `root` in a pid -> ppid map, breadth first.
fn descendants_in(root: u32, parents: &HashMap<u32, u32>) -> Vec<u32> {
    let mut found = Vec::new();
    let mut frontier = vec![root];
    // Bounded: each round moves one generation down and a pid is added at most once.
    while let Some(parent) = frontier.pop() {
        for (&pid, &ppid) in parents {
            if ppid == parent && pid != root && !found.contains(&pid) {
                found.push(pid);
                frontier.push(pid);
            }
        }
    }
    found.sort_unstable();
    found
}

/// pid -> ppid for every process in /proc that can be read.
fn parent_map() -> HashMap<u32, u32> {
    let mut parents = HashMap::new();
    let Ok(entries) = fs::read_dir("/proc") else {
        return parents;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if let Ok(text) = fs::read_to_string(entry.path().join("stat"))
            && let Ok(stat) = parse_stat(&text)
        {
            parents.insert(pid, stat.ppid);
        }
    }
    parents
}

/// The command name of a live process (`/proc/PID/comm`), if it can be read.
pub fn comm(pid: u32) -> Option<String> {
    fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim().to_string())
}

/// Clock ticks per second from `getconf CLK_TCK`, else 100.
pub fn clock_ticks_per_second() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse::<u64>().ok())
        .filter(|&ticks| ticks > 0)
        .unwrap_or(DEFAULT_CLK_TCK)
}

/// Total memory in kB from the text of `/proc/meminfo`.
pub fn parse_meminfo_total_kb(text: &str) -> Result<u64> {
    kb_field(text, "MemTotal:")
}

/// The first `model name` in the text of `/proc/cpuinfo`.
pub fn parse_cpu_model(text: &str) -> Option<String> {
    text.lines()
        .find(|line| line.starts_with("model name"))
        .and_then(|line| line.split_once(':'))
        .map(|(_, model)| model.trim().to_string())
}

/// The interface of the default route from the text of `/proc/net/route`.
pub fn parse_default_route_iface(text: &str) -> Option<String> {
    text.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.as_slice() {
            [iface, "00000000", ..] => Some((*iface).to_string()),
            _ => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Name:\tsteward-agent\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t4242\n\
        Pid:\t4242\nPPid:\t4200\nVmPeak:\t   12000 kB\nVmSize:\t   11900 kB\nVmLck:\t       0 kB\n\
        VmHWM:\t    3500 kB\nVmRSS:\t    3120 kB\nRssAnon:\t     900 kB\nRssFile:\t    2220 kB\n\
        Threads:\t1\n";

    const SMAPS_ROLLUP: &str = "55693707c000-7ffe7dce5000 ---p 00000000 00:00 0                          [rollup]\n\
        Rss:                3120 kB\nPss:                2711 kB\nPss_Dirty:           900 kB\n\
        Pss_Anon:            900 kB\nPss_File:           1811 kB\nShared_Clean:        600 kB\n";

    const STAT: &str = "4242 (steward-agent) S 4200 4242 4200 0 -1 4194560 1234 0 0 0 \
        37 15 0 0 20 0 1 0 98765 12185600 780 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";

    #[test]
    fn status_gives_rss_and_hwm() {
        let mem = parse_status(STATUS).unwrap();
        assert_eq!(
            mem,
            StatusMem {
                rss_kb: 3120,
                hwm_kb: 3500
            }
        );
    }

    #[test]
    fn status_without_vmrss_is_an_error() {
        // Kernel threads and zombies have no Vm* lines.
        let error = parse_status("Name:\tkworker/0:1\nState:\tI (idle)\n").unwrap_err();
        assert!(error.to_string().contains("VmRSS"), "{error}");
    }

    #[test]
    fn smaps_rollup_gives_pss_not_pss_dirty() {
        assert_eq!(parse_smaps_rollup_pss(SMAPS_ROLLUP).unwrap(), 2711);
    }

    #[test]
    fn stat_gives_ppid_and_utime_plus_stime() {
        let stat = parse_stat(STAT).unwrap();
        assert_eq!(
            stat,
            Stat {
                ppid: 4200,
                cpu_ticks: 52
            }
        );
    }

    #[test]
    fn stat_survives_spaces_and_parens_in_the_name() {
        let text = "77 (zabbix_agentd: (listener) #1) S 70 70 1 0 -1 4194624 10 0 0 0 5 7 0 0 20 0 1 0 1 1 1 0\n";
        let stat = parse_stat(text).unwrap();
        assert_eq!(stat.ppid, 70);
        assert_eq!(stat.cpu_ticks, 12);
    }

    #[test]
    fn schedstat_gives_nanoseconds_on_cpu() {
        assert_eq!(parse_schedstat("12345678 901234 56\n").unwrap(), 12_345_678);
        assert!(parse_schedstat("").is_err());
        assert!(parse_schedstat("x 1 2").is_err());
    }

    #[test]
    fn truncated_stat_is_an_error() {
        assert!(parse_stat("1 (init) S 0 1").is_err());
        assert!(parse_stat("garbage").is_err());
    }

    #[test]
    fn descendants_follow_every_generation_but_not_siblings() {
        let parents: HashMap<u32, u32> = [(10, 1), (11, 10), (12, 10), (13, 12), (20, 1), (21, 20)]
            .into_iter()
            .collect();
        assert_eq!(descendants_in(10, &parents), vec![11, 12, 13]);
        assert_eq!(descendants_in(13, &parents), Vec::<u32>::new());
    }

    #[test]
    fn meminfo_cpuinfo_and_route() {
        let meminfo = "MemTotal:       24576000 kB\nMemFree:        22000000 kB\n";
        assert_eq!(parse_meminfo_total_kb(meminfo).unwrap(), 24_576_000);
        let cpuinfo = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\n";
        assert_eq!(parse_cpu_model(cpuinfo).as_deref(), Some("AMD EPYC 7B13"));
        let route = "Iface\tDestination\tGateway \tFlags\n\
            eth0\t000200C0\t00000000\t0001\n\
            ens5\t00000000\t010200C0\t0003\n";
        assert_eq!(parse_default_route_iface(route).as_deref(), Some("ens5"));
        assert_eq!(parse_default_route_iface("Iface\tDestination\n"), None);
    }

    #[test]
    fn sample_of_this_process_is_plausible() {
        let sample = sample_pid(std::process::id()).unwrap();
        assert!(sample.rss_kb > 0 && sample.pss_kb > 0);
        assert!(sample.hwm_kb >= sample.rss_kb);
        assert!(sample.cpu_ns > 0);
        assert_eq!(sample.processes, 1);
    }

    #[test]
    fn peak_rss_of_this_process_can_be_reset() {
        let pid = std::process::id();
        reset_peak_rss(pid).unwrap();
        let sample = sample_pid(pid).unwrap();
        // Right after the reset the peak is (about) the current RSS.
        assert!(sample.hwm_kb >= sample.rss_kb);
        assert!(sample.hwm_kb <= sample.rss_kb + 4096, "{sample:?}");
    }
}
