//! Seeded runs: a scenario (configuration, workload, fault schedule) drawn from one
//! seed, running it, and shrinking the fault schedule of a failing one.

use std::time::Duration;

use super::fault::{Scheduled, random_plan};
use super::workload::{CallSpec, random_workload};
use super::world::{Sim, SimConfig, Violation};
use crate::rng::SimRng;

/// Everything one run does, drawn from its seed (or written by hand).
#[derive(Clone, Debug)]
pub struct Scenario {
    /// The world.
    pub config: SimConfig,
    /// The calls.
    pub workload: Vec<CallSpec>,
    /// The faults, by time since the start.
    pub faults: Vec<Scheduled>,
    /// When the faults stop (the network heals and recovery is measured from).
    pub heal_at: Duration,
}

/// Calls start within this window.
pub const WORKLOAD_WINDOW: Duration = Duration::from_secs(24);
/// Faults happen within this window.
pub const FAULT_WINDOW: Duration = Duration::from_secs(20);
/// The smallest window the exploration draws (see [`Scenario::from_seed`]). Windows
/// under 16 KiB used to deadlock streams opened before the SETTINGS ACK (seed 22,
/// fixed in the core); they are explored since.
pub const SMALLEST_WINDOW: u32 = 1024;
/// The faults stop here.
pub const HEAL_AT: Duration = Duration::from_secs(25);

impl Scenario {
    /// The scenario of `seed`: the default [`SimConfig`] with 1–3 channels and 1–4
    /// hosts, sometimes a low stream limit, small fixed windows or a short
    /// `max_connection_age` or a server ping policy stricter than the clients'
    /// keepalive, 5–40 random calls and up to 4, 8 or 16 random faults, healed at 25 s. The workload and the faults come from separate
    /// streams of the seed, so shrinking one leaves the other alone.
    pub fn from_seed(seed: u64) -> Scenario {
        let mut config = SimConfig::new(seed);
        let mut shape = SimRng::new(seed ^ 0x7368_6170_6500_0000);
        config.channels = shape.range(1, 3);
        config.hosts = shape.range(1, 4);
        let max_faults = [4, 8, 16][shape.range(0, 2)];
        if shape.percent(25) {
            config.max_concurrent_streams = Some(shape.range(1, 4) as u32);
        }
        if shape.percent(25) {
            // Windows below 16 KiB deadlock streams opened before our SETTINGS is
            // acknowledged (core bug, see `regression_small_window_stream_stalls` in
            // tests/tests/sim.rs); explore from 16 KiB until it is fixed.
            config.window = Some(shape.range(SMALLEST_WINDOW as usize, 70_000) as u32);
        }
        if shape.percent(15) {
            config.ping_min_time = Duration::from_secs(shape.range(11, 40) as u64);
        }
        if shape.percent(20) {
            config.max_connection_age = Some(Duration::from_millis(shape.range(500, 8000) as u64));
        }
        let mut wl = SimRng::new(seed ^ 0x776f_726b_6c6f_6164);
        let mut fr = SimRng::new(seed ^ 0x6661_756c_7473_0000);
        let n = wl.range(5, 40);
        let workload = random_workload(&mut wl, config.channels, n, WORKLOAD_WINDOW);
        let faults = random_plan(&mut fr, config.hosts, max_faults, FAULT_WINDOW);
        Scenario {
            config,
            workload,
            faults,
            heal_at: HEAL_AT,
        }
    }

    /// Builds the world with everything scheduled, not yet run.
    pub fn build(&self) -> Sim {
        let mut sim = Sim::new(self.config.clone());
        for c in &self.workload {
            sim.schedule_call(c.clone());
        }
        for (at, f) in &self.faults {
            sim.schedule_fault(*at, f.clone());
        }
        sim.schedule_heal(self.heal_at);
        sim
    }

    /// Runs the scenario to its end; returns the world and the first violation.
    pub fn run(&self) -> (Sim, Result<(), Violation>) {
        let mut sim = self.build();
        let result = sim.run_to_end();
        (sim, result)
    }

    /// A smaller scenario that still breaks the same invariant: faults, then calls,
    /// are dropped one at a time while the failure persists.
    pub fn shrink(&self, invariant: &str) -> Scenario {
        let fails = |s: &Scenario| matches!(s.run().1, Err(v) if v.invariant == invariant);
        let mut best = self.clone();
        let mut i = 0;
        while i < best.faults.len() {
            let mut t = best.clone();
            t.faults.remove(i);
            if fails(&t) {
                best = t;
            } else {
                i += 1;
            }
        }
        let mut i = 0;
        while i < best.workload.len() {
            let mut t = best.clone();
            t.workload.remove(i);
            if fails(&t) {
                best = t;
            } else {
                i += 1;
            }
        }
        best
    }
}

/// Runs the scenario of `seed`. A panic (in the core or the simulator) is caught and
/// reported as a violation of "no panic" (replay the seed for its trace).
pub fn run_seed(seed: u64) -> Result<(), Violation> {
    let run = std::panic::catch_unwind(|| Scenario::from_seed(seed).run().1);
    match run {
        Ok(result) => result,
        Err(payload) => {
            let detail = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "a panic".to_owned());
            Err(Violation {
                seed,
                at: Duration::ZERO,
                invariant: "no panic",
                detail,
                trace: Vec::new(),
            })
        }
    }
}
