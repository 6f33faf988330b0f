//! Hostile header blocks into our HPACK decoder, several blocks on one connection state.
//!
//! Checks: no panic; the dynamic table never exceeds its limit; fields handed out never
//! exceed the header-list limit; a connection error is final for that connection.
#![no_main]

use bytes::Bytes;
use grpc_sansio::hpack::Decoder;
use libfuzzer_sys::fuzz_target;

const TABLE: usize = 4096;
const LIST: usize = 16 * 1024;

fuzz_target!(|data: &[u8]| {
    let mut decoder = Decoder::new(TABLE, LIST);
    // 0xA5 0x5A separates blocks, so one input covers a sequence of blocks that share the
    // dynamic table.
    let input = Bytes::copy_from_slice(data);
    let mut start = 0;
    let mut i = 0;
    while start <= input.len() {
        let end = (i..input.len().saturating_sub(1))
            .find(|&j| input[j] == 0xA5 && input[j + 1] == 0x5A)
            .unwrap_or(input.len());
        let block = input.slice(start..end);
        let mut list_size = 0usize;
        let result = decoder.decode(&block, |field| {
            list_size += field.name.len() + field.value.len() + 32;
        });
        // The field that crosses the limit is never handed out.
        assert!(list_size <= LIST, "handed out {list_size} bytes of fields");
        assert!(decoder.table_size() <= decoder.table_max_size());
        assert!(decoder.table_max_size() <= TABLE);
        if let Err(e) = result {
            if e.is_connection_error() {
                return;
            }
        }
        start = end + 2;
        i = start;
    }
});
