//! CPU, load, memory and uptime through sysinfo, refreshing only CPU usage and memory.
//!
//! Windows has no load average (sysinfo says it is unsupported there): the load fields are 0.

use sysinfo::{CpuRefreshKind, MemoryRefreshKind, RefreshKind, System};

use steward_shared::v1::{Cpu, Memory};

#[derive(Debug)]
pub(super) struct SystemSampler {
    system: System,
}

impl SystemSampler {
    /// Fails only on a platform sysinfo does not support.
    pub(super) fn new() -> Result<SystemSampler, sysinfo::Error> {
        let kinds = RefreshKind::nothing()
            .with_cpu(CpuRefreshKind::nothing().with_usage())
            .with_memory(MemoryRefreshKind::nothing().with_ram().with_swap());
        Ok(SystemSampler {
            system: System::new_with_specifics(kinds)?,
        })
    }

    pub(super) fn sample(&mut self) -> (Cpu, Memory, u64) {
        self.system.refresh_cpu_usage();
        self.system
            .refresh_memory_specifics(MemoryRefreshKind::nothing().with_ram().with_swap());
        let load = System::load_average().unwrap_or(sysinfo::LoadAvg {
            one: 0.0,
            five: 0.0,
            fifteen: 0.0,
        });
        let cpu = Cpu {
            total_pct: clamp_pct(self.system.global_cpu_usage()),
            per_core_pct: self
                .system
                .cpus()
                .iter()
                .map(|c| clamp_pct(c.usage()))
                .collect(),
            load1: load.one as f32,
            load5: load.five as f32,
            load15: load.fifteen as f32,
        };
        let memory = Memory {
            total: self.system.total_memory(),
            used: self.system.used_memory(),
            available: self.system.available_memory(),
            free: self.system.free_memory(),
            swap_total: self.system.total_swap(),
            swap_used: self.system.used_swap(),
        };
        (cpu, memory, System::uptime().unwrap_or(0))
    }
}

fn clamp_pct(value: f32) -> f32 {
    if value.is_finite() {
        value.clamp(0.0, 100.0)
    } else {
        0.0
    }
}
