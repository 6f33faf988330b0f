//! The `grpc.testing` messages of the interop tests, declared by hand with prost
//! derives. Names and field numbers are those of grpc/grpc
//! `src/proto/grpc/testing/{empty,messages}.proto` (the wire interface); fields this
//! crate never uses (ORCA reports, gRPCLB route) are left out and skipped on decode as
//! unknown fields.

/// `grpc.testing.Empty`: no fields.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct Empty {}

/// `grpc.testing.BoolValue`: a bool that can be absent (a wrapper).
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct BoolValue {
    /// The value.
    #[prost(bool, tag = "1")]
    pub value: bool,
}

/// `grpc.testing.PayloadType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum PayloadType {
    /// Compressible text (the only type left in the protocol).
    Compressable = 0,
}

/// `grpc.testing.Payload`: bytes to make a message big.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Payload {
    /// A [`PayloadType`].
    #[prost(enumeration = "PayloadType", tag = "1")]
    pub r#type: i32,
    /// The bytes: shared, so payloads are built and decoded without copies.
    #[prost(bytes = "bytes", tag = "2")]
    pub body: bytes::Bytes,
}

/// `grpc.testing.EchoStatus`: the status a client asks the server to end with.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct EchoStatus {
    /// A gRPC status code.
    #[prost(int32, tag = "1")]
    pub code: i32,
    /// The status message.
    #[prost(string, tag = "2")]
    pub message: String,
}

/// `grpc.testing.SimpleRequest`: the request of `UnaryCall`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SimpleRequest {
    /// The [`PayloadType`] of the response's payload.
    #[prost(enumeration = "PayloadType", tag = "1")]
    pub response_type: i32,
    /// The size of the response's payload.
    #[prost(int32, tag = "2")]
    pub response_size: i32,
    /// A payload carried by the request.
    #[prost(message, optional, tag = "3")]
    pub payload: Option<Payload>,
    /// Fill `SimpleResponse.username`.
    #[prost(bool, tag = "4")]
    pub fill_username: bool,
    /// Fill `SimpleResponse.oauth_scope`.
    #[prost(bool, tag = "5")]
    pub fill_oauth_scope: bool,
    /// Compress the response.
    #[prost(message, optional, tag = "6")]
    pub response_compressed: Option<BoolValue>,
    /// End the call with this status.
    #[prost(message, optional, tag = "7")]
    pub response_status: Option<EchoStatus>,
    /// The server must check that this request came compressed.
    #[prost(message, optional, tag = "8")]
    pub expect_compressed: Option<BoolValue>,
    /// Fill `SimpleResponse.server_id`.
    #[prost(bool, tag = "9")]
    pub fill_server_id: bool,
    /// Fill `SimpleResponse.grpclb_route_type`.
    #[prost(bool, tag = "10")]
    pub fill_grpclb_route_type: bool,
}

/// `grpc.testing.SimpleResponse`: the response of `UnaryCall`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct SimpleResponse {
    /// The payload of the requested size.
    #[prost(message, optional, tag = "1")]
    pub payload: Option<Payload>,
    /// The authenticated user.
    #[prost(string, tag = "2")]
    pub username: String,
    /// The OAuth scope.
    #[prost(string, tag = "3")]
    pub oauth_scope: String,
    /// The server's identity.
    #[prost(string, tag = "4")]
    pub server_id: String,
    /// The gRPCLB route (`GrpclbRouteType`).
    #[prost(int32, tag = "5")]
    pub grpclb_route_type: i32,
    /// The server's host name.
    #[prost(string, tag = "6")]
    pub hostname: String,
}

/// `grpc.testing.StreamingInputCallRequest`: one request of `StreamingInputCall`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct StreamingInputCallRequest {
    /// The payload.
    #[prost(message, optional, tag = "1")]
    pub payload: Option<Payload>,
    /// The server must check that this request came compressed.
    #[prost(message, optional, tag = "2")]
    pub expect_compressed: Option<BoolValue>,
}

/// `grpc.testing.StreamingInputCallResponse`: the answer of `StreamingInputCall`.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct StreamingInputCallResponse {
    /// The sum of the payload sizes received.
    #[prost(int32, tag = "1")]
    pub aggregated_payload_size: i32,
}

/// `grpc.testing.ResponseParameters`: one response a streaming call asks for.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct ResponseParameters {
    /// The payload size.
    #[prost(int32, tag = "1")]
    pub size: i32,
    /// Wait this long (µs) before sending it.
    #[prost(int32, tag = "2")]
    pub interval_us: i32,
    /// Compress it.
    #[prost(message, optional, tag = "3")]
    pub compressed: Option<BoolValue>,
}

/// `grpc.testing.StreamingOutputCallRequest`: the request of the server-streaming and
/// bidi calls.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StreamingOutputCallRequest {
    /// The [`PayloadType`] of the responses.
    #[prost(enumeration = "PayloadType", tag = "1")]
    pub response_type: i32,
    /// One entry per response.
    #[prost(message, repeated, tag = "2")]
    pub response_parameters: Vec<ResponseParameters>,
    /// A payload carried by the request.
    #[prost(message, optional, tag = "3")]
    pub payload: Option<Payload>,
    /// End the call with this status.
    #[prost(message, optional, tag = "7")]
    pub response_status: Option<EchoStatus>,
}

/// `grpc.testing.StreamingOutputCallResponse`: one response of the streaming calls.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct StreamingOutputCallResponse {
    /// The payload of the requested size.
    #[prost(message, optional, tag = "1")]
    pub payload: Option<Payload>,
}

/// Payloads up to this size are slices of one shared run of zeros.
const SHARED_ZEROS: usize = 1 << 20;

/// A payload of `size` zero bytes (what the test cases send and expect). Up to 1 MiB
/// it borrows from zeros allocated once per process: a server streaming large
/// messages then spends its time on gRPC, not on faulting in a fresh megabyte of
/// zeros for every message.
pub fn zero_payload(size: usize) -> Payload {
    static ZEROS: std::sync::OnceLock<bytes::Bytes> = std::sync::OnceLock::new();
    let body = if size <= SHARED_ZEROS {
        ZEROS
            .get_or_init(|| bytes::Bytes::from(vec![0; SHARED_ZEROS]))
            .slice(..size)
    } else {
        bytes::Bytes::from(vec![0; size])
    };
    Payload {
        r#type: PayloadType::Compressable as i32,
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn field_numbers_on_the_wire() {
        // SimpleRequest{response_size: 1, response_compressed: {true}}: field 2 varint,
        // field 6 length-delimited holding field 1 varint.
        let req = SimpleRequest {
            response_size: 1,
            response_compressed: Some(BoolValue { value: true }),
            ..Default::default()
        };
        assert_eq!(req.encode_to_vec(), [0x10, 0x01, 0x32, 0x02, 0x08, 0x01]);
        let req = StreamingOutputCallRequest {
            response_status: Some(EchoStatus {
                code: 2,
                message: "x".into(),
            }),
            ..Default::default()
        };
        assert_eq!(
            req.encode_to_vec(),
            [0x3a, 0x05, 0x08, 0x02, 0x12, 0x01, b'x']
        );
    }
}
