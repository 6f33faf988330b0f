//! The `pick_first` load-balancing policy: every call goes to the first address of the
//! resolver's list that accepts a connection, with sticky TRANSIENT_FAILURE and the
//! optional address shuffle of gRFC A62.
//!
//! Like grpc-go's `balancer/pickfirst` (the version with one `SubConn`), the policy
//! creates a single subchannel over the whole flattened address list and lets the
//! subchannel walk that list on each connection attempt. The policy itself only turns
//! the subchannel's states into the channel's state and picker:
//!
//! | subchannel reports  | normally publishes                   | in sticky TRANSIENT_FAILURE |
//! |---------------------|--------------------------------------|-----------------------------|
//! | READY               | READY, picks go to the subchannel    | same (leaves TF)            |
//! | CONNECTING          | CONNECTING, picks queue              | nothing (stays in TF)       |
//! | IDLE                | IDLE, [`IdlePicker`]                 | nothing, asks to reconnect  |
//! | TRANSIENT_FAILURE   | TRANSIENT_FAILURE, picks fail        | same (new error)            |
//!
//! Re-resolution after a failed attempt or a lost connection is the subchannel's job,
//! not this policy's: in grpc-go the `addrConn` calls `resolveNow` itself after it has
//! tried every address and whenever a READY transport closes, and pick_first does not.

use std::collections::HashSet;

use super::balancer::{
    BadResolverState, Balancer, BalancerBuilder, BalancerContext, ClientConnState, Endpoint,
    FixedPicker, PickInfo, PickResult, Picker, ResolverState, SubchannelId, SubchannelState,
};
use super::state::ConnectivityState;
use super::target::Address;
use crate::grpc::status::Status;

/// The policy's name in service configs (`loadBalancingConfig: [{"pick_first": {}}]`).
pub const PICK_FIRST: &str = "pick_first";

/// Why picks fail after the resolver returned no address at all (grpc-go's wording).
const ZERO_ADDRESSES: &str = "produced zero addresses";

/// The `pick_first` config of gRFC A62: `{"shuffleAddressList": bool}`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PickFirstConfig {
    /// Shuffle the resolver's endpoints (not the addresses inside each endpoint, gRFC
    /// A61) before connecting, for L4 load balancing across clients.
    pub shuffle_address_list: bool,
}

impl PickFirstConfig {
    /// Reads the policy's config as handed over in [`ClientConnState::config`].
    ///
    /// No config, `null`, or a missing `shuffleAddressList` means no shuffle. A
    /// malformed config (not an object, or `shuffleAddressList` not a boolean) also means
    /// no shuffle: grpc-go rejects such a config when it parses the service config, but
    /// the service config module here does not validate policy configs and a balancer
    /// update has no way to reject a config, so the safe reading is the default order.
    pub fn from_json(config: Option<&serde_json::Value>) -> PickFirstConfig {
        let shuffle_address_list = config
            .and_then(|c| c.get("shuffleAddressList"))
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false);
        PickFirstConfig {
            shuffle_address_list,
        }
    }
}

/// Builds [`PickFirst`] balancers under the name [`PICK_FIRST`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PickFirstBuilder;

impl BalancerBuilder for PickFirstBuilder {
    fn name(&self) -> &str {
        PICK_FIRST
    }

    fn build(&self) -> Box<dyn Balancer> {
        Box::new(PickFirst::new())
    }
}

/// The picker published while the subchannel is IDLE (its READY connection was lost):
/// every pick returns [`PickResult::Queue`].
///
/// grpc-go's `idlePicker` calls `SubConn.Connect` from inside `Pick`; a [`Picker`] here
/// cannot reach the balancer, so the reconnect is split in two. Contract with the
/// channel: when a pick queues while the balancer's published state is IDLE, the channel
/// calls [`Balancer::exit_idle`], and [`PickFirst`] then asks the subchannel to connect
/// and publishes CONNECTING, whose new picker the queued call is retried with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IdlePicker;

impl Picker for IdlePicker {
    fn pick(&mut self, _: &PickInfo<'_>) -> PickResult {
        PickResult::Queue
    }
}

/// A `pick_first` balancer (see the module docs).
#[derive(Debug)]
pub struct PickFirst {
    /// The one subchannel, over the whole address list; `None` before the first
    /// non-empty update, after an empty one, and after `close`.
    subchannel: Option<SubchannelId>,
    /// The state last published, except that CONNECTING and IDLE reports do not move
    /// it out of TRANSIENT_FAILURE: this is what makes TRANSIENT_FAILURE sticky.
    state: ConnectivityState,
}

impl Default for PickFirst {
    fn default() -> PickFirst {
        PickFirst::new()
    }
}

impl PickFirst {
    /// A balancer with no subchannel, in IDLE until the first resolver update.
    pub fn new() -> PickFirst {
        PickFirst {
            subchannel: None,
            state: ConnectivityState::Idle,
        }
    }

    /// Publishes `state` with `picker` and remembers it.
    fn publish(
        &mut self,
        state: ConnectivityState,
        picker: Box<dyn Picker>,
        cx: &mut dyn BalancerContext,
    ) {
        self.state = state;
        cx.update_state(state, picker);
    }

    /// Publishes TRANSIENT_FAILURE with a picker failing calls UNAVAILABLE with
    /// `message`.
    fn fail(&mut self, message: String, cx: &mut dyn BalancerContext) {
        let picker = FixedPicker(PickResult::Fail(Status::unavailable(message)));
        self.publish(ConnectivityState::TransientFailure, Box::new(picker), cx);
    }
}

/// The address list for the subchannel (gRFC A61): the endpoints, shuffled as a whole
/// when asked (A62), then flattened in order, each address kept at its first place only
/// (a subchannel gains nothing from trying one address twice per attempt).
fn address_list(
    resolver_state: &ResolverState,
    config: PickFirstConfig,
    cx: &mut dyn BalancerContext,
) -> Vec<Address> {
    let mut endpoints: Vec<&Endpoint> = resolver_state.endpoints.iter().collect();
    if config.shuffle_address_list {
        shuffle(&mut endpoints, cx);
    }
    let mut seen = HashSet::new();
    endpoints
        .into_iter()
        .flat_map(|e| e.addresses.iter())
        .filter(|a| seen.insert(*a))
        .cloned()
        .collect()
}

/// Fisher–Yates with the channel's generator, so a seeded channel replays its shuffles.
/// Draws one number per position from the last down to the second.
fn shuffle<T>(items: &mut [T], cx: &mut dyn BalancerContext) {
    for i in (1..items.len()).rev() {
        // Maps 64 random bits onto 0..=i by multiply-and-shift, as `Random::below` does.
        let j = ((u128::from(cx.random()) * (i as u128 + 1)) >> 64) as usize;
        items.swap(i, j);
    }
}

impl Balancer for PickFirst {
    fn update_client_conn_state(
        &mut self,
        state: &ClientConnState,
        cx: &mut dyn BalancerContext,
    ) -> Result<(), BadResolverState> {
        if state.resolver_state.addresses().next().is_none() {
            // No address: treated as a resolver error (grpc-go). The old subchannel's
            // addresses are all gone, so it is of no further use.
            if let Some(sc) = self.subchannel.take() {
                cx.remove_subchannel(sc);
            }
            self.resolver_error(&Status::unavailable(ZERO_ADDRESSES), cx);
            return Err(BadResolverState(ZERO_ADDRESSES.to_owned()));
        }
        let config = PickFirstConfig::from_json(state.config.as_ref());
        let addresses = address_list(&state.resolver_state, config, cx);
        if let Some(sc) = self.subchannel {
            // Same subchannel, new list: it keeps a connection to an address still
            // listed, otherwise it goes IDLE and reports so (grpc-go `UpdateAddresses`).
            // The published state is left alone until it reports.
            cx.update_addresses(sc, addresses);
            return Ok(());
        }
        let sc = cx.new_subchannel(addresses);
        self.subchannel = Some(sc);
        cx.connect(sc);
        self.publish(
            ConnectivityState::Connecting,
            Box::new(FixedPicker(PickResult::Queue)),
            cx,
        );
        Ok(())
    }

    fn resolver_error(&mut self, error: &Status, cx: &mut dyn BalancerContext) {
        if self.subchannel.is_none() {
            self.state = ConnectivityState::TransientFailure;
        }
        // A subchannel that is connecting, ready or idle is still worth using: the
        // resolver's failure says nothing about it. Only a balancer already failing
        // calls swaps in the resolver's reason (grpc-go).
        if self.state != ConnectivityState::TransientFailure {
            return;
        }
        self.fail(format!("name resolver error: {}", error.message), cx);
    }

    fn subchannel_state(
        &mut self,
        subchannel: SubchannelId,
        state: &SubchannelState,
        cx: &mut dyn BalancerContext,
    ) {
        // A removed subchannel can still have reports in flight.
        if self.subchannel != Some(subchannel) {
            return;
        }
        let sticky = self.state == ConnectivityState::TransientFailure;
        match state.state {
            ConnectivityState::Ready => {
                let picker = FixedPicker(PickResult::Pick(subchannel));
                self.publish(ConnectivityState::Ready, Box::new(picker), cx);
            }
            // A62: once every address failed, stay in TRANSIENT_FAILURE until READY, so
            // calls keep failing fast (and a parent such as priority sees the failure)
            // while the subchannel retries.
            ConnectivityState::Connecting if sticky => {}
            ConnectivityState::Connecting => {
                let picker = FixedPicker(PickResult::Queue);
                self.publish(ConnectivityState::Connecting, Box::new(picker), cx);
            }
            // The subchannel's backoff is over. A62: keep trying without waiting for a
            // call, and without leaving TRANSIENT_FAILURE.
            ConnectivityState::Idle if sticky => cx.connect(subchannel),
            // A READY connection was lost: reconnect only when a call needs it.
            ConnectivityState::Idle => {
                self.publish(ConnectivityState::Idle, Box::new(IdlePicker), cx);
            }
            ConnectivityState::TransientFailure => {
                let message = match &state.error {
                    Some(error) => error.message.clone(),
                    None => "connection to every address failed".to_owned(),
                };
                self.fail(message, cx);
            }
            // The channel shut it down behind our back: forget it (grpc-go), so the next
            // update creates a new one. Nothing to publish: the channel is going away or
            // replacing this balancer.
            ConnectivityState::Shutdown => self.subchannel = None,
        }
    }

    fn exit_idle(&mut self, cx: &mut dyn BalancerContext) {
        // Only an IDLE balancer has anything to start; without a subchannel there is
        // no address to connect to yet.
        if self.state != ConnectivityState::Idle {
            return;
        }
        if let Some(sc) = self.subchannel {
            cx.connect(sc);
            let picker = FixedPicker(PickResult::Queue);
            self.publish(ConnectivityState::Connecting, Box::new(picker), cx);
        }
    }

    fn close(&mut self, cx: &mut dyn BalancerContext) {
        if let Some(sc) = self.subchannel.take() {
            cx.remove_subchannel(sc);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, SocketAddr};

    use serde_json::json;

    use super::*;
    use crate::channel::balancer::{TestContext, TestOp};
    use crate::grpc::code::Code;
    use ConnectivityState::{Connecting, Idle, Ready, TransientFailure};

    fn addr(port: u16) -> Address {
        Address::Socket(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
    }

    fn addrs(ports: &[u16]) -> Vec<Address> {
        ports.iter().copied().map(addr).collect()
    }

    /// A resolver update with one endpoint per inner slice.
    fn update(endpoints: &[&[u16]], config: Option<serde_json::Value>) -> ClientConnState {
        ClientConnState {
            resolver_state: ResolverState {
                endpoints: endpoints
                    .iter()
                    .map(|ports| Endpoint {
                        addresses: addrs(ports),
                        ..Endpoint::default()
                    })
                    .collect(),
                ..ResolverState::default()
            },
            config,
        }
    }

    fn unavailable(message: &str) -> PickResult {
        PickResult::Fail(Status::unavailable(message))
    }

    const SC1: SubchannelId = SubchannelId(1);
    const SC2: SubchannelId = SubchannelId(2);

    /// One input to the balancer.
    #[derive(Clone, Debug)]
    enum Step {
        /// A resolver update with these endpoints and no config; `ok` is the expected
        /// result.
        Update(&'static [&'static [u16]], bool),
        ResolverError(&'static str),
        /// A subchannel report, with the error message for TRANSIENT_FAILURE.
        Sc(SubchannelId, ConnectivityState, Option<&'static str>),
        ExitIdle,
        Close,
    }
    use Step::*;

    /// A step, the requests it must make, and what a pick then returns (`None`: do not
    /// pick).
    type Row = (Step, Vec<TestOp>, Option<PickResult>);

    fn run(name: &str, rows: Vec<Row>) {
        let mut pf = PickFirst::new();
        let mut cx = TestContext::default();
        for (i, (step, ops, pick)) in rows.into_iter().enumerate() {
            match &step {
                Update(endpoints, ok) => {
                    let got = pf.update_client_conn_state(&update(endpoints, None), &mut cx);
                    assert_eq!(got.is_ok(), *ok, "{name} step {i} {step:?}: {got:?}");
                }
                ResolverError(message) => {
                    pf.resolver_error(&Status::unavailable(*message), &mut cx)
                }
                Sc(sc, state, error) => {
                    let report = SubchannelState {
                        state: *state,
                        error: error.map(Status::unavailable),
                    };
                    pf.subchannel_state(*sc, &report, &mut cx);
                }
                ExitIdle => pf.exit_idle(&mut cx),
                Close => pf.close(&mut cx),
            }
            assert_eq!(cx.take(), ops, "{name} step {i} {step:?}: requests");
            if let Some(pick) = pick {
                assert_eq!(cx.pick(), pick, "{name} step {i} {step:?}: pick");
            }
        }
    }

    #[test]
    fn scenarios() {
        let first: Row = (
            Update(&[&[1], &[2]], true),
            vec![
                TestOp::New(SC1, addrs(&[1, 2])),
                TestOp::Connect(SC1),
                TestOp::State(Connecting),
            ],
            Some(PickResult::Queue),
        );
        let connecting = || -> Row {
            (
                Sc(SC1, Connecting, None),
                vec![TestOp::State(Connecting)],
                Some(PickResult::Queue),
            )
        };
        let ready = || -> Row {
            (
                Sc(SC1, Ready, None),
                vec![TestOp::State(Ready)],
                Some(PickResult::Pick(SC1)),
            )
        };
        let refused = || -> Row {
            (
                Sc(SC1, TransientFailure, Some("connection refused")),
                vec![TestOp::State(TransientFailure)],
                Some(unavailable("connection refused")),
            )
        };
        let table: Vec<(&str, Vec<Row>)> = vec![
            (
                "connect then ready",
                vec![first.clone(), connecting(), ready()],
            ),
            (
                "lost connection goes idle and reconnects on demand",
                vec![
                    first.clone(),
                    connecting(),
                    ready(),
                    (
                        Sc(SC1, Idle, None),
                        vec![TestOp::State(Idle)],
                        Some(PickResult::Queue),
                    ),
                    (
                        ExitIdle,
                        vec![TestOp::Connect(SC1), TestOp::State(Connecting)],
                        Some(PickResult::Queue),
                    ),
                    // Already connecting: a second exit_idle has nothing to do.
                    (ExitIdle, vec![], None),
                    connecting(),
                    ready(),
                ],
            ),
            (
                "sticky transient failure",
                vec![
                    first.clone(),
                    connecting(),
                    refused(),
                    // Backoff over: reconnect at once, stay in TF.
                    (
                        Sc(SC1, Idle, None),
                        vec![TestOp::Connect(SC1)],
                        Some(unavailable("connection refused")),
                    ),
                    (
                        Sc(SC1, Connecting, None),
                        vec![],
                        Some(unavailable("connection refused")),
                    ),
                    // exit_idle while in TF: the subchannel is already retrying.
                    (ExitIdle, vec![], None),
                    (
                        Sc(SC1, TransientFailure, Some("connection reset")),
                        vec![TestOp::State(TransientFailure)],
                        Some(unavailable("connection reset")),
                    ),
                    (Sc(SC1, Idle, None), vec![TestOp::Connect(SC1)], None),
                    (Sc(SC1, Connecting, None), vec![], None),
                    ready(),
                    // Out of TF: a later IDLE is published again.
                    (
                        Sc(SC1, Idle, None),
                        vec![TestOp::State(Idle)],
                        Some(PickResult::Queue),
                    ),
                ],
            ),
            (
                "address update reuses the subchannel",
                vec![
                    first.clone(),
                    connecting(),
                    ready(),
                    (
                        Update(&[&[3], &[1]], true),
                        vec![TestOp::UpdateAddresses(SC1, addrs(&[3, 1]))],
                        Some(PickResult::Pick(SC1)),
                    ),
                ],
            ),
            (
                "update while idle stays idle until a call",
                vec![
                    first.clone(),
                    connecting(),
                    ready(),
                    (Sc(SC1, Idle, None), vec![TestOp::State(Idle)], None),
                    (
                        Update(&[&[4]], true),
                        vec![TestOp::UpdateAddresses(SC1, addrs(&[4]))],
                        Some(PickResult::Queue),
                    ),
                    (
                        ExitIdle,
                        vec![TestOp::Connect(SC1), TestOp::State(Connecting)],
                        None,
                    ),
                ],
            ),
            (
                "duplicate addresses keep their first place",
                vec![(
                    Update(&[&[1, 2], &[2, 3], &[1]], true),
                    vec![
                        TestOp::New(SC1, addrs(&[1, 2, 3])),
                        TestOp::Connect(SC1),
                        TestOp::State(Connecting),
                    ],
                    None,
                )],
            ),
            (
                "empty list removes the subchannel and fails",
                vec![
                    first.clone(),
                    connecting(),
                    ready(),
                    (
                        Update(&[], false),
                        vec![TestOp::Remove(SC1), TestOp::State(TransientFailure)],
                        Some(unavailable("name resolver error: produced zero addresses")),
                    ),
                    // Its late reports are ignored.
                    (Sc(SC1, Idle, None), vec![], None),
                    // Endpoints without addresses are no addresses either.
                    (
                        Update(&[&[], &[]], false),
                        vec![TestOp::State(TransientFailure)],
                        None,
                    ),
                    // Addresses again: a new subchannel.
                    (
                        Update(&[&[5]], true),
                        vec![
                            TestOp::New(SC2, addrs(&[5])),
                            TestOp::Connect(SC2),
                            TestOp::State(Connecting),
                        ],
                        Some(PickResult::Queue),
                    ),
                    (Sc(SC1, Ready, None), vec![], Some(PickResult::Queue)),
                    (
                        Sc(SC2, Ready, None),
                        vec![TestOp::State(Ready)],
                        Some(PickResult::Pick(SC2)),
                    ),
                ],
            ),
            (
                "resolver error before any address",
                vec![
                    (
                        ResolverError("dns: no such host"),
                        vec![TestOp::State(TransientFailure)],
                        Some(unavailable("name resolver error: dns: no such host")),
                    ),
                    // exit_idle without a subchannel: nothing to connect.
                    (ExitIdle, vec![], None),
                ],
            ),
            (
                "resolver error with a working subchannel is ignored",
                vec![
                    first.clone(),
                    (
                        ResolverError("dns timeout"),
                        vec![],
                        Some(PickResult::Queue),
                    ),
                    connecting(),
                    ready(),
                    (
                        ResolverError("dns timeout"),
                        vec![],
                        Some(PickResult::Pick(SC1)),
                    ),
                    (Sc(SC1, Idle, None), vec![TestOp::State(Idle)], None),
                    (
                        ResolverError("dns timeout"),
                        vec![],
                        Some(PickResult::Queue),
                    ),
                ],
            ),
            (
                "resolver error in transient failure replaces the reason",
                vec![
                    first.clone(),
                    connecting(),
                    refused(),
                    (
                        ResolverError("dns timeout"),
                        vec![TestOp::State(TransientFailure)],
                        Some(unavailable("name resolver error: dns timeout")),
                    ),
                ],
            ),
            (
                "unknown subchannels are ignored",
                vec![
                    first.clone(),
                    (Sc(SC2, Ready, None), vec![], Some(PickResult::Queue)),
                    (Sc(SC2, TransientFailure, Some("x")), vec![], None),
                    (Sc(SC2, Idle, None), vec![], None),
                ],
            ),
            (
                "close removes the subchannel",
                vec![
                    first.clone(),
                    ready(),
                    (Close, vec![TestOp::Remove(SC1)], None),
                    (Sc(SC1, Idle, None), vec![], None),
                    (Close, vec![], None),
                ],
            ),
            (
                "shutdown report forgets the subchannel",
                vec![
                    first.clone(),
                    (Sc(SC1, ConnectivityState::Shutdown, None), vec![], None),
                    (Close, vec![], None),
                ],
            ),
        ];
        for (name, rows) in table {
            run(name, rows);
        }
    }

    #[test]
    fn failure_status_is_unavailable_with_the_subchannel_message() {
        let mut pf = PickFirst::new();
        let mut cx = TestContext::default();
        pf.update_client_conn_state(&update(&[&[1]], None), &mut cx)
            .unwrap();
        let report = SubchannelState {
            state: TransientFailure,
            error: Some(Status::new(Code::Unknown, "connection refused")),
        };
        pf.subchannel_state(SC1, &report, &mut cx);
        assert_eq!(cx.state, Some(TransientFailure));
        assert_eq!(cx.pick(), unavailable("connection refused"));
    }

    #[test]
    fn empty_update_returns_bad_resolver_state() {
        let mut pf = PickFirst::new();
        let mut cx = TestContext::default();
        assert_eq!(
            pf.update_client_conn_state(&update(&[], None), &mut cx),
            Err(BadResolverState(ZERO_ADDRESSES.to_owned()))
        );
        assert_eq!(cx.take(), vec![TestOp::State(TransientFailure)]);
        assert_eq!(
            cx.pick(),
            PickResult::Fail(Status::new(
                Code::Unavailable,
                "name resolver error: produced zero addresses"
            ))
        );
    }

    #[test]
    fn config_parsing() {
        let table: Vec<(Option<serde_json::Value>, bool)> = vec![
            (None, false),
            (Some(json!(null)), false),
            (Some(json!({})), false),
            (Some(json!({"shuffleAddressList": false})), false),
            (Some(json!({"shuffleAddressList": true})), true),
            // Malformed: read as no shuffle.
            (Some(json!({"shuffleAddressList": "true"})), false),
            (Some(json!({"shuffleAddressList": 1})), false),
            (Some(json!([true])), false),
            (Some(json!(true)), false),
        ];
        for (config, shuffle) in table {
            assert_eq!(
                PickFirstConfig::from_json(config.as_ref()).shuffle_address_list,
                shuffle,
                "{config:?}"
            );
        }
    }

    #[test]
    fn shuffle_moves_endpoints_not_addresses() {
        const ENDPOINTS: &[&[u16]] = &[&[1, 11], &[2], &[3, 33]];
        // Fisher–Yates over 3 endpoints draws for i = 2 then i = 1; a draw r maps to
        // r * (i + 1) / 2^64.
        let table: Vec<(Option<serde_json::Value>, Vec<u64>, Vec<u16>)> = vec![
            // No shuffle: resolver order, and no random numbers used.
            (None, vec![u64::MAX, 0], vec![1, 11, 2, 3, 33]),
            (
                Some(json!({"shuffleAddressList": false})),
                vec![u64::MAX, 0],
                vec![1, 11, 2, 3, 33],
            ),
            // i=2 → j=2 (no swap), i=1 → j=1 (no swap).
            (
                Some(json!({"shuffleAddressList": true})),
                vec![u64::MAX, u64::MAX],
                vec![1, 11, 2, 3, 33],
            ),
            // i=2 → j=0: [3,2,1]; i=1 → j=0: [2,3,1].
            (
                Some(json!({"shuffleAddressList": true})),
                vec![0, 0],
                vec![2, 3, 33, 1, 11],
            ),
            // i=2 → j=1: [1,3,2]; i=1 → j=1: unchanged.
            (
                Some(json!({"shuffleAddressList": true})),
                vec![u64::MAX / 2, u64::MAX],
                vec![1, 11, 3, 33, 2],
            ),
        ];
        for (config, randoms, want) in table {
            let mut pf = PickFirst::new();
            let mut cx = TestContext {
                randoms: randoms.clone().into(),
                ..TestContext::default()
            };
            let shuffled = PickFirstConfig::from_json(config.as_ref()).shuffle_address_list;
            pf.update_client_conn_state(&update(ENDPOINTS, config), &mut cx)
                .unwrap();
            assert_eq!(
                cx.take()[0],
                TestOp::New(SC1, addrs(&want)),
                "randoms {randoms:?}"
            );
            // Two draws with shuffle, none without.
            assert_eq!(cx.randoms.len(), if shuffled { 0 } else { 2 });
        }
    }

    #[test]
    fn shuffle_applies_to_every_update() {
        let mut pf = PickFirst::new();
        let mut cx = TestContext {
            randoms: vec![0, u64::MAX].into(),
            ..TestContext::default()
        };
        let config = Some(json!({"shuffleAddressList": true}));
        pf.update_client_conn_state(&update(&[&[1], &[2]], config.clone()), &mut cx)
            .unwrap();
        pf.update_client_conn_state(&update(&[&[1], &[2]], config), &mut cx)
            .unwrap();
        assert_eq!(
            cx.take(),
            vec![
                TestOp::New(SC1, addrs(&[2, 1])),
                TestOp::Connect(SC1),
                TestOp::State(Connecting),
                TestOp::UpdateAddresses(SC1, addrs(&[1, 2])),
            ]
        );
    }

    #[test]
    fn builder() {
        let builder = PickFirstBuilder;
        assert_eq!(builder.name(), PICK_FIRST);
        assert_eq!(PICK_FIRST, "pick_first");
        let mut balancer = builder.build();
        let mut cx = TestContext::default();
        balancer
            .update_client_conn_state(&update(&[&[7]], None), &mut cx)
            .unwrap();
        assert_eq!(cx.take()[0], TestOp::New(SC1, addrs(&[7])));
    }

    #[test]
    fn idle_picker_queues() {
        let mut cx = TestContext {
            picker: Some(Box::new(IdlePicker)),
            ..TestContext::default()
        };
        assert_eq!(cx.pick(), PickResult::Queue);
        assert_eq!(PickFirst::default().state, Idle);
    }
}
