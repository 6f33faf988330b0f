//! Hostile bytes, time advances and commands into a server `Connection`.
#![no_main]

use grpc_sansio::h2::Role;
use libfuzzer_sys::fuzz_target;

mod connection;

fuzz_target!(|data: &[u8]| connection::run(Role::Server, data));
