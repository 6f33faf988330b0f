//! A deterministic simulator for whole gRPC deployments built from the sans-IO core:
//! several client [`Channel`](grpc_sansio::channel::client_channel::Channel)s, several
//! server hosts running [`ServerTransport`](grpc_sansio::grpc::transport::ServerTransport)s,
//! a network of byte-stream links between them, a resolver, faults, and invariants
//! checked after every step. Single thread, no runtime, no real clock: one seed gives
//! one run, byte for byte.
//!
//! # Model
//!
//! - **Virtual clock.** [`Sim::now`] only moves in [`Sim::step`], to the earliest of:
//!   the next scheduled event (ordered queue keyed by time and insertion number), the
//!   channels' and servers' `poll_timeout`, or the arrival of the next segment on a
//!   link whose receiver wants to read. Everything due then happens, the world
//!   settles (actions, bytes, handlers, client calls until nothing moves), and the
//!   per-step invariants run.
//! - **Hosts** `10.0.0.{i+1}:443` run a [`Service`]: by default [`EchoService`]
//!   (`/sim.Echo/{Unary, ClientStream, ServerStream, Bidi}`; a request's `x-delay-ms`
//!   metadata delays the handler's status), or your own (below). What a service
//!   queues is written as `send_capacity` allows.
//! - **Links**: one per accepted connection, with a latency and a bandwidth drawn per
//!   link; each direction is a queue of segments stamped with their arrival time
//!   (`depart = max(now, link free) + len / bandwidth`, `arrive = depart + latency`),
//!   buffering at most [`SimConfig::link_buffer`] bytes before the sender is no longer
//!   polled (back-pressure). Writes are split into random chunks (partial reads).
//!   A receiver that does not `wants_read` leaves segments waiting (flow control).
//! - **Resolver**: the channels use `dns:///svc.sim:443`; the simulator answers
//!   `Action::Resolve`/`ResolveNow` a few ms later and pushes changes (resolver faults).
//! - **Servers' settings** can be varied per run ([`SimConfig`]): a low
//!   SETTINGS_MAX_CONCURRENT_STREAMS, small fixed windows, a short
//!   `max_connection_age` (periodic graceful GOAWAYs), a ping policy stricter than the
//!   clients' keepalive; [`Scenario::from_seed`] draws them from the seed.
//! - **Randomness**: one seed ([`SimConfig::seed`]) split into independent SplitMix64
//!   streams for the network (latencies, chunking, connect delays), the workload and
//!   the fault schedule; the channels' and connections' own seeds come from it too.
//!
//! # Faults ([`Fault`])
//!
//! Connection refused, connect black-hole and mute server (accepts, never speaks: the
//! handshake must time out), each per host for a while; reset
//! mid-stream, half-open (server vanishes, bytes dropped both ways, no EOF: only the
//! client's keepalive can tell), server restart, graceful GOAWAY (`shutdown`),
//! immediate GOAWAY (`close` with NO_ERROR or ENHANCE_YOUR_CALM), slow reader (the
//! host's handlers stop reading for a while: windows fill), slow client (a channel's
//! application stops taking responses: its windows fill), one-byte writes and reads
//! for the next N bytes of a link, resolver answering a new, empty or erroring list,
//! and clock jumps (time leaps; timers fire late).
//!
//! # Invariants (a [`Violation`] names the first broken one, with the seed and trace)
//!
//! After every event: a call's events end with exactly one status; responses arrive
//! in order, once and intact (each message carries the call's tag, a sequence number
//! and a checksum — [`message`]); servers receive requests in order and intact; an OK
//! call got every response (echoes of every request it sent); a cancelled call ends
//! CANCELLED; subchannel transitions are legal
//! ([`is_legal_subchannel_transition`](grpc_sansio::channel::state::ConnectivityState::is_legal_subchannel_transition),
//! from the trace); a subchannel's TRANSIENT_FAILURE lasts within the backoff policy
//! (`base × (1 − jitter)` to `max × (1 + jitter)`, the upper bound waived across clock
//! jumps). After every step: no open call is more than [`SimConfig::granularity`] past
//! its deadline (or past the clock jump that skipped it); each link buffers at most
//! `link_buffer + 2 × max_write_batch` bytes per direction; each end of each
//! connection, client and server, holds at most `max_queued_control_frames + 16`
//! control frames, at most its connection receive window plus
//! [`SimConfig::memory_slack`] of received-unconsumed and unparsed bytes, and a
//! bounded send queue per stream; **flow control**, on both ends: the connection
//! windows stay within 0 and what was advertised, a stream's send window goes below
//! zero only by what a SETTINGS_INITIAL_WINDOW_SIZE decrease allows (RFC 9113 §6.9.2:
//! current initial window − largest ever), a receive window stays within that floor
//! and its limit plus granted credit (≤ 2^31−1), and a sender's view of a window never
//! exceeds its receiver's. At the end: every call ended, and
//! after the heal each channel served a wait-for-ready call within
//! [`SimConfig::recovery_bound`].
//!
//! # Driving your own workload
//!
//! ```
//! use std::time::Duration;
//! use grpc_sansio_tests::sim::{CallKind, CallSpec, Fault, Sim, SimConfig};
//!
//! let mut sim = Sim::new(SimConfig::new(42));
//! // A bidi call with three messages 10 ms apart, on channel 0, at t = 0.
//! let mut call = CallSpec::unary(0, Duration::ZERO, 100);
//! call.kind = CallKind::Bidi;
//! call.requests = vec![10, 2000, 70_000];
//! call.gap = Duration::from_millis(10);
//! call.deadline = Some(Duration::from_secs(5));
//! sim.schedule_call(call);
//! sim.schedule_fault(Duration::from_millis(15), Fault::Reset { pick: 0 });
//! sim.schedule_heal(Duration::from_secs(1));
//! let result = sim.run_to_end();
//! assert!(result.is_ok(), "{}", result.unwrap_err());
//! println!("{}", sim.trace().join("\n"));
//! ```
//!
//! Or take a whole random [`Scenario`] from a seed, edit it, and
//! [`run`](Scenario::run) it; [`Scenario::shrink`] minimises a failing one (drops
//! faults and calls, then halves sizes, counts, times and durations).
//!
//! # Your own service
//!
//! Implement [`Service`] and put it behind the hosts with [`SimConfig::service`] (or
//! [`Sim::set_service`]). It runs single-threaded under virtual time: it reacts to
//! each [`CallEvent`] by queuing messages and a status on the [`ServiceCall`], and
//! answers later with [`finish_after`](ServiceCall::finish_after). It may report a
//! broken expectation of its own with [`ServiceCall::violation`], which fails the run
//! with the seed and trace like any invariant. Calls to it name their method in
//! [`CallSpec::method`]; their responses are kept for [`Sim::responses`] instead of
//! being checked as echoes. The recovery probes after the heal call
//! `/sim.Echo/Unary`, so hand what you do not serve to [`EchoService`].
//!
//! ```
//! use std::time::Duration;
//! use bytes::Bytes;
//! use grpc_sansio::grpc::code::Code;
//! use grpc_sansio::grpc::status::Status;
//! use grpc_sansio_tests::sim::{
//!     CallEvent, CallSpec, EchoService, Service, ServiceCall, ServiceFactory, Sim, SimConfig,
//! };
//!
//! /// Answers `/demo.Greeter/Hello` with "hello", after 20 ms of virtual time.
//! struct Greeter;
//!
//! impl Service for Greeter {
//!     fn on_event(&mut self, call: &mut ServiceCall<'_>, event: CallEvent<'_>) {
//!         if let CallEvent::Started(head) = &event
//!             && &head.path[..] == b"/demo.Greeter/Hello"
//!         {
//!             call.set_state(());
//!         }
//!         if call.state::<()>().is_none() {
//!             return EchoService.on_event(call, event);
//!         }
//!         if let CallEvent::HalfClosed = event {
//!             call.send(Bytes::from_static(b"hello"));
//!             call.finish_after(Duration::from_millis(20), Status::ok());
//!         }
//!     }
//! }
//!
//! let mut config = SimConfig::new(7);
//! config.service = Some(ServiceFactory::new(|_host| Box::new(Greeter)));
//! let mut sim = Sim::new(config);
//! let mut call = CallSpec::unary(0, Duration::ZERO, 10);
//! call.method = Some("/demo.Greeter/Hello".to_owned());
//! sim.schedule_call(call);
//! sim.schedule_heal(Duration::from_secs(1));
//! sim.run_to_end().unwrap_or_else(|v| panic!("{v}"));
//! assert_eq!(sim.statuses()[0], Some(Code::Ok));
//! assert_eq!(sim.responses(0), [Bytes::from_static(b"hello")]);
//! ```
//! `cargo run -p grpc-sansio-tests --example replay -- SEED` replays a seed and prints
//! its trace; `SIM_SEEDS=5000 cargo test -p grpc-sansio-tests --release --test sim`
//! explores more seeds.

mod explore;
mod fault;
pub mod message;
mod service;
mod workload;
mod world;

pub use explore::{FAULT_WINDOW, HEAL_AT, SMALLEST_WINDOW, Scenario, WORKLOAD_WINDOW, run_seed};
pub use fault::{Fault, ResolverFault, Scheduled, random_fault, random_plan};
pub use service::{CallEvent, EchoService, Service, ServiceCall, ServiceCallId, ServiceFactory};
pub use workload::{CallKind, CallSpec, random_call, random_workload};
pub use world::{Sim, SimConfig, Violation};
