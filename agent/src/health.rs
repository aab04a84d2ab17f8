//! The health report `motcua run` publishes every
//! `telemetry.health_interval` (format: `motcua_protocol::health`): the
//! box (sysinfo: CPU, memory, load, uptime, temperature; `statvfs` for the
//! state directory's disk) and the journal (backlog, its age, receipts).

use std::time::Instant;

use motcua_protocol::health::HEALTH_VERSION;
use motcua_protocol::{DeviceId, Health, UnitCode, UtcTime};
use sysinfo::{Components, MemoryRefreshKind, System};

use motcua_counter::clock::Clock;
use motcua_counter::downstream::Applied;
use motcua_counter::state_dir::StateDir;
use motcua_counter::store::StoreError;
use motcua_counter::store::read::Reader;

/// Keeps what a report needs between two reports: sysinfo measures CPU use
/// as the difference between two readings.
pub struct Probe {
    device: DeviceId,
    unit: UnitCode,
    state_dir: StateDir,
    sys: System,
    components: Components,
    started: Instant,
}

impl Probe {
    /// A probe for `device` of `unit` whose store lives in `state_dir`.
    pub fn new(device: DeviceId, unit: UnitCode, state_dir: StateDir) -> Probe {
        let mut sys = System::new();
        // The first reading: the next report's CPU use is measured from it.
        sys.refresh_cpu_usage();
        Probe {
            device,
            unit,
            state_dir,
            sys,
            components: Components::new_with_refreshed_list(),
            started: Instant::now(),
        }
    }

    /// The report as of now. `last_receipt_at` is when sync last accepted
    /// a receipt (device time).
    pub fn report(
        &mut self,
        clock: &dyn Clock,
        reader: &Reader,
        last_receipt_at: Option<UtcTime>,
        down: Applied,
        refused_down: u64,
    ) -> Result<Health, StoreError> {
        let now = clock.now();
        let at = UtcTime::new(now.at);
        let day = motcua_counter::store::reference::format_day(
            now.at.to_offset(motcua_counter::domain::VIETNAM).date(),
        );
        let counts = reader.counts(&day, &at)?;
        let oldest_unsynced_s = counts
            .oldest_unsynced_at
            .map(|t| (now.at - t.get()).whole_seconds().max(0) as u64);

        self.sys.refresh_cpu_usage();
        self.sys
            .refresh_memory_specifics(MemoryRefreshKind::nothing().with_ram());
        self.components.refresh(true);
        let temperature_c = self
            .components
            .iter()
            .filter_map(|c| c.temperature())
            .filter(|t| t.is_finite())
            .reduce(f32::max);
        let load = System::load_average();
        let (disk_free_bytes, disk_total_bytes) =
            motcua_counter::store::disk::space(self.state_dir.path()).unwrap_or((0, 0));
        Ok(Health {
            v: HEALTH_VERSION,
            device: self.device.clone(),
            unit: self.unit.clone(),
            at,
            clock_synced: now.synced(),
            clock: Some(now.quality.as_str().to_owned()),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            uptime_s: System::uptime(),
            agent_uptime_s: self.started.elapsed().as_secs(),
            cpu_percent: self.sys.global_cpu_usage().clamp(0.0, 100.0),
            load: [load.one as f32, load.five as f32, load.fifteen as f32],
            mem_used_bytes: self.sys.used_memory(),
            mem_total_bytes: self.sys.total_memory(),
            disk_free_bytes,
            disk_total_bytes,
            temperature_c,
            unsynced: counts.unsynced,
            oldest_unsynced_s,
            last_receipt_at,
            receipted_through: counts.synced_through.min(counts.head_seq),
            head_seq: counts.head_seq,
            catalogue_version: down.catalogue,
            status_seq: down.status_seq,
            updates_through: down.updates_through,
            update_conflicts: down.conflicts,
            settings_seq: down.settings_seq,
            refused_down,
        })
    }
}

/// This moment of this boot (its id, the time since boot), which a lesson
/// of the DC's time kept on disk is counted on from; `None` where the
/// kernel does not say.
pub fn boot() -> Option<motcua_counter::clock::Boot> {
    let id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let id = id.trim();
    // /proc/uptime: seconds since boot, CLOCK_BOOTTIME, to the hundredth.
    let uptime = std::fs::read_to_string("/proc/uptime").ok()?;
    let secs: f64 = uptime.split_whitespace().next()?.parse().ok()?;
    (!id.is_empty() && secs.is_finite() && secs >= 0.0).then(|| motcua_counter::clock::Boot {
        id: id.to_owned(),
        uptime_ms: (secs * 1000.0) as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_of_a_fresh_store_reads_this_machine() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = StateDir::new(dir.path());
        let db = state.db();
        drop(motcua_counter::store::schema::open(&db).expect("creates the store"));
        let reader = Reader::open(&db).expect("opens");
        let device: DeviceId = "H49.12.3-q01".parse().expect("valid");
        let mut probe = Probe::new(device.clone(), "H49.12.3".parse().expect("valid"), state);
        let clock = motcua_counter::clock::ManualClock::new(
            time::macros::datetime!(2026-11-27 03:00 UTC),
            false,
        );
        let h = probe
            .report(&clock, &reader, None, Applied::default(), 0)
            .expect("report");
        assert_eq!(h.device, device);
        assert_eq!(h.at.to_string(), "2026-11-27T03:00:00.000Z");
        assert!(!h.clock_synced);
        assert_eq!((h.unsynced, h.head_seq, h.oldest_unsynced_s), (0, 0, None));
        assert!(h.mem_total_bytes > 0 && h.mem_used_bytes <= h.mem_total_bytes);
        assert!(h.disk_total_bytes > 0 && h.disk_free_bytes <= h.disk_total_bytes);
        assert!(h.uptime_s > 0);
        // What the receiver reads back is what was sent.
        assert_eq!(Health::parse(&h.to_bytes(), &device), Ok(h));
    }
}
