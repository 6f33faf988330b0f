//! The `round_robin` policy (grpc/grpc `doc/load-balancing.md`; grpc-go's
//! `balancer/roundrobin`): every backend is kept connected and calls go to the READY
//! ones in turn, from a random start so that clients do not all begin with the first.
//!
//! It is a [`BaseBalancer`](super::base::BaseBalancer) with [`RoundRobinPickerBuilder`].
//! Following gRFC A61, it makes one subchannel per endpoint
//! ([`SubchannelGrouping::PerEndpoint`]) rather than per address, so that an endpoint
//! reachable over IPv4 and IPv6 gets one share of the calls; its subchannel tries the
//! endpoint's addresses in order, which is what the pick_first child of A61 does
//! (without Happy Eyeballs). The rest of A61's round_robin behaviour is the base's: a
//! failed subchannel counts as TRANSIENT_FAILURE until it is READY again (pick_first's
//! sticky TF from gRFC A62), the aggregate is READY > CONNECTING > IDLE >
//! TRANSIENT_FAILURE, and a subchannel that goes IDLE is reconnected at once.

use super::balancer::{PickInfo, PickResult, Picker, SubchannelId};
use super::base::{BaseBuilder, PickerBuilder, SubchannelGrouping};

/// The policy name in service configs.
pub const ROUND_ROBIN: &str = "round_robin";

/// Picks the READY subchannels in turn.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoundRobinPicker {
    ready: Vec<SubchannelId>,
    /// Index into `ready` of the next pick.
    next: usize,
}

impl RoundRobinPicker {
    /// A picker over `ready` whose first pick is `ready[random % ready.len()]`.
    pub fn new(ready: Vec<SubchannelId>, random: u64) -> RoundRobinPicker {
        let next = match ready.len() {
            0 => 0,
            // The remainder is below `len`, so it fits a usize.
            len => (random % len as u64) as usize,
        };
        RoundRobinPicker { ready, next }
    }
}

impl Picker for RoundRobinPicker {
    fn pick(&mut self, _: &PickInfo<'_>) -> PickResult {
        // The base never builds one without READY subchannels; queueing is the safe
        // answer should a policy of its own do so.
        let Some(&id) = self.ready.get(self.next) else {
            return PickResult::Queue;
        };
        self.next = (self.next + 1) % self.ready.len();
        PickResult::Pick(id)
    }
}

/// Builds [`RoundRobinPicker`]s for a [`BaseBalancer`](super::base::BaseBalancer).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RoundRobinPickerBuilder;

impl PickerBuilder for RoundRobinPickerBuilder {
    fn build(&self, ready: &[SubchannelId], random: u64) -> Box<dyn Picker> {
        Box::new(RoundRobinPicker::new(ready.to_vec(), random))
    }
}

/// The builder of `round_robin` balancers.
pub type RoundRobinBuilder = BaseBuilder<RoundRobinPickerBuilder>;

/// A builder of `round_robin` balancers (one subchannel per endpoint, gRFC A61).
pub fn round_robin_builder() -> RoundRobinBuilder {
    BaseBuilder::new(ROUND_ROBIN, RoundRobinPickerBuilder)
        .with_grouping(SubchannelGrouping::PerEndpoint)
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;
    use crate::channel::balancer::{
        BadResolverState, Balancer, BalancerBuilder, ClientConnState, Endpoint, ResolverState,
        SubchannelState, TestContext, TestOp,
    };
    use crate::channel::state::ConnectivityState::{self, *};
    use crate::channel::target::Address;
    use crate::grpc::code::Code;
    use crate::grpc::status::Status;

    fn addr(i: u8) -> Address {
        Address::Socket(SocketAddr::from(([10, 0, 0, i], 443)))
    }

    fn sc(i: u64) -> SubchannelId {
        SubchannelId(i)
    }

    /// An update with one single-address endpoint per address.
    fn update(addrs: &[u8]) -> ClientConnState {
        endpoints(addrs.iter().map(|&i| vec![i]).collect())
    }

    fn endpoints(eps: Vec<Vec<u8>>) -> ClientConnState {
        ClientConnState {
            resolver_state: ResolverState {
                endpoints: eps
                    .into_iter()
                    .map(|e| Endpoint {
                        addresses: e.into_iter().map(addr).collect(),
                        ..Endpoint::default()
                    })
                    .collect(),
                ..ResolverState::default()
            },
            config: None,
        }
    }

    fn report(b: &mut dyn Balancer, cx: &mut TestContext, id: u64, state: ConnectivityState) {
        let error =
            (state == TransientFailure).then(|| Status::unavailable(format!("sc{id} refused")));
        b.subchannel_state(sc(id), &SubchannelState { state, error }, cx);
    }

    /// A round_robin balancer already given addresses 1..=n, each CONNECTING.
    fn started(n: u8) -> (Box<dyn Balancer>, TestContext) {
        let mut b = round_robin_builder().build();
        let mut cx = TestContext::default();
        let addrs: Vec<u8> = (1..=n).collect();
        b.update_client_conn_state(&update(&addrs), &mut cx)
            .unwrap();
        for i in 1..=u64::from(n) {
            report(b.as_mut(), &mut cx, i, Connecting);
        }
        cx.take();
        (b, cx)
    }

    fn picks(cx: &mut TestContext, n: usize) -> Vec<PickResult> {
        (0..n).map(|_| cx.pick()).collect()
    }

    #[test]
    fn builder_name_and_picker_start() {
        assert_eq!(round_robin_builder().name(), ROUND_ROBIN);
        // Channels share builders across threads.
        fn send_sync<T: Send + Sync>(_: &T) {}
        send_sync(&round_robin_builder());
        let mut p = RoundRobinPicker::new(vec![sc(1), sc(2), sc(3)], 7);
        let md = crate::grpc::metadata::Metadata::new();
        let info = PickInfo {
            path: "/s/M",
            metadata: &md,
        };
        // 7 % 3 == 1: starts at the second.
        let got: Vec<_> = (0..4).map(|_| p.pick(&info)).collect();
        let want: Vec<_> = [2, 3, 1, 2].map(|i| PickResult::Pick(sc(i))).to_vec();
        assert_eq!(got, want);
        assert_eq!(
            RoundRobinPicker::new(vec![], 5).pick(&info),
            PickResult::Queue
        );
    }

    #[test]
    fn new_addresses_are_created_and_connected() {
        let mut b = round_robin_builder().build();
        let mut cx = TestContext::default();
        b.update_client_conn_state(&update(&[1, 2, 3]), &mut cx)
            .unwrap();
        assert_eq!(
            cx.take(),
            [
                TestOp::New(sc(1), vec![addr(1)]),
                TestOp::Connect(sc(1)),
                TestOp::New(sc(2), vec![addr(2)]),
                TestOp::Connect(sc(2)),
                TestOp::New(sc(3), vec![addr(3)]),
                TestOp::Connect(sc(3)),
                TestOp::State(Connecting),
            ]
        );
        assert_eq!(cx.pick(), PickResult::Queue);
        // The CONNECTING reports that follow change nothing the channel sees.
        for i in 1..=3 {
            report(b.as_mut(), &mut cx, i, Connecting);
        }
        assert_eq!(cx.take(), []);
    }

    #[test]
    fn one_ready_takes_every_pick() {
        let (mut b, mut cx) = started(3);
        report(b.as_mut(), &mut cx, 2, Ready);
        assert_eq!(cx.take(), [TestOp::State(Ready)]);
        assert!(
            picks(&mut cx, 5)
                .iter()
                .all(|p| *p == PickResult::Pick(sc(2)))
        );
    }

    #[test]
    fn two_ready_alternate_from_a_random_start() {
        for (random, first) in [(4, 1), (7, 2)] {
            let (mut b, mut cx) = started(3);
            cx.randoms = [0, random].into();
            report(b.as_mut(), &mut cx, 1, Ready);
            report(b.as_mut(), &mut cx, 2, Ready);
            // The second READY changes the ready set: a new picker, though still READY.
            assert_eq!(cx.take(), [TestOp::State(Ready), TestOp::State(Ready)]);
            let second = 3 - first;
            let want: Vec<_> = [first, second, first, second]
                .map(|i| PickResult::Pick(sc(i)))
                .to_vec();
            assert_eq!(picks(&mut cx, 4), want, "random {random}");
        }
    }

    #[test]
    fn idle_subchannel_is_reconnected_and_leaves_the_rotation() {
        let (mut b, mut cx) = started(3);
        report(b.as_mut(), &mut cx, 1, Ready);
        report(b.as_mut(), &mut cx, 2, Ready);
        cx.take();
        report(b.as_mut(), &mut cx, 1, Idle);
        assert_eq!(cx.take(), [TestOp::Connect(sc(1)), TestOp::State(Ready)]);
        assert!(
            picks(&mut cx, 4)
                .iter()
                .all(|p| *p == PickResult::Pick(sc(2)))
        );
        // The last READY one going IDLE: it is being reconnected, so CONNECTING (not
        // IDLE, which would say that nobody is trying).
        report(b.as_mut(), &mut cx, 2, Idle);
        assert_eq!(
            cx.take(),
            [TestOp::Connect(sc(2)), TestOp::State(Connecting)]
        );
        assert_eq!(cx.pick(), PickResult::Queue);
        report(b.as_mut(), &mut cx, 1, Connecting);
        report(b.as_mut(), &mut cx, 1, Ready);
        assert_eq!(cx.take(), [TestOp::State(Ready)]);
        assert_eq!(cx.pick(), PickResult::Pick(sc(1)));
    }

    #[test]
    fn all_failed_is_transient_failure_with_the_last_error() {
        let (mut b, mut cx) = started(3);
        report(b.as_mut(), &mut cx, 1, TransientFailure);
        report(b.as_mut(), &mut cx, 2, TransientFailure);
        // One still connecting: CONNECTING, nothing new to publish.
        assert_eq!(cx.take(), []);
        report(b.as_mut(), &mut cx, 3, TransientFailure);
        assert_eq!(cx.take(), [TestOp::State(TransientFailure)]);
        assert_eq!(
            cx.pick(),
            PickResult::Fail(Status::unavailable("last connection error: sc3 refused"))
        );
        // A fresh failure while failing names the newer error.
        report(b.as_mut(), &mut cx, 1, Idle);
        report(b.as_mut(), &mut cx, 1, Connecting);
        report(b.as_mut(), &mut cx, 1, TransientFailure);
        assert_eq!(
            cx.take(),
            [TestOp::Connect(sc(1)), TestOp::State(TransientFailure)]
        );
        match cx.pick() {
            PickResult::Fail(s) => {
                assert_eq!(s.code, Code::Unavailable);
                assert_eq!(s.message, "last connection error: sc1 refused");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn failure_is_sticky_until_ready() {
        let (mut b, mut cx) = started(2);
        report(b.as_mut(), &mut cx, 1, TransientFailure);
        report(b.as_mut(), &mut cx, 2, TransientFailure);
        assert_eq!(cx.take(), [TestOp::State(TransientFailure)]);
        // Backoff over: reconnected, but still counted as failing, so the channel is
        // not told CONNECTING on every retry of every backend.
        report(b.as_mut(), &mut cx, 1, Idle);
        report(b.as_mut(), &mut cx, 1, Connecting);
        assert_eq!(cx.take(), [TestOp::Connect(sc(1))]);
        assert!(matches!(cx.pick(), PickResult::Fail(_)));
        report(b.as_mut(), &mut cx, 1, Ready);
        assert_eq!(cx.take(), [TestOp::State(Ready)]);
        assert_eq!(cx.pick(), PickResult::Pick(sc(1)));
        // Subchannel 2 is still TF: when 1 drops, the aggregate is CONNECTING because
        // 1 is reconnecting and has not failed.
        report(b.as_mut(), &mut cx, 1, Idle);
        assert_eq!(
            cx.take(),
            [TestOp::Connect(sc(1)), TestOp::State(Connecting)]
        );
    }

    #[test]
    fn update_removes_only_what_is_gone() {
        let (mut b, mut cx) = started(3);
        report(b.as_mut(), &mut cx, 1, Ready);
        report(b.as_mut(), &mut cx, 3, Ready);
        cx.take();
        b.update_client_conn_state(&update(&[1, 3, 4]), &mut cx)
            .unwrap();
        assert_eq!(
            cx.take(),
            [
                TestOp::New(sc(4), vec![addr(4)]),
                TestOp::Connect(sc(4)),
                TestOp::Remove(sc(2)),
            ]
        );
        // Subchannel 2 was not READY and 4 only connects, so nothing was republished
        // above; removing READY subchannel 1 changes the ready set.
        b.update_client_conn_state(&update(&[3, 4]), &mut cx)
            .unwrap();
        assert_eq!(cx.take(), [TestOp::Remove(sc(1)), TestOp::State(Ready)]);
        assert!(
            picks(&mut cx, 3)
                .iter()
                .all(|p| *p == PickResult::Pick(sc(3)))
        );
        // A late report from a removed subchannel is ignored.
        report(b.as_mut(), &mut cx, 1, Idle);
        assert_eq!(cx.take(), []);
    }

    #[test]
    fn duplicates_are_dropped() {
        let mut b = round_robin_builder().build();
        let mut cx = TestContext::default();
        b.update_client_conn_state(&update(&[1, 2, 1, 2]), &mut cx)
            .unwrap();
        assert_eq!(
            cx.take(),
            [
                TestOp::New(sc(1), vec![addr(1)]),
                TestOp::Connect(sc(1)),
                TestOp::New(sc(2), vec![addr(2)]),
                TestOp::Connect(sc(2)),
                TestOp::State(Connecting),
            ]
        );
    }

    #[test]
    fn one_subchannel_per_endpoint() {
        let mut b = round_robin_builder().build();
        let mut cx = TestContext::default();
        // [1, 2] and [2, 1] are the same endpoint; [3, 3] is endpoint [3]; an endpoint
        // without addresses is nothing.
        let state = endpoints(vec![vec![1, 2], vec![2, 1], vec![3, 3], vec![]]);
        b.update_client_conn_state(&state, &mut cx).unwrap();
        assert_eq!(
            cx.take(),
            [
                TestOp::New(sc(1), vec![addr(1), addr(2)]),
                TestOp::Connect(sc(1)),
                TestOp::New(sc(2), vec![addr(3)]),
                TestOp::Connect(sc(2)),
                TestOp::State(Connecting),
            ]
        );
        // A new order keeps the subchannel but passes the order on (A61); a changed
        // set is a new endpoint.
        let state = endpoints(vec![vec![2, 1], vec![3, 4]]);
        b.update_client_conn_state(&state, &mut cx).unwrap();
        assert_eq!(
            cx.take(),
            [
                TestOp::UpdateAddresses(sc(1), vec![addr(2), addr(1)]),
                TestOp::New(sc(3), vec![addr(3), addr(4)]),
                TestOp::Connect(sc(3)),
                TestOp::Remove(sc(2)),
            ]
        );
    }

    #[test]
    fn empty_update_removes_all_and_fails() {
        let (mut b, mut cx) = started(2);
        report(b.as_mut(), &mut cx, 1, Ready);
        cx.take();
        let err = b
            .update_client_conn_state(&update(&[]), &mut cx)
            .unwrap_err();
        assert_eq!(err, BadResolverState("produced zero addresses".into()));
        assert_eq!(
            cx.take(),
            [
                TestOp::Remove(sc(1)),
                TestOp::Remove(sc(2)),
                TestOp::State(TransientFailure),
            ]
        );
        assert_eq!(
            cx.pick(),
            PickResult::Fail(Status::unavailable(
                "last resolver error: produced zero addresses"
            ))
        );
        // Endpoints without addresses are no better.
        let err = b.update_client_conn_state(&endpoints(vec![vec![]]), &mut cx);
        assert!(err.is_err());
        // Same state and error: nothing new to publish.
        assert_eq!(cx.take(), []);
    }

    #[test]
    fn resolver_error_without_subchannels_fails_picks() {
        let mut b = round_robin_builder().build();
        let mut cx = TestContext::default();
        b.resolver_error(&Status::unavailable("dns: no such host"), &mut cx);
        assert_eq!(cx.take(), [TestOp::State(TransientFailure)]);
        assert_eq!(
            cx.pick(),
            PickResult::Fail(Status::unavailable(
                "last resolver error: dns: no such host"
            ))
        );
    }

    #[test]
    fn resolver_error_with_working_subchannels_is_kept_for_later() {
        let (mut b, mut cx) = started(1);
        report(b.as_mut(), &mut cx, 1, Ready);
        cx.take();
        b.resolver_error(&Status::unavailable("dns down"), &mut cx);
        assert_eq!(cx.take(), []);
        assert_eq!(cx.pick(), PickResult::Pick(sc(1)));
        report(b.as_mut(), &mut cx, 1, Idle);
        report(b.as_mut(), &mut cx, 1, Connecting);
        report(b.as_mut(), &mut cx, 1, TransientFailure);
        assert_eq!(
            cx.take(),
            [
                TestOp::Connect(sc(1)),
                TestOp::State(Connecting),
                TestOp::State(TransientFailure),
            ]
        );
        assert_eq!(
            cx.pick(),
            PickResult::Fail(Status::unavailable(
                "last connection error: sc1 refused; last resolver error: dns down"
            ))
        );
        // Failing already: a new resolver error is published at once.
        b.resolver_error(&Status::unavailable("dns still down"), &mut cx);
        assert_eq!(cx.take(), [TestOp::State(TransientFailure)]);
        // A good update with the same addresses touches no subchannel, but it clears the
        // resolver error, so the failure message changes.
        b.update_client_conn_state(&update(&[1]), &mut cx).unwrap();
        assert_eq!(cx.take(), [TestOp::State(TransientFailure)]);
        assert_eq!(
            cx.pick(),
            PickResult::Fail(Status::unavailable("last connection error: sc1 refused"))
        );
    }

    #[test]
    fn three_ready_share_picks_evenly() {
        let (mut b, mut cx) = started(3);
        cx.randoms = [0, 0, 5].into();
        for i in 1..=3 {
            report(b.as_mut(), &mut cx, i, Ready);
        }
        let mut counts = [0usize; 3];
        for p in picks(&mut cx, 300) {
            match p {
                PickResult::Pick(SubchannelId(i)) => counts[i as usize - 1] += 1,
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(counts, [100, 100, 100]);
    }

    #[test]
    fn exit_idle_and_close() {
        let mut b = round_robin_builder().build();
        let mut cx = TestContext::default();
        b.update_client_conn_state(&update(&[1, 2]), &mut cx)
            .unwrap();
        report(b.as_mut(), &mut cx, 2, Connecting);
        cx.take();
        // Subchannel 1 has not left IDLE yet: asked again; 2 is connecting.
        b.exit_idle(&mut cx);
        assert_eq!(cx.take(), [TestOp::Connect(sc(1))]);
        b.close(&mut cx);
        assert_eq!(cx.take(), [TestOp::Remove(sc(1)), TestOp::Remove(sc(2))]);
        report(b.as_mut(), &mut cx, 2, Ready);
        assert_eq!(cx.take(), []);
    }
}
