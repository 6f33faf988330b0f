//! Connectivity states of channels and subchannels (grpc/grpc
//! `doc/connectivity-semantics-and-api.md`).

use std::fmt;

/// The connectivity state of a channel or a subchannel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConnectivityState {
    /// No connection and no attempt under way; the next call (or `connect`) starts one.
    Idle,
    /// A connection attempt is under way.
    Connecting,
    /// Connected: calls can be sent.
    Ready,
    /// The last attempt failed; waiting out the backoff (or, for a channel, no
    /// subchannel is usable).
    TransientFailure,
    /// Shut down for good.
    Shutdown,
}

impl ConnectivityState {
    /// grpc-go's spelling, as in its logs.
    pub const fn name(self) -> &'static str {
        match self {
            ConnectivityState::Idle => "IDLE",
            ConnectivityState::Connecting => "CONNECTING",
            ConnectivityState::Ready => "READY",
            ConnectivityState::TransientFailure => "TRANSIENT_FAILURE",
            ConnectivityState::Shutdown => "SHUTDOWN",
        }
    }

    /// True if a subchannel may move from `self` to `to` (grpc-go's `addrConn`):
    /// IDLE → CONNECTING; CONNECTING → READY / TRANSIENT_FAILURE / IDLE (an attempt
    /// that ends without a verdict, e.g. a GOAWAY during the handshake); READY → IDLE;
    /// TRANSIENT_FAILURE → IDLE (backoff over); anything → SHUTDOWN.
    pub const fn is_legal_subchannel_transition(self, to: ConnectivityState) -> bool {
        use ConnectivityState::*;
        matches!(
            (self, to),
            (Idle, Connecting)
                | (Connecting, Ready | TransientFailure | Idle)
                | (Ready, Idle)
                | (TransientFailure, Idle)
                | (Idle | Connecting | Ready | TransientFailure, Shutdown)
        )
    }
}

impl fmt::Display for ConnectivityState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::ConnectivityState::*;

    #[test]
    fn subchannel_transitions() {
        let all = [Idle, Connecting, Ready, TransientFailure, Shutdown];
        let legal: Vec<_> = all
            .iter()
            .flat_map(|&a| all.iter().map(move |&b| (a, b)))
            .filter(|&(a, b)| a.is_legal_subchannel_transition(b))
            .collect();
        assert_eq!(
            legal,
            [
                (Idle, Connecting),
                (Idle, Shutdown),
                (Connecting, Idle),
                (Connecting, Ready),
                (Connecting, TransientFailure),
                (Connecting, Shutdown),
                (Ready, Idle),
                (Ready, Shutdown),
                (TransientFailure, Idle),
                (TransientFailure, Shutdown),
            ]
        );
        assert_eq!(TransientFailure.to_string(), "TRANSIENT_FAILURE");
    }
}
