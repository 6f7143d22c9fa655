//! Live migrations in flight, sharing the network.
//!
//! Every host has a NIC of `--nic-mbs` shared by every migration in and out of it at the
//! same time; a migration also never goes faster than its link (`--bandwidth-mbs`, or
//! `--inter-site-bandwidth-mbs` between sites). Its rate is the smallest of its link, its
//! source's NIC divided by the migrations the source has in flight, and the same at its
//! destination (each host's NIC split evenly among its migrations; a share one migration cannot
//! use is not handed to the others, so the model errs on the slow side). Whenever a migration
//! starts or ends, every migration at its two hosts is brought up to date at its old rate and
//! rescheduled at its new one. The pre-copy model ([`crate::migration::Precopy`]) runs on that
//! rate, with the VM dirtying memory at its own rate throughout.

use std::time::Duration;

use dvms_core::Time;

use crate::engine::{Ev, Owner, Sim};
use crate::migration::Precopy;
use crate::observe::Seen;
use crate::sched::{Call, Ended};

/// A migration in flight.
#[derive(Clone, Copy, Debug)]
pub(crate) struct InFlight {
    pub(crate) vm: u32,
    pub(crate) from: u32,
    pub(crate) to: u32,
    pub(crate) from_epoch: u32,
    pub(crate) to_epoch: u32,
    pub(crate) owner: Owner,
    started: Time,
    /// Progress as of `last`.
    copy: Precopy,
    last: Time,
    /// Current rate, MiB/s.
    rate: f64,
    /// Generation of the scheduled `MigrationStep` (unique in the run, so that an event
    /// left over from an earlier migration in the same slot never matches).
    generation: u64,
    /// Expected end at the current rate (the lease bound is extended when it moves later).
    expected_end: Time,
}

fn mib_s(mbs: f64) -> f64 {
    mbs * 1e6 / (1024.0 * 1024.0)
}

fn secs(s: f64) -> Duration {
    // Bounded inputs keep this far below the limit; clamp anyway (a month).
    Duration::from_secs_f64(s.clamp(0.0, 2.6e6))
}

impl Sim {
    /// The rate migration `m` gets now, MiB/s.
    fn share(&self, m: &InFlight) -> f64 {
        let (from, to) = (m.from as usize, m.to as usize);
        let link = self.net.bandwidth_mib_s(from, to);
        let nic = mib_s(self.cfg.net.nic_mbs);
        let k = |h: usize| f64::from((self.hosts[h].outgoing + self.hosts[h].incoming).max(1));
        link.min(nic / k(from)).min(nic / k(to))
    }

    /// Brings every migration at host `h` up to now at its current rate.
    fn settle_host(&mut self, h: usize) {
        let now = self.now;
        for i in 0..self.hosts[h].migs.len() {
            let slot = self.hosts[h].migs[i] as usize;
            if let Some(m) = self.migs.get_mut(slot).and_then(Option::as_mut) {
                if now > m.last {
                    m.copy
                        .progress(m.rate, now.saturating_since(m.last).as_secs_f64());
                    m.last = now;
                }
            }
        }
    }

    /// Gives migration `slot` its current share and schedules the end of its phase.
    fn reschedule(&mut self, slot: u32) {
        let Some(m) = self.migs.get(slot as usize).and_then(Option::as_ref) else {
            return;
        };
        let rate = self.share(m);
        let now = self.now;
        let Some(m) = self.migs.get_mut(slot as usize).and_then(Option::as_mut) else {
            return;
        };
        m.rate = rate;
        self.mig_generation += 1;
        let generation = self.mig_generation;
        m.generation = generation;
        let at = now + secs(m.copy.phase_left_s(rate));
        let end = now + secs(m.copy.remaining_s(rate));
        let later = end.saturating_since(m.expected_end);
        m.expected_end = end;
        if let Owner::Node { partition, .. } = m.owner {
            if !later.is_zero() {
                self.observe(Seen::Lengthened {
                    partition,
                    by: later,
                });
            }
        }
        self.schedule(at, Ev::MigrationStep { slot, generation });
    }

    fn reschedule_host(&mut self, h: usize) {
        let slots = self.hosts[h].migs.clone();
        for s in slots {
            self.reschedule(s);
        }
    }

    /// Starts migrating VM `v` to host `to`; returns its slot.
    pub(crate) fn start_migration(&mut self, v: usize, to: usize, owner: Owner) -> u32 {
        let from = self.vms[v].host as usize;
        self.settle_host(from);
        self.settle_host(to);
        let vm = &mut self.vms[v];
        vm.migrating = true;
        // Dirty rate: the VM's intensity of its nominal link bandwidth, scaled by its CPU use.
        let cpu_share = (vm.cpu as f64 / 1000.0).clamp(0.0, 1.0);
        let dirty = vm.dirty * self.net.bandwidth_mib_s(from, to) * cpu_share;
        let rec = InFlight {
            vm: v as u32,
            from: from as u32,
            to: to as u32,
            from_epoch: self.hosts[from].epoch,
            to_epoch: self.hosts[to].epoch,
            owner,
            started: self.now,
            copy: Precopy::new(vm.mem as f64, dirty),
            last: self.now,
            rate: 0.0,
            generation: 0,
            expected_end: self.now,
        };
        let slot = if let Some(s) = self.free_migs.pop() {
            self.migs[s as usize] = Some(rec);
            s
        } else {
            self.migs.push(Some(rec));
            u32::try_from(self.migs.len() - 1).unwrap_or(u32::MAX)
        };
        self.hosts[from].outgoing += 1;
        self.hosts[to].incoming += 1;
        self.hosts[from].migs.push(slot);
        self.hosts[to].migs.push(slot);
        self.metrics
            .hash
            .record(self.now, from, "migrate", &[v as u64, to as u64]);
        if self.cfg.trace {
            eprintln!(
                "{} n{from} (sim) migration of vm{v} to n{to} starts ({owner:?})",
                self.now
            );
        }
        self.reschedule_host(from);
        self.reschedule_host(to);
        slot
    }

    /// The end of a phase of migration `slot`.
    pub(crate) fn on_migration_step(&mut self, slot: u32, generation: u64) {
        let now = self.now;
        let Some(m) = self.migs.get_mut(slot as usize).and_then(Option::as_mut) else {
            return;
        };
        if m.generation != generation {
            return;
        }
        m.copy
            .progress(m.rate, now.saturating_since(m.last).as_secs_f64());
        m.last = now;
        if m.copy.phase_done(m.rate) {
            self.end_migration(slot);
        } else {
            self.reschedule(slot);
        }
    }

    /// Takes migration `slot` out of the network: its hosts' other migrations get its share.
    fn release(&mut self, slot: u32) -> Option<InFlight> {
        let m = self.migs.get_mut(slot as usize).and_then(Option::take)?;
        self.free_migs.push(slot);
        let (v, from, to) = (m.vm as usize, m.from as usize, m.to as usize);
        self.settle_host(from);
        self.settle_host(to);
        self.vms[v].migrating = false;
        self.hosts[from].outgoing -= 1;
        self.hosts[to].incoming -= 1;
        self.hosts[from].migs.retain(|&s| s != slot);
        self.hosts[to].migs.retain(|&s| s != slot);
        self.reschedule_host(from);
        self.reschedule_host(to);
        Some(m)
    }

    /// Aborts the migration `id` that host `h`'s node started, if it still runs (the VM stays
    /// on its source); returns its VM and destination.
    pub(crate) fn abort_node_migration(
        &mut self,
        h: usize,
        id: dvms_core::model::MigrationId,
    ) -> Option<(usize, usize)> {
        let slot = self.hosts.get(h)?.migs.iter().copied().find(|&s| {
            self.migs
                .get(s as usize)
                .and_then(Option::as_ref)
                .is_some_and(|m| {
                    m.from as usize == h && matches!(m.owner, Owner::Node { id: i, .. } if i == id)
                })
        })?;
        let m = self.release(slot)?;
        Some((m.vm as usize, m.to as usize))
    }

    fn end_migration(&mut self, slot: u32) {
        let Some(m) = self.release(slot) else {
            return;
        };
        let (v, from, to) = (m.vm as usize, m.from as usize, m.to as usize);
        let src_ok = self.hosts[from].up && self.hosts[from].epoch == m.from_epoch;
        let dst_ok = self.hosts[to].up && self.hosts[to].epoch == m.to_epoch;
        let ok = src_ok && dst_ok;
        if self.cfg.trace {
            eprintln!(
                "{} n{from} (sim) migration of vm{v} to n{to} ends, ok={ok}",
                self.now
            );
        }
        if ok {
            let took = self.now.saturating_since(m.started).as_secs_f64();
            self.metrics.migration_time.push(took);
            self.move_vm(v, to);
        } else {
            self.metrics.migrations_failed += 1;
        }
        self.metrics.hash.record(
            self.now,
            from,
            "migrated",
            &[v as u64, to as u64, u64::from(ok)],
        );
        self.drive(Call::MigrationEnded(Ended {
            owner: m.owner,
            from,
            ok,
            src_ok,
        }));
    }

    /// Moves VM `v` to host `to` and tells both hosts.
    fn move_vm(&mut self, v: usize, to: usize) {
        let from = self.vms[v].host as usize;
        let (cpu, mem) = (self.vms[v].cpu, self.vms[v].mem);
        let vu = v as u32;
        self.hosts[from].vms.retain(|&x| x != vu);
        self.hosts[to].vms.push(vu);
        self.hosts[from].cpu -= cpu;
        self.hosts[from].mem -= mem;
        self.hosts[to].cpu += cpu;
        self.hosts[to].mem += mem;
        self.vms[v].host = to as u32;
        self.metrics.migrations += 1;
        self.metrics.migrated_mib += mem;
        if self.net.inter_site(from, to) {
            self.metrics.inter_site_migrations += 1;
        }
        self.observe(Seen::Moved { vm: v, from, to });
        self.host_changed(from);
        self.host_changed(to);
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Scheduler, SimConfig, Workload};
    use crate::engine::{Owner, Sim};
    use crate::workload::{HostInit, Setup, VmInit};

    /// Idle 1 GiB VMs on host 0, moved to hosts 1.. at once; returns each migration's time.
    fn migrate_at_once(targets: &[usize], nic_mbs: f64) -> Vec<f64> {
        let hosts = (0..4)
            .map(|i| HostInit {
                name: format!("h{i}"),
                cpu_milli: 8000,
                mem_mib: 16384,
                site: 0,
            })
            .collect();
        let vms = (0..targets.len())
            .map(|j| VmInit {
                name: format!("v{j}"),
                host: 0,
                cpu_milli: 0,
                mem_mib: 1024,
            })
            .collect();
        let mut cfg = SimConfig {
            scheduler: Scheduler::None,
            workload: Workload::Scripted,
            ..SimConfig::default()
        };
        // 1 GiB at 2^20 B per MB makes the arithmetic exact: 1024 MiB at 128 MiB/s is 8 s.
        cfg.net.bandwidth_mbs = 1e6;
        cfg.net.nic_mbs = nic_mbs;
        let setup = Setup {
            hosts,
            vms,
            sites: vec![],
        };
        let mut sim = Sim::new(cfg, setup).unwrap();
        for (v, &to) in targets.iter().enumerate() {
            sim.start_migration(v, to, Owner::Run(u32::MAX));
        }
        sim.run();
        sim.metrics.migration_time.clone()
    }

    const MIB_128: f64 = 128.0 * 1024.0 * 1024.0 / 1e6;

    #[test]
    fn migrations_out_of_one_host_share_its_nic() {
        let one = migrate_at_once(&[1], MIB_128);
        assert_eq!(one.len(), 1);
        assert!((one[0] - 8.0).abs() < 1e-3, "{one:?}");
        // Two at once from one host: each gets half of the source's NIC.
        let two = migrate_at_once(&[1, 2], MIB_128);
        assert!(two.iter().all(|t| (t - 16.0).abs() < 1e-3), "{two:?}");
        // Three: the same, a third each.
        let three = migrate_at_once(&[1, 2, 3], MIB_128);
        assert!(three.iter().all(|t| (t - 24.0).abs() < 1e-3), "{three:?}");
        // A ten times faster NIC (VMPlaceS's 1,250 MB/s) takes a tenth of the time.
        let fast = migrate_at_once(&[1, 2], 10.0 * MIB_128);
        assert!(fast.iter().all(|t| (t - 1.6).abs() < 1e-3), "{fast:?}");
    }
}
