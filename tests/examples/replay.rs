//! Replays one simulator seed and prints its whole trace.
//!
//! `cargo run -p grpc-sansio-tests --example replay -- SEED [--shrink]`
//!
//! With `--shrink`, a failing seed's fault schedule and workload are minimised (fewer
//! faults and calls, then smaller sizes, counts, times and durations) and the smaller
//! scenario is printed and replayed.

use grpc_sansio_tests::sim::Scenario;

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(seed) = args.next().and_then(|s| s.parse::<u64>().ok()) else {
        eprintln!("usage: replay SEED [--shrink]");
        std::process::exit(2);
    };
    let shrink = args.any(|a| a == "--shrink");
    let mut scenario = Scenario::from_seed(seed);
    if shrink && let Err(v) = scenario.run().1 {
        scenario = scenario.shrink(v.invariant);
    }
    println!("seed {seed}: {:?}", scenario.config);
    println!("seed {seed}: {} calls, faults:", scenario.workload.len());
    for (at, f) in &scenario.faults {
        println!("  +{:.3}s {f}", at.as_secs_f64());
    }
    if shrink {
        for c in &scenario.workload {
            println!("  call {c:?}");
        }
    }
    // Lines are printed as they happen, so a panic in the core still shows the trace
    // up to it.
    let mut sim = scenario.build();
    sim.echo = true;
    let result = sim.run_to_end();
    match result {
        Ok(()) => println!("seed {seed}: ok"),
        Err(v) => {
            println!(
                "seed {seed}: FAILED `{}` at +{:.6}s: {}",
                v.invariant,
                v.at.as_secs_f64(),
                v.detail
            );
            std::process::exit(1);
        }
    }
}
