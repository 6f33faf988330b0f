//! How messages become bytes and back: the [`Codec`] trait, generic over the message
//! types of a method, with a pass-through [`BytesCodec`] and, behind the `prost`
//! feature, [`ProstCodec`] for protobuf messages.

use std::fmt;
use std::marker::PhantomData;

use bytes::Bytes;
use grpc_sansio::grpc::status::Status;

/// Encodes the messages one side sends and decodes the ones it receives.
///
/// A client codec encodes requests and decodes responses; a server codec the reverse.
/// Errors are statuses: INTERNAL for a message that cannot be encoded or decoded, as
/// grpc-go reports them.
pub trait Codec: Send + Sync + 'static {
    /// The messages this side sends.
    type Encode: Send + 'static;
    /// The messages this side receives.
    type Decode: Send + 'static;

    /// The wire bytes of one message (without the gRPC length prefix).
    fn encode(&self, message: Self::Encode) -> Result<Bytes, Status>;

    /// One message from its wire bytes.
    fn decode(&self, bytes: Bytes) -> Result<Self::Decode, Status>;
}

/// Messages as raw bytes, unchanged both ways.
#[derive(Clone, Copy, Debug, Default)]
pub struct BytesCodec;

impl Codec for BytesCodec {
    type Encode = Bytes;
    type Decode = Bytes;

    fn encode(&self, message: Bytes) -> Result<Bytes, Status> {
        Ok(message)
    }

    fn decode(&self, bytes: Bytes) -> Result<Bytes, Status> {
        Ok(bytes)
    }
}

/// Protobuf messages with prost: encodes `E`, decodes `D`.
#[cfg(feature = "prost")]
pub struct ProstCodec<E, D> {
    types: PhantomData<fn(E) -> D>,
}

#[cfg(feature = "prost")]
impl<E, D> ProstCodec<E, D> {
    /// A codec for these two message types.
    pub fn new() -> Self {
        ProstCodec { types: PhantomData }
    }
}

#[cfg(feature = "prost")]
impl<E, D> Default for ProstCodec<E, D> {
    fn default() -> Self {
        ProstCodec::new()
    }
}

#[cfg(feature = "prost")]
impl<E, D> Clone for ProstCodec<E, D> {
    fn clone(&self) -> Self {
        ProstCodec::new()
    }
}

#[cfg(feature = "prost")]
impl<E, D> fmt::Debug for ProstCodec<E, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ProstCodec")
    }
}

#[cfg(feature = "prost")]
impl<E, D> Codec for ProstCodec<E, D>
where
    E: prost::Message + Send + 'static,
    D: prost::Message + Default + Send + 'static,
{
    type Encode = E;
    type Decode = D;

    fn encode(&self, message: E) -> Result<Bytes, Status> {
        // One exact-size allocation; the transport sends it without another copy.
        Ok(Bytes::from(message.encode_to_vec()))
    }

    fn decode(&self, bytes: Bytes) -> Result<D, Status> {
        D::decode(bytes).map_err(|e| {
            Status::internal(format!(
                "grpc: failed to unmarshal the received message: {e}"
            ))
        })
    }
}

#[cfg(not(feature = "prost"))]
const _: PhantomData<fmt::Error> = PhantomData;

#[cfg(all(test, feature = "prost"))]
mod tests {
    use super::*;

    #[derive(Clone, PartialEq, prost::Message)]
    struct Pair {
        #[prost(string, tag = "1")]
        name: String,
        #[prost(int32, tag = "2")]
        n: i32,
    }

    #[test]
    fn prost_round_trip_and_garbage_is_internal() {
        let codec = ProstCodec::<Pair, Pair>::new();
        let msg = Pair {
            name: "x".into(),
            n: 7,
        };
        let bytes = codec.encode(msg.clone()).unwrap();
        assert_eq!(codec.decode(bytes).unwrap(), msg);
        let err = codec
            .decode(Bytes::from_static(&[0xff, 0xff, 0xff]))
            .unwrap_err();
        assert_eq!(err.code, grpc_sansio::grpc::code::Code::Internal);
    }
}
