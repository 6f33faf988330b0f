//! Structured trace events of a channel and its subchannels, with a formatter giving
//! grpc-go-like log lines (its `channelz` trace plus `[core]` logs), so a run can be
//! compared line by line with grpc-go's.

use std::fmt;
use std::time::Instant;

use super::balancer::SubchannelId;
use super::state::ConnectivityState;
use super::target::Address;

/// What happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TraceKind {
    /// The channel was created for this target.
    ChannelCreated {
        /// The target as given.
        target: String,
    },
    /// The channel's aggregated state changed.
    ChannelState {
        /// The new state.
        state: ConnectivityState,
        /// The last connection error, with TRANSIENT_FAILURE.
        last_error: Option<String>,
    },
    /// A subchannel was created over these addresses.
    SubchannelCreated {
        /// Its addresses.
        addresses: Vec<Address>,
    },
    /// A subchannel's state changed.
    SubchannelState {
        /// The new state.
        state: ConnectivityState,
        /// The last connection error, with TRANSIENT_FAILURE.
        last_error: Option<String>,
    },
    /// A subchannel starts a connection attempt to this address.
    PickAddress {
        /// The address.
        address: Address,
    },
    /// A connection attempt failed.
    ConnectFailed {
        /// The address.
        address: Address,
        /// Why.
        error: String,
    },
    /// The resolver produced addresses (or an error).
    ResolverUpdate {
        /// How many endpoints, or the error.
        summary: String,
    },
    /// The channel switched load-balancing policy.
    BalancerSwitch {
        /// The policy's name.
        policy: String,
    },
    /// A call was transparently retried after an unprocessed stream.
    TransparentRetry {
        /// The method path.
        path: String,
    },
}

/// One trace event: when, which channel, which subchannel, what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceEvent {
    /// The virtual (or real) time it happened at.
    pub at: Instant,
    /// The channel's number.
    pub channel: u64,
    /// The subchannel concerned, if any.
    pub subchannel: Option<SubchannelId>,
    /// What happened.
    pub kind: TraceKind,
}

impl fmt::Display for TraceEvent {
    /// grpc-go's wording: `[Channel #1 SubChannel #2] Subchannel Connectivity change to
    /// CONNECTING`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.subchannel {
            Some(sc) => write!(f, "[Channel #{} {sc}] ", self.channel)?,
            None => write!(f, "[Channel #{}] ", self.channel)?,
        }
        match &self.kind {
            TraceKind::ChannelCreated { target } => {
                write!(f, "Channel created for target {target:?}")
            }
            TraceKind::ChannelState { state, last_error } => {
                write!(f, "Channel Connectivity change to {state}")?;
                match last_error {
                    Some(e) => write!(f, ", last error: {e}"),
                    None => Ok(()),
                }
            }
            TraceKind::SubchannelCreated { addresses } => {
                write!(f, "Subchannel created for addresses [")?;
                for (i, a) in addresses.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" ")?;
                    }
                    write!(f, "{a}")?;
                }
                f.write_str("]")
            }
            TraceKind::SubchannelState { state, last_error } => {
                write!(f, "Subchannel Connectivity change to {state}")?;
                match last_error {
                    Some(e) => write!(f, ", last error: {e}"),
                    None => Ok(()),
                }
            }
            TraceKind::PickAddress { address } => {
                write!(
                    f,
                    "Subchannel picks a new address {:?} to connect",
                    address.to_string()
                )
            }
            TraceKind::ConnectFailed { address, error } => write!(
                f,
                "Creating new client transport to {:?}: {error}",
                address.to_string()
            ),
            TraceKind::ResolverUpdate { summary } => write!(f, "Resolver state updated: {summary}"),
            TraceKind::BalancerSwitch { policy } => {
                write!(f, "Channel switches to new LB policy {policy:?}")
            }
            TraceKind::TransparentRetry { path } => {
                write!(f, "Transparent retry of {path} on a new pick")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_read_like_grpc_go() {
        let at = crate::test_clock::t0();
        let ev = |subchannel, kind| TraceEvent {
            at,
            channel: 1,
            subchannel,
            kind,
        };
        let addr = Address::Name {
            host: "localhost".into(),
            port: 50051,
        };
        assert_eq!(
            ev(
                Some(SubchannelId(2)),
                TraceKind::SubchannelState {
                    state: ConnectivityState::Connecting,
                    last_error: None
                }
            )
            .to_string(),
            "[Channel #1 SubChannel #2] Subchannel Connectivity change to CONNECTING"
        );
        assert_eq!(
            ev(
                Some(SubchannelId(2)),
                TraceKind::PickAddress { address: addr }
            )
            .to_string(),
            "[Channel #1 SubChannel #2] Subchannel picks a new address \"localhost:50051\" to connect"
        );
        assert_eq!(
            ev(
                None,
                TraceKind::ChannelState {
                    state: ConnectivityState::TransientFailure,
                    last_error: Some("connection refused".into())
                }
            )
            .to_string(),
            "[Channel #1] Channel Connectivity change to TRANSIENT_FAILURE, last error: connection refused"
        );
    }
}
