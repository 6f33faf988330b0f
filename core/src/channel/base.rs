//! A helper for balancers that keep a subchannel to every backend and differ only in
//! how they pick among the READY ones (grpc-go's `balancer/base`).
//!
//! A policy supplies a [`PickerBuilder`]; [`BaseBalancer`] does the rest: it keeps one
//! subchannel per address (or per endpoint, see [`SubchannelGrouping`]), connects every
//! subchannel and reconnects each one that goes IDLE, aggregates their states, and
//! publishes the policy's picker while READY, a queueing picker while connecting and an
//! erroring picker in TRANSIENT_FAILURE.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::fmt;

use super::balancer::{
    BadResolverState, Balancer, BalancerBuilder, BalancerContext, ClientConnState, FixedPicker,
    PickResult, Picker, ResolverState, SubchannelId, SubchannelState,
};
use super::state::ConnectivityState;
use super::target::Address;
use crate::grpc::status::Status;

/// Builds the picker a [`BaseBalancer`] publishes while READY (grpc-go's
/// `base.PickerBuilder`). This is all a policy built on the base has to write.
pub trait PickerBuilder: fmt::Debug + Send {
    /// A picker over `ready`, the READY subchannels in resolver order (never empty).
    /// `random` is 64 fresh bits from the channel's seeded generator, so that a
    /// rotation can start at a random place and many clients do not all hit the first
    /// backend first.
    fn build(&self, ready: &[SubchannelId], random: u64) -> Box<dyn Picker>;
}

/// What a [`BaseBalancer`] makes one subchannel for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SubchannelGrouping {
    /// One subchannel per address: the endpoints' addresses are flattened and
    /// duplicates dropped (grpc-go's `base`, which predates endpoints).
    #[default]
    PerAddress,
    /// One subchannel per endpoint, over all of its addresses in order, so that a
    /// backend with an IPv4 and an IPv6 address gets one share of the load, not two
    /// (gRFC A61's petiole policies, where the subchannel's in-order connection
    /// attempts stand in for the pick_first child). Endpoints are the same when their
    /// sets of addresses are, whatever the order; a new order is passed on with
    /// [`BalancerContext::update_addresses`], because the order matters when
    /// connecting.
    PerEndpoint,
}

/// The aggregated state of a group of subchannels (grpc-go's
/// `ConnectivityStateEvaluator`): READY if any is READY, else CONNECTING if any is
/// CONNECTING, else IDLE if any is IDLE, else TRANSIENT_FAILURE, which is also the
/// state of no subchannels at all (nothing to send calls to). SHUTDOWN is ignored.
pub fn aggregate_state(states: impl IntoIterator<Item = ConnectivityState>) -> ConnectivityState {
    let (mut connecting, mut idle) = (false, false);
    for state in states {
        match state {
            ConnectivityState::Ready => return ConnectivityState::Ready,
            ConnectivityState::Connecting => connecting = true,
            ConnectivityState::Idle => idle = true,
            ConnectivityState::TransientFailure | ConnectivityState::Shutdown => {}
        }
    }
    if connecting {
        ConnectivityState::Connecting
    } else if idle {
        ConnectivityState::Idle
    } else {
        ConnectivityState::TransientFailure
    }
}

/// One subchannel the balancer owns.
#[derive(Debug)]
struct Tracked {
    /// The addresses it was created or last updated with, in resolver order.
    addresses: Vec<Address>,
    /// The map key it is filed under in `by_key`.
    key: Vec<Address>,
    /// The state the subchannel last reported (IDLE before its first report).
    reported: ConnectivityState,
    /// The state it counts as for aggregation and picking. It differs from `reported`
    /// in two ways: an IDLE subchannel that was just asked to connect counts as
    /// CONNECTING (it will be shortly, and reporting IDLE in between would claim that
    /// nobody is connecting), and a subchannel that failed stays TRANSIENT_FAILURE
    /// through its IDLE and CONNECTING retries until it is READY (sticky TF, as in
    /// grpc-go's base and gRFC A62's pick_first, so that many failing backends retrying
    /// at different times do not keep the aggregate flapping back to CONNECTING).
    effective: ConnectivityState,
}

/// What was last handed to [`BalancerContext::update_state`], so that an event that
/// changes none of it publishes nothing.
#[derive(Debug, PartialEq, Eq)]
struct Published {
    state: ConnectivityState,
    ready: Vec<SubchannelId>,
    error: Option<Status>,
}

/// A [`Balancer`] that keeps every backend connected and lets a [`PickerBuilder`]
/// choose among the READY ones (grpc-go's `baseBalancer`).
///
/// - Resolver update: a subchannel is created and connected for each new address (or
///   endpoint), the subchannels of addresses no longer listed are removed, and the
///   others are kept with their connections. An update without addresses removes
///   everything, fails picks with "produced zero addresses" and returns
///   [`BadResolverState`] so that the channel re-resolves.
/// - A subchannel that reports IDLE is asked to connect again at once.
/// - The channel sees [`aggregate_state`] over the subchannels, with the picker from
///   the [`PickerBuilder`] when READY, a queueing picker when CONNECTING or IDLE, and in
///   TRANSIENT_FAILURE a picker that fails calls with UNAVAILABLE naming the last
///   connection error and the last resolver error.
/// - State and picker are republished only when the aggregated state, the list of
///   READY subchannels or (in TRANSIENT_FAILURE) the error changed, because a new
///   picker restarts the rotation and wakes every queued call.
#[derive(Debug)]
pub struct BaseBalancer<P: PickerBuilder> {
    picker_builder: P,
    grouping: SubchannelGrouping,
    /// The subchannels in resolver order, which is the order pickers see them in.
    order: Vec<SubchannelId>,
    subchannels: HashMap<SubchannelId, Tracked>,
    /// Subchannels by their sorted, de-duplicated address list.
    by_key: HashMap<Vec<Address>, SubchannelId>,
    /// The last error a subchannel failed with; kept (as in grpc-go) after it recovers,
    /// so that a later TRANSIENT_FAILURE reached through sticky subchannels still has
    /// something to say.
    connection_error: Option<Status>,
    /// The last resolver error; cleared by the next good resolver update.
    resolver_error: Option<Status>,
    published: Option<Published>,
}

impl<P: PickerBuilder> BaseBalancer<P> {
    /// A balancer without subchannels that publishes nothing until the first resolver
    /// update or error.
    pub fn new(picker_builder: P, grouping: SubchannelGrouping) -> BaseBalancer<P> {
        BaseBalancer {
            picker_builder,
            grouping,
            order: Vec::new(),
            subchannels: HashMap::new(),
            by_key: HashMap::new(),
            connection_error: None,
            resolver_error: None,
            published: None,
        }
    }

    /// The subchannels in resolver order with the state each counts as.
    pub fn subchannels(&self) -> impl Iterator<Item = (SubchannelId, ConnectivityState)> + '_ {
        self.order
            .iter()
            .map(|id| (*id, self.subchannels[id].effective))
    }

    /// The address lists to keep subchannels for, each with its map key, in resolver
    /// order and without duplicates.
    fn groups(&self, resolver_state: &ResolverState) -> Vec<(Vec<Address>, Vec<Address>)> {
        let mut seen = HashSet::new();
        let mut groups = Vec::new();
        match self.grouping {
            SubchannelGrouping::PerAddress => {
                for address in resolver_state.addresses() {
                    let key = vec![address.clone()];
                    if seen.insert(key.clone()) {
                        groups.push((key, vec![address.clone()]));
                    }
                }
            }
            SubchannelGrouping::PerEndpoint => {
                for endpoint in &resolver_state.endpoints {
                    let mut addresses: Vec<Address> = Vec::new();
                    for address in &endpoint.addresses {
                        if !addresses.contains(address) {
                            addresses.push(address.clone());
                        }
                    }
                    // An endpoint with no address cannot be connected to: it is not a
                    // backend, and counting it would hide an empty update.
                    if addresses.is_empty() {
                        continue;
                    }
                    let mut key = addresses.clone();
                    key.sort_by(compare_addresses);
                    if seen.insert(key.clone()) {
                        groups.push((key, addresses));
                    }
                }
            }
        }
        groups
    }

    /// Removes every subchannel, in resolver order.
    fn remove_all(&mut self, cx: &mut dyn BalancerContext) {
        for id in self.order.drain(..) {
            cx.remove_subchannel(id);
        }
        self.subchannels.clear();
        self.by_key.clear();
    }

    /// The status failing picks in TRANSIENT_FAILURE: UNAVAILABLE with both errors, as
    /// either may be what the user needs to see.
    fn failure(&self) -> Status {
        let message = match (&self.connection_error, &self.resolver_error) {
            (Some(c), Some(r)) => format!(
                "last connection error: {}; last resolver error: {}",
                c.message, r.message
            ),
            (Some(c), None) => format!("last connection error: {}", c.message),
            (None, Some(r)) => format!("last resolver error: {}", r.message),
            (None, None) => "no usable subchannel".to_owned(),
        };
        Status::unavailable(message)
    }

    /// Publishes the aggregated state and a fresh picker if either would differ from
    /// what the channel has.
    fn publish(&mut self, cx: &mut dyn BalancerContext) {
        let state = aggregate_state(self.order.iter().map(|id| self.subchannels[id].effective));
        let ready: Vec<SubchannelId> = self
            .order
            .iter()
            .copied()
            .filter(|id| self.subchannels[id].effective == ConnectivityState::Ready)
            .collect();
        let error = (state == ConnectivityState::TransientFailure).then(|| self.failure());
        let next = Published {
            state,
            ready,
            error,
        };
        if self.published.as_ref() == Some(&next) {
            return;
        }
        let picker: Box<dyn Picker> = match (&next.error, state) {
            (Some(status), _) => Box::new(FixedPicker(PickResult::Fail(status.clone()))),
            (None, ConnectivityState::Ready) => {
                let random = cx.random();
                self.picker_builder.build(&next.ready, random)
            }
            // CONNECTING or IDLE: calls wait for the next picker.
            (None, _) => Box::new(FixedPicker(PickResult::Queue)),
        };
        cx.update_state(state, picker);
        self.published = Some(next);
    }
}

impl<P: PickerBuilder> Balancer for BaseBalancer<P> {
    fn update_client_conn_state(
        &mut self,
        state: &ClientConnState,
        cx: &mut dyn BalancerContext,
    ) -> Result<(), BadResolverState> {
        self.resolver_error = None;
        let groups = self.groups(&state.resolver_state);
        if groups.is_empty() {
            // Nothing left to connect to: fail picks until the resolver does better,
            // and have the channel ask it to.
            self.remove_all(cx);
            let reason = "produced zero addresses";
            self.resolver_error(&Status::unavailable(reason), cx);
            return Err(BadResolverState(reason.to_owned()));
        }

        let mut order = Vec::with_capacity(groups.len());
        let mut by_key = HashMap::with_capacity(groups.len());
        let mut kept = HashSet::with_capacity(groups.len());
        for (key, addresses) in groups {
            let existing = self
                .by_key
                .get(&key)
                .and_then(|&id| self.subchannels.get_mut(&id).map(|t| (id, t)));
            let id = match existing {
                Some((id, tracked)) => {
                    // Kept, connection and all; only a new order is worth telling.
                    if tracked.addresses != addresses {
                        cx.update_addresses(id, addresses.clone());
                        tracked.addresses = addresses;
                    }
                    id
                }
                None => {
                    let id = cx.new_subchannel(addresses.clone());
                    // The base keeps every backend connected, so a new one starts now.
                    cx.connect(id);
                    self.subchannels.insert(
                        id,
                        Tracked {
                            addresses,
                            key: key.clone(),
                            reported: ConnectivityState::Idle,
                            effective: ConnectivityState::Connecting,
                        },
                    );
                    id
                }
            };
            order.push(id);
            kept.insert(id);
            by_key.insert(key, id);
        }
        for id in &self.order {
            if !kept.contains(id) {
                cx.remove_subchannel(*id);
                self.subchannels.remove(id);
            }
        }
        self.order = order;
        self.by_key = by_key;
        self.publish(cx);
        Ok(())
    }

    fn resolver_error(&mut self, error: &Status, cx: &mut dyn BalancerContext) {
        self.resolver_error = Some(error.clone());
        // With subchannels that may still work, the last good addresses stay in use and
        // the error only waits to be named if they all fail. Without any, or already
        // failing, the error is news for the calls being failed.
        let failing = self
            .published
            .as_ref()
            .is_some_and(|p| p.state == ConnectivityState::TransientFailure);
        if self.order.is_empty() || failing {
            self.publish(cx);
        }
    }

    fn subchannel_state(
        &mut self,
        subchannel: SubchannelId,
        state: &SubchannelState,
        cx: &mut dyn BalancerContext,
    ) {
        // Reports from removed subchannels can still be in flight: ignore them.
        let Some(tracked) = self.subchannels.get_mut(&subchannel) else {
            return;
        };
        tracked.reported = state.state;
        let failed = tracked.effective == ConnectivityState::TransientFailure;
        match state.state {
            ConnectivityState::Idle => {
                // The base keeps every backend connected (its backoff is over, or a
                // READY connection ended).
                cx.connect(subchannel);
                if !failed {
                    tracked.effective = ConnectivityState::Connecting;
                }
            }
            ConnectivityState::Connecting => {
                if !failed {
                    tracked.effective = ConnectivityState::Connecting;
                }
            }
            ConnectivityState::Ready => tracked.effective = ConnectivityState::Ready,
            ConnectivityState::TransientFailure => {
                tracked.effective = ConnectivityState::TransientFailure;
                if let Some(error) = &state.error {
                    self.connection_error = Some(error.clone());
                }
            }
            ConnectivityState::Shutdown => {
                // Not ours to remove any more: forget it so the next update may
                // create a replacement.
                let key = tracked.key.clone();
                self.subchannels.remove(&subchannel);
                self.by_key.remove(&key);
                self.order.retain(|id| *id != subchannel);
            }
        }
        self.publish(cx);
    }

    fn exit_idle(&mut self, cx: &mut dyn BalancerContext) {
        // Every IDLE subchannel was asked to connect when it went IDLE; asking again is
        // harmless (connect does nothing outside IDLE) and covers a request the channel
        // dropped while it was itself idle.
        for id in &self.order {
            if self.subchannels[id].reported == ConnectivityState::Idle {
                cx.connect(*id);
            }
        }
    }

    fn close(&mut self, cx: &mut dyn BalancerContext) {
        self.remove_all(cx);
        self.published = None;
    }
}

/// Builds [`BaseBalancer`]s for a named policy from a [`PickerBuilder`] (grpc-go's
/// `base.NewBalancerBuilder`).
#[derive(Clone, Debug)]
pub struct BaseBuilder<P> {
    name: String,
    picker_builder: P,
    grouping: SubchannelGrouping,
}

impl<P: PickerBuilder + Clone> BaseBuilder<P> {
    /// A builder of the policy called `name` (as service configs spell it), one
    /// subchannel per address.
    pub fn new(name: impl Into<String>, picker_builder: P) -> BaseBuilder<P> {
        BaseBuilder {
            name: name.into(),
            picker_builder,
            grouping: SubchannelGrouping::PerAddress,
        }
    }

    /// The same builder making subchannels per `grouping`.
    pub fn with_grouping(mut self, grouping: SubchannelGrouping) -> BaseBuilder<P> {
        self.grouping = grouping;
        self
    }
}

impl<P: PickerBuilder + Clone + 'static> BalancerBuilder for BaseBuilder<P> {
    fn name(&self) -> &str {
        &self.name
    }

    fn build(&self) -> Box<dyn Balancer> {
        Box::new(BaseBalancer::new(
            self.picker_builder.clone(),
            self.grouping,
        ))
    }
}

/// A total order on addresses (which have none of their own), used only to compare
/// endpoints as unordered sets.
fn compare_addresses(a: &Address, b: &Address) -> Ordering {
    fn rank(a: &Address) -> u8 {
        match a {
            Address::Socket(_) => 0,
            Address::Unix(_) => 1,
            Address::UnixAbstract(_) => 2,
            Address::Name { .. } => 3,
        }
    }
    match (a, b) {
        (Address::Socket(x), Address::Socket(y)) => x.cmp(y),
        (Address::Unix(x), Address::Unix(y))
        | (Address::UnixAbstract(x), Address::UnixAbstract(y)) => x.cmp(y),
        (Address::Name { host: h, port: p }, Address::Name { host: g, port: q }) => {
            (h, p).cmp(&(g, q))
        }
        _ => rank(a).cmp(&rank(b)),
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;
    use crate::channel::balancer::{Endpoint, PickInfo, TestContext, TestOp};
    use crate::channel::state::ConnectivityState::*;

    fn addr(i: u8) -> Address {
        Address::Socket(SocketAddr::from(([10, 0, 0, i], 443)))
    }

    /// Always picks the last READY subchannel, to tell the base's work from the policy's.
    #[derive(Clone, Debug)]
    struct LastPicker;

    impl PickerBuilder for LastPicker {
        fn build(&self, ready: &[SubchannelId], _: u64) -> Box<dyn Picker> {
            Box::new(FixedPicker(PickResult::Pick(*ready.last().unwrap())))
        }
    }

    fn endpoints(eps: &[&[u8]]) -> ClientConnState {
        ClientConnState {
            resolver_state: ResolverState {
                endpoints: eps
                    .iter()
                    .map(|e| Endpoint {
                        addresses: e.iter().copied().map(addr).collect(),
                        ..Endpoint::default()
                    })
                    .collect(),
                ..ResolverState::default()
            },
            config: None,
        }
    }

    fn report(b: &mut dyn Balancer, cx: &mut TestContext, id: u64, state: ConnectivityState) {
        b.subchannel_state(
            SubchannelId(id),
            &SubchannelState { state, error: None },
            cx,
        );
    }

    #[test]
    fn aggregate_state_table() {
        let (r, c, i, t, s) = (Ready, Connecting, Idle, TransientFailure, Shutdown);
        let table: &[(&[ConnectivityState], ConnectivityState)] = &[
            (&[], t),
            (&[s], t),
            (&[t], t),
            (&[t, t, t], t),
            (&[i], i),
            (&[i, t], i),
            (&[c], c),
            (&[c, i, t], c),
            (&[t, i, c], c),
            (&[r], r),
            (&[t, t, r], r),
            (&[r, c, i, t, s], r),
            (&[s, c], c),
        ];
        for (states, want) in table {
            assert_eq!(aggregate_state(states.iter().copied()), *want, "{states:?}");
        }
    }

    #[test]
    fn per_address_flattens_endpoints_and_drops_duplicates() {
        let builder = BaseBuilder::new("last", LastPicker);
        assert_eq!(builder.name(), "last");
        let mut b = builder.build();
        let mut cx = TestContext::default();
        b.update_client_conn_state(&endpoints(&[&[1, 2], &[2, 3], &[1]]), &mut cx)
            .unwrap();
        let id = SubchannelId;
        assert_eq!(
            cx.take(),
            [
                TestOp::New(id(1), vec![addr(1)]),
                TestOp::Connect(id(1)),
                TestOp::New(id(2), vec![addr(2)]),
                TestOp::Connect(id(2)),
                TestOp::New(id(3), vec![addr(3)]),
                TestOp::Connect(id(3)),
                TestOp::State(Connecting),
            ]
        );
        // The policy's picker gets the READY ones in resolver order.
        report(b.as_mut(), &mut cx, 3, Ready);
        report(b.as_mut(), &mut cx, 1, Ready);
        assert_eq!(cx.take(), [TestOp::State(Ready), TestOp::State(Ready)]);
        assert_eq!(cx.pick(), PickResult::Pick(id(3)));
        // Reordering keeps every subchannel (no ops), but the picker sees the new order.
        b.update_client_conn_state(&endpoints(&[&[3, 2, 1]]), &mut cx)
            .unwrap();
        assert_eq!(cx.take(), [TestOp::State(Ready)]);
        assert_eq!(cx.pick(), PickResult::Pick(id(1)));
    }

    #[test]
    fn shutdown_report_forgets_the_subchannel() {
        let mut b = BaseBalancer::new(LastPicker, SubchannelGrouping::PerAddress);
        let mut cx = TestContext::default();
        b.update_client_conn_state(&endpoints(&[&[1], &[2]]), &mut cx)
            .unwrap();
        report(&mut b, &mut cx, 1, Ready);
        cx.take();
        report(&mut b, &mut cx, 1, Shutdown);
        assert_eq!(cx.take(), [TestOp::State(Connecting)]);
        assert_eq!(
            b.subchannels().collect::<Vec<_>>(),
            [(SubchannelId(2), Connecting)]
        );
        // The next update replaces it.
        b.update_client_conn_state(&endpoints(&[&[1], &[2]]), &mut cx)
            .unwrap();
        assert_eq!(
            cx.take(),
            [
                TestOp::New(SubchannelId(3), vec![addr(1)]),
                TestOp::Connect(SubchannelId(3))
            ]
        );
    }

    #[test]
    fn failure_without_an_error_still_fails_unavailable() {
        let mut b = BaseBalancer::new(LastPicker, SubchannelGrouping::PerAddress);
        let mut cx = TestContext::default();
        b.update_client_conn_state(&endpoints(&[&[1]]), &mut cx)
            .unwrap();
        report(&mut b, &mut cx, 1, TransientFailure);
        assert_eq!(cx.state, Some(TransientFailure));
        let md = crate::grpc::metadata::Metadata::new();
        let info = PickInfo {
            path: "/s/M",
            metadata: &md,
        };
        let picked = cx.picker.as_mut().unwrap().pick(&info);
        assert_eq!(
            picked,
            PickResult::Fail(Status::unavailable("no usable subchannel"))
        );
    }

    #[test]
    fn address_order_is_total() {
        let all = [
            Address::Name {
                host: "a".into(),
                port: 1,
            },
            Address::UnixAbstract("x".into()),
            Address::Unix("b".into()),
            addr(2),
            Address::Unix("a".into()),
            addr(1),
        ];
        let mut sorted = all.to_vec();
        sorted.sort_by(compare_addresses);
        assert_eq!(
            sorted,
            [
                addr(1),
                addr(2),
                Address::Unix("a".into()),
                Address::Unix("b".into()),
                Address::UnixAbstract("x".into()),
                Address::Name {
                    host: "a".into(),
                    port: 1
                },
            ]
        );
    }
}
