//! The client channel (grpc-go's `ClientConn`) as a pure state machine: target parsing,
//! service config, connection backoff, the balancer API with `pick_first` and
//! `round_robin`, subchannels with their connectivity state machine, and the channel
//! that ties them to calls.

pub mod backoff;
pub mod balancer;
pub mod base;
pub mod client_channel;
pub mod pick_first;
pub mod random;
pub mod round_robin;
pub mod service_config;
pub mod state;
pub mod subchannel;
pub mod target;
pub mod trace;
