//! The client channel (grpc-go's `ClientConn`) as a pure state machine: target parsing,
//! service config, connection backoff, and (to come) resolvers, balancers, subchannels
//! and pickers.

pub mod backoff;
pub mod service_config;
pub mod target;
