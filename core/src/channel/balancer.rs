//! The load-balancing API (grpc-go's `balancer` package, sans-IO): a [`Balancer`]
//! turns resolver updates and subchannel states into subchannels to create and a
//! [`Picker`] that routes each call. Users implement these traits for their own
//! policies; `pick_first` and `round_robin` are built in.
//!
//! Everything is synchronous: the channel calls the balancer with a
//! [`BalancerContext`] through which it asks for subchannels, connections and
//! re-resolution, and publishes its state and picker.

use std::collections::BTreeMap;
use std::fmt;

use super::state::ConnectivityState;
use super::target::Address;
use crate::grpc::metadata::Metadata;
use crate::grpc::status::Status;

/// Opaque attributes attached by a resolver to an endpoint or to its whole update
/// (grpc-go's `attributes.Attributes`), for balancers that need them.
pub type Attributes = BTreeMap<String, String>;

/// One logical server: one or more addresses it can be reached at (gRFC A61).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Endpoint {
    /// Its addresses, in preference order.
    pub addresses: Vec<Address>,
    /// What the resolver attached to it.
    pub attributes: Attributes,
}

impl Endpoint {
    /// An endpoint with one address and no attributes.
    pub fn new(address: Address) -> Endpoint {
        Endpoint {
            addresses: vec![address],
            attributes: Attributes::new(),
        }
    }
}

/// What a resolver produced (grpc-go's `resolver.State`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResolverState {
    /// The endpoints, in the resolver's order.
    pub endpoints: Vec<Endpoint>,
    /// The service config JSON, if the resolver supplies one.
    pub service_config: Option<String>,
    /// Attributes of the whole update.
    pub attributes: Attributes,
}

impl ResolverState {
    /// Every address of every endpoint, in order (what address-based policies such as
    /// pick_first use, per gRFC A61).
    pub fn addresses(&self) -> impl Iterator<Item = &Address> {
        self.endpoints.iter().flat_map(|e| e.addresses.iter())
    }
}

/// What the channel gives its balancer with each resolver update.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientConnState {
    /// The resolver's output.
    pub resolver_state: ResolverState,
    /// The policy's own config from the service config's `loadBalancingConfig`
    /// (`None` when the service config names none).
    pub config: Option<serde_json::Value>,
}

/// A subchannel of the channel, named by the channel; never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubchannelId(pub u64);

impl fmt::Display for SubchannelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SubChannel #{}", self.0)
    }
}

/// A subchannel's new state, as reported to its balancer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubchannelState {
    /// The new state.
    pub state: ConnectivityState,
    /// Why the last connection attempt failed (with TRANSIENT_FAILURE).
    pub error: Option<Status>,
}

/// The balancer could not use a resolver update (grpc-go's `ErrBadResolverState`):
/// the channel asks the resolver to resolve again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadResolverState(pub String);

impl fmt::Display for BadResolverState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad resolver state: {}", self.0)
    }
}

impl std::error::Error for BadResolverState {}

/// What a call tells the picker about itself.
#[derive(Clone, Copy, Debug)]
pub struct PickInfo<'a> {
    /// The full method path, `/package.Service/Method`.
    pub path: &'a str,
    /// The call's metadata.
    pub metadata: &'a Metadata,
}

/// A picker's verdict for one call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PickResult {
    /// Send the call on this READY subchannel.
    Pick(SubchannelId),
    /// No subchannel yet: keep the call until the next picker (grpc-go's
    /// `ErrNoSubConnAvailable`).
    Queue,
    /// Fail the call with this status (UNAVAILABLE normally), unless it is
    /// wait-for-ready, which then stays queued.
    Fail(Status),
    /// Fail the call with this status even if it is wait-for-ready (a drop).
    Drop(Status),
}

/// Routes calls to subchannels; replaced as a whole whenever the balancer's view
/// changes.
pub trait Picker: fmt::Debug + Send {
    /// Picks for one call. May keep state (a round-robin position).
    fn pick(&mut self, info: &PickInfo<'_>) -> PickResult;
}

/// A picker that gives every call the same verdict ([`PickResult::Queue`] for a
/// balancer still connecting, [`PickResult::Fail`] for one in TRANSIENT_FAILURE).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FixedPicker(pub PickResult);

impl Picker for FixedPicker {
    fn pick(&mut self, _: &PickInfo<'_>) -> PickResult {
        self.0.clone()
    }
}

/// What a balancer can ask of its channel (grpc-go's `balancer.ClientConn` plus
/// `SubConn.Connect`/`Shutdown`). The channel applies these after the balancer call
/// returns, in order.
pub trait BalancerContext {
    /// Creates an IDLE subchannel over `addresses` (tried in order on each connect).
    fn new_subchannel(&mut self, addresses: Vec<Address>) -> SubchannelId;
    /// Replaces a subchannel's addresses; a connection to an address still in the list
    /// is kept, otherwise the subchannel goes IDLE.
    fn update_addresses(&mut self, subchannel: SubchannelId, addresses: Vec<Address>);
    /// Asks an IDLE subchannel to connect (no effect in any other state).
    fn connect(&mut self, subchannel: SubchannelId);
    /// Shuts a subchannel down; it reports SHUTDOWN to nobody and is gone.
    fn remove_subchannel(&mut self, subchannel: SubchannelId);
    /// Publishes the balancer's aggregated state and the picker for new calls.
    fn update_state(&mut self, state: ConnectivityState, picker: Box<dyn Picker>);
    /// Asks the resolver to resolve again.
    fn resolve_now(&mut self);
    /// 64 random bits from the channel's seeded generator (shuffles, random starts).
    fn random(&mut self) -> u64;
}

/// A load-balancing policy instance, owned by one channel.
pub trait Balancer: fmt::Debug + Send {
    /// New addresses and config from the resolver. An error makes the channel ask for
    /// re-resolution.
    fn update_client_conn_state(
        &mut self,
        state: &ClientConnState,
        cx: &mut dyn BalancerContext,
    ) -> Result<(), BadResolverState>;

    /// The resolver failed (`error` says how). A balancer with no usable addresses
    /// should fail picks with it.
    fn resolver_error(&mut self, error: &Status, cx: &mut dyn BalancerContext);

    /// One of this balancer's subchannels changed state.
    fn subchannel_state(
        &mut self,
        subchannel: SubchannelId,
        state: &SubchannelState,
        cx: &mut dyn BalancerContext,
    );

    /// The channel leaves IDLE (a call arrived, or `connect` was asked): start
    /// connecting if idle.
    fn exit_idle(&mut self, cx: &mut dyn BalancerContext);

    /// The balancer is being replaced or the channel shut down: remove every
    /// subchannel.
    fn close(&mut self, cx: &mut dyn BalancerContext);
}

/// Builds balancers of one policy, by name (grpc-go's `balancer.Builder`).
pub trait BalancerBuilder: fmt::Debug {
    /// The policy name as it appears in service configs (`pick_first`).
    fn name(&self) -> &str;
    /// A new instance for one channel.
    fn build(&self) -> Box<dyn Balancer>;
}

/// A recording [`BalancerContext`] for balancer tests: subchannels get ids 1, 2, …, and
/// every request is kept in order.
#[cfg(test)]
#[derive(Debug, Default)]
pub(crate) struct TestContext {
    pub(crate) next_id: u64,
    pub(crate) ops: Vec<TestOp>,
    pub(crate) picker: Option<Box<dyn Picker>>,
    pub(crate) state: Option<ConnectivityState>,
    pub(crate) randoms: std::collections::VecDeque<u64>,
}

/// One request a balancer made of a [`TestContext`].
#[cfg(test)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum TestOp {
    New(SubchannelId, Vec<Address>),
    UpdateAddresses(SubchannelId, Vec<Address>),
    Connect(SubchannelId),
    Remove(SubchannelId),
    State(ConnectivityState),
    ResolveNow,
}

#[cfg(test)]
impl TestContext {
    /// Takes the requests made so far.
    pub(crate) fn take(&mut self) -> Vec<TestOp> {
        std::mem::take(&mut self.ops)
    }

    /// Picks with the current picker for a call to `/svc/M` without metadata.
    pub(crate) fn pick(&mut self) -> PickResult {
        let md = Metadata::new();
        let info = PickInfo {
            path: "/svc/M",
            metadata: &md,
        };
        // Test helper only (cfg(test)): a test that picks before any picker exists is
        // a wrong test, and should fail loudly.
        self.picker
            .as_mut()
            .expect("a picker was published")
            .pick(&info)
    }
}

#[cfg(test)]
impl BalancerContext for TestContext {
    fn new_subchannel(&mut self, addresses: Vec<Address>) -> SubchannelId {
        self.next_id += 1;
        let id = SubchannelId(self.next_id);
        self.ops.push(TestOp::New(id, addresses));
        id
    }
    fn update_addresses(&mut self, subchannel: SubchannelId, addresses: Vec<Address>) {
        self.ops
            .push(TestOp::UpdateAddresses(subchannel, addresses));
    }
    fn connect(&mut self, subchannel: SubchannelId) {
        self.ops.push(TestOp::Connect(subchannel));
    }
    fn remove_subchannel(&mut self, subchannel: SubchannelId) {
        self.ops.push(TestOp::Remove(subchannel));
    }
    fn update_state(&mut self, state: ConnectivityState, picker: Box<dyn Picker>) {
        self.ops.push(TestOp::State(state));
        self.state = Some(state);
        self.picker = Some(picker);
    }
    fn resolve_now(&mut self) {
        self.ops.push(TestOp::ResolveNow);
    }
    fn random(&mut self) -> u64 {
        self.randoms.pop_front().unwrap_or(0)
    }
}
