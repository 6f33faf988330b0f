//! One stream's state inside a connection: RFC 9113 §5.1 states, windows, send queue.

use std::collections::VecDeque;

use bytes::Bytes;

use super::event::Header;
use super::flow::{SendWindow, StreamRecvWindow};
use crate::ErrorCode;
use crate::frame::StreamId;

/// RFC 9113 §5.1 states a live stream can be in. `closed` streams are removed from the
/// connection; the reserved states never occur because push is disabled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum State {
    /// Opened by our application but its HEADERS not written yet (waiting for the
    /// peer's concurrency quota or for the writer). The peer has not seen it.
    Idle,
    /// Both sides may send.
    Open,
    /// We sent END_STREAM; the peer may still send.
    HalfClosedLocal,
    /// The peer sent END_STREAM; we may still send.
    HalfClosedRemote,
}

/// Where the stream is in receiving a message exchange: HEADERS, DATA…, trailers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RecvPhase {
    /// No HEADERS received yet.
    AwaitingHeaders,
    /// Initial HEADERS received; DATA and trailers may follow.
    Body,
    /// END_STREAM received.
    Done,
}

/// What a stream's send queue is waiting for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wait {
    /// Nothing queued.
    Nothing,
    /// Writable now.
    Ready,
    /// A WINDOW_UPDATE for this stream (or a larger SETTINGS_INITIAL_WINDOW_SIZE).
    StreamWindow,
    /// A WINDOW_UPDATE for the connection.
    ConnWindow,
}

/// Something queued for sending on a stream, in order.
#[derive(Debug)]
pub(crate) enum Item {
    Headers {
        fields: Vec<Header>,
        end_stream: bool,
    },
    Data {
        data: Bytes,
        end_stream: bool,
    },
}

#[derive(Debug)]
pub(crate) struct Stream {
    pub(crate) id: StreamId,
    pub(crate) state: State,
    pub(crate) recv_phase: RecvPhase,
    /// What the peer lets us send.
    pub(crate) send_window: SendWindow,
    /// What we let the peer send.
    pub(crate) recv_window: StreamRecvWindow,
    pub(crate) queue: VecDeque<Item>,
    /// DATA bytes in `queue`.
    pub(crate) queued_bytes: usize,
    /// END_STREAM has been queued: nothing more may be sent.
    pub(crate) send_finished: bool,
    /// Initial HEADERS queued or sent.
    pub(crate) headers_queued: bool,
    /// In the writer's ready list.
    pub(crate) scheduled: bool,
    /// Counted against the concurrency limit of whoever did not open it.
    pub(crate) counted: bool,
    /// The application was told the send buffer is full and waits for room.
    pub(crate) wants_writable: bool,
    /// Reset with this code once our END_STREAM is written, if the peer is still sending
    /// (a server that answered before the request ended).
    pub(crate) reset_after_end: Option<ErrorCode>,
}

impl Stream {
    pub(crate) fn new(id: StreamId, state: State, send_window: u32, recv_window: u32) -> Stream {
        Stream {
            id,
            state,
            recv_phase: RecvPhase::AwaitingHeaders,
            send_window: SendWindow::new(send_window),
            recv_window: StreamRecvWindow::new(recv_window),
            queue: VecDeque::new(),
            queued_bytes: 0,
            send_finished: false,
            headers_queued: false,
            scheduled: false,
            counted: false,
            wants_writable: false,
            reset_after_end: None,
        }
    }

    /// The peer may still send on it (§5.1: open or half-closed (local)).
    pub(crate) fn can_recv(&self) -> bool {
        matches!(self.state, State::Open | State::HalfClosedLocal)
    }

    /// What the head of the send queue waits for, given the connection's send window.
    pub(crate) fn wait(&self, conn_window: u32) -> Wait {
        match self.queue.front() {
            None => Wait::Nothing,
            // HEADERS and empty DATA are not flow-controlled (RFC 9113 §6.9).
            Some(Item::Headers { .. }) => Wait::Ready,
            Some(Item::Data { data, .. }) if data.is_empty() => Wait::Ready,
            Some(Item::Data { .. }) if self.send_window.available() == 0 => Wait::StreamWindow,
            Some(Item::Data { .. }) if conn_window == 0 => Wait::ConnWindow,
            Some(Item::Data { .. }) => Wait::Ready,
        }
    }

    /// We wrote END_STREAM: §5.1 transition. Returns true when the stream is now closed.
    pub(crate) fn on_end_stream_sent(&mut self) -> bool {
        match self.state {
            State::Idle | State::Open => {
                self.state = State::HalfClosedLocal;
                false
            }
            State::HalfClosedRemote => true,
            State::HalfClosedLocal => false,
        }
    }

    /// The peer sent END_STREAM: §5.1 transition. Returns true when the stream is closed.
    pub(crate) fn on_end_stream_received(&mut self) -> bool {
        self.recv_phase = RecvPhase::Done;
        match self.state {
            State::Open | State::Idle => {
                self.state = State::HalfClosedRemote;
                false
            }
            State::HalfClosedLocal => true,
            State::HalfClosedRemote => false,
        }
    }
}
