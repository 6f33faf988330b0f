//! An in-memory HTTP/2 exchange between a gRPC client and server, built from the core's
//! frame codec and HPACK: the client sends the preface, SETTINGS, a unary request
//! (HEADERS + DATA) and the server answers with SETTINGS, a SETTINGS ACK, response
//! HEADERS, a DATA message and trailers. Every frame is printed as the receiver decoded it.
//!
//! Run with `cargo run -p grpc-sansio --example demo`.

use bytes::{BufMut, Bytes, BytesMut};
use grpc_sansio::frame::{
    self, Data, DecoderConfig, Frame, FrameDecoder, Headers, PrefaceCheck, Settings, StreamId,
    WindowUpdate,
};
use grpc_sansio::hpack::{Decoder, Encoder, HeaderField};

/// One side of the exchange: its HPACK state and the decoder for what it receives.
struct Peer {
    name: &'static str,
    encoder: Encoder,
    decoder: Decoder,
    frames: FrameDecoder,
    inbox: BytesMut,
}

impl Peer {
    fn new(name: &'static str) -> Self {
        Peer {
            name,
            encoder: Encoder::new(),
            decoder: Decoder::new(4096, 16 * 1024),
            frames: FrameDecoder::new(DecoderConfig::default()),
            inbox: BytesMut::new(),
        }
    }

    fn headers(&mut self, stream: u32, fields: &[(&str, &str)], end_stream: bool) -> Frame {
        let mut block = BytesMut::new();
        self.encoder.encode(
            fields
                .iter()
                .map(|(n, v)| HeaderField::new(n.as_bytes(), v.as_bytes())),
            &mut block,
        );
        Frame::Headers(Headers {
            stream_id: StreamId::new(stream),
            header_block: block.freeze(),
            end_stream,
            priority: None,
            pad_len: None,
        })
    }

    /// Decodes and prints everything waiting in the inbox.
    fn receive(&mut self, from: &str) -> Result<(), Box<dyn std::error::Error>> {
        while let Some(frame) = self.frames.decode(&mut self.inbox)? {
            println!("{from:>6} -> {:<6} {}", self.name, describe(&frame));
            if let Frame::Headers(h) = &frame {
                self.decoder.decode(&h.header_block, |f| {
                    println!(
                        "{:>22}{}: {}",
                        "",
                        String::from_utf8_lossy(&f.name),
                        String::from_utf8_lossy(&f.value)
                    );
                })?;
            }
        }
        Ok(())
    }
}

fn describe(frame: &Frame) -> String {
    match frame {
        Frame::Settings(s) if s.ack => "SETTINGS ack".to_string(),
        Frame::Settings(s) => {
            let params: Vec<String> = s
                .pairs()
                .map(|(id, value)| format!("{}={value}", setting_name(id)))
                .collect();
            format!("SETTINGS {}", params.join(" "))
        }
        Frame::Headers(h) => format!(
            "HEADERS stream={} end_stream={} block={} bytes",
            h.stream_id.value(),
            h.end_stream,
            h.header_block.len()
        ),
        Frame::Data(d) => format!(
            "DATA stream={} end_stream={} payload={:02x?}",
            d.stream_id.value(),
            d.end_stream,
            &d.payload[..]
        ),
        Frame::WindowUpdate(w) => format!(
            "WINDOW_UPDATE stream={} increment={}",
            w.stream_id.value(),
            w.increment
        ),
        other => format!("{other:?}"),
    }
}

fn setting_name(id: u16) -> &'static str {
    match id {
        frame::SETTINGS_HEADER_TABLE_SIZE => "HEADER_TABLE_SIZE",
        frame::SETTINGS_ENABLE_PUSH => "ENABLE_PUSH",
        frame::SETTINGS_MAX_CONCURRENT_STREAMS => "MAX_CONCURRENT_STREAMS",
        frame::SETTINGS_INITIAL_WINDOW_SIZE => "INITIAL_WINDOW_SIZE",
        frame::SETTINGS_MAX_FRAME_SIZE => "MAX_FRAME_SIZE",
        frame::SETTINGS_MAX_HEADER_LIST_SIZE => "MAX_HEADER_LIST_SIZE",
        _ => "UNKNOWN",
    }
}

/// A gRPC length-prefixed message: compression flag, 4-byte length, payload.
fn grpc_message(payload: &[u8]) -> Bytes {
    let mut buf = BytesMut::with_capacity(5 + payload.len());
    buf.put_u8(0);
    buf.put_u32(payload.len() as u32);
    buf.put_slice(payload);
    buf.freeze()
}

fn send(frame: Frame, to: &mut Peer) -> Result<(), frame::EncodeError> {
    frame.encode(&mut to.inbox, frame::DEFAULT_MAX_FRAME_SIZE)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut client = Peer::new("client");
    let mut server = Peer::new("server");

    // Client start-up: preface, SETTINGS, and a connection WINDOW_UPDATE for a larger window.
    server.inbox.extend_from_slice(frame::PREFACE);
    match frame::check_preface(&server.inbox) {
        PrefaceCheck::Complete => {
            println!(
                "client -> server preface {:?}",
                String::from_utf8_lossy(frame::PREFACE)
            );
            let _ = server.inbox.split_to(frame::PREFACE.len());
        }
        other => return Err(format!("bad preface: {other:?}").into()),
    }
    let client_settings = Settings {
        enable_push: Some(false),
        initial_window_size: Some(1 << 20),
        max_header_list_size: Some(16 * 1024),
        ..Settings::default()
    };
    send(Frame::Settings(client_settings), &mut server)?;
    send(
        Frame::WindowUpdate(WindowUpdate {
            stream_id: StreamId::ZERO,
            increment: (1 << 20) - 65_535,
        }),
        &mut server,
    )?;
    let request = client.headers(
        1,
        &[
            (":method", "POST"),
            (":scheme", "http"),
            (":path", "/helloworld.Greeter/SayHello"),
            (":authority", "localhost"),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
            ("grpc-timeout", "1S"),
            ("user-agent", "grpc-rust-sansio/0.1.0"),
        ],
        false,
    );
    send(request, &mut server)?;
    send(
        Frame::Data(Data {
            stream_id: StreamId::new(1),
            payload: grpc_message(b"\x0a\x05world"),
            end_stream: true,
            pad_len: None,
        }),
        &mut server,
    )?;
    server.receive("client")?;

    // Server: its SETTINGS, the ACK of the client's, then the response.
    send(
        Frame::Settings(Settings {
            max_concurrent_streams: Some(100),
            ..Settings::default()
        }),
        &mut client,
    )?;
    send(Frame::Settings(Settings::ack()), &mut client)?;
    let response = server.headers(
        1,
        &[(":status", "200"), ("content-type", "application/grpc")],
        false,
    );
    send(response, &mut client)?;
    send(
        Frame::Data(Data {
            stream_id: StreamId::new(1),
            payload: grpc_message(b"\x0a\x0bhello world"),
            end_stream: false,
            pad_len: None,
        }),
        &mut client,
    )?;
    let trailers = server.headers(1, &[("grpc-status", "0"), ("grpc-message", "OK")], true);
    send(trailers, &mut client)?;
    client.receive("server")?;

    // The client ACKs the server's SETTINGS.
    send(Frame::Settings(Settings::ack()), &mut server)?;
    server.receive("client")?;
    Ok(())
}
