//! The services simulated servers run: the [`Service`] trait users implement to put
//! their own logic behind a simulated host, and [`EchoService`], the default.

use std::any::Any;
use std::collections::VecDeque;
use std::fmt;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use grpc_sansio::grpc::server::RequestHead;
use grpc_sansio::grpc::status::Status;
use grpc_sansio::grpc::transport::CallId;

use super::message;
use super::workload::CallKind;

/// Names one server-side call for the whole run: the host, the link (connection) and
/// the call on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceCallId {
    /// Host index.
    pub host: usize,
    /// The link (one per accepted connection, numbered from 0 in accept order).
    pub link: u64,
    /// The call on that connection.
    pub call: CallId,
}

/// What happens to a server-side call, in order: `Started`, then any `Message`s, then
/// `HalfClosed`, unless `Failed` ends it first. After `Failed` (or once the service's
/// [`finish`](ServiceCall::finish) has gone out) the call gets no more events.
#[derive(Debug)]
pub enum CallEvent<'a> {
    /// A request arrived; `head.path` names the method, `head.metadata` carries the
    /// client's metadata.
    Started(&'a RequestHead),
    /// A request message (already unframed and decompressed).
    Message(Bytes),
    /// The client finished sending.
    HalfClosed,
    /// The call ended before the service finished it: the client cancelled, its
    /// deadline passed, the stream was reset or the connection was lost. Nothing more
    /// can be sent.
    Failed(Status),
}

/// A gRPC service run by every connection of a simulated host, single-threaded under
/// virtual time. One value serves every call of the host (so it may keep state across
/// calls and connections); per-call state can live in the call itself
/// ([`ServiceCall::set_state`]).
///
/// The simulator calls [`on_event`](Service::on_event) for each [`CallEvent`] and
/// writes what the service queued on the [`ServiceCall`] as the call's flow control
/// allows: messages in order, then the status. A service never blocks: to answer
/// later, [`finish_after`](ServiceCall::finish_after) a virtual delay. While a
/// [`SlowReader`](super::Fault::SlowReader) fault stalls its host, a service gets no
/// events and nothing it queued is written. The value survives
/// [`Restart`](super::Fault::Restart) faults (which reset the host's connections).
pub trait Service {
    /// One event of `call`.
    fn on_event(&mut self, call: &mut ServiceCall<'_>, event: CallEvent<'_>);
}

/// Makes each host's service when a [`Sim`](super::Sim) is built: called with the host
/// index. A plain closure, so a test can share state (an `Rc<Cell<_>>`) with the
/// services it creates.
#[derive(Clone)]
pub struct ServiceFactory(Rc<dyn Fn(usize) -> Box<dyn Service>>);

impl ServiceFactory {
    /// A factory calling `make` for each host.
    pub fn new(make: impl Fn(usize) -> Box<dyn Service> + 'static) -> ServiceFactory {
        ServiceFactory(Rc::new(make))
    }

    pub(super) fn make(&self, host: usize) -> Box<dyn Service> {
        (self.0)(host)
    }
}

impl fmt::Debug for ServiceFactory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServiceFactory(..)")
    }
}

/// A server call as the simulator keeps it between events.
#[derive(Debug, Default)]
pub(super) struct HCall {
    /// Messages the service queued, not yet handed to the transport.
    pub(super) out: VecDeque<Bytes>,
    /// The status, and when it may go (after every queued message).
    pub(super) finish: Option<(Instant, Status)>,
    /// A time the simulator must wake at (a delayed finish).
    pub(super) wake: Option<Instant>,
    /// The service's own per-call state.
    pub(super) state: Option<Box<dyn Any>>,
}

/// One call, as a [`Service`] sees it during [`on_event`](Service::on_event): who it
/// is, the virtual time, its per-call state, and how to answer.
pub struct ServiceCall<'a> {
    pub(super) id: ServiceCallId,
    pub(super) start: Instant,
    pub(super) now: Instant,
    pub(super) call: &'a mut HCall,
    pub(super) violation: &'a mut Option<(&'static str, String)>,
}

impl ServiceCall<'_> {
    /// The call's name for the whole run.
    pub fn id(&self) -> ServiceCallId {
        self.id
    }

    /// Virtual time since the start of the run.
    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// Queues a response message. Nothing queued is dropped: the simulator writes it
    /// as the call's send buffer allows (unless the call fails first).
    pub fn send(&mut self, message: Bytes) {
        self.call.out.push_back(message);
    }

    /// Ends the call with `status` once every queued message has been written. The
    /// first finish wins.
    pub fn finish(&mut self, status: Status) {
        self.finish_after(Duration::ZERO, status);
    }

    /// [`finish`](Self::finish), but not before `delay` of virtual time has passed (a
    /// slow handler). The first finish wins.
    pub fn finish_after(&mut self, delay: Duration, status: Status) {
        if self.call.finish.is_some() {
            return;
        }
        let at = self.now + delay;
        self.call.finish = Some((at, status));
        if !delay.is_zero() {
            self.call.wake = Some(at);
        }
    }

    /// True once the service has finished the call.
    pub fn is_finished(&self) -> bool {
        self.call.finish.is_some()
    }

    /// The call's state set by [`set_state`](Self::set_state), if it is a `T`.
    pub fn state<T: 'static>(&mut self) -> Option<&mut T> {
        self.call.state.as_mut()?.downcast_mut()
    }

    /// Keeps `state` with the call until it ends.
    pub fn set_state<T: 'static>(&mut self, state: T) {
        self.call.state = Some(Box::new(state));
    }

    /// Reports a broken expectation: the run fails with `invariant` and `detail`,
    /// with the seed and the trace, like the simulator's own invariants.
    pub fn violation(&mut self, invariant: &'static str, detail: impl Into<String>) {
        if self.violation.is_none() {
            *self.violation = Some((invariant, detail.into()));
        }
    }
}

/// The default service: the four echo methods of [`CallKind`], on self-checking
/// [`message`]s. Unary and client-streaming calls get every request back after the
/// client half-closes, bidi calls each request at once, server-streaming calls the
/// count and size their request names. A request's `x-delay-ms` metadata delays the
/// status (a slow handler). A request out of order or corrupted breaks the invariant
/// "requests arrive in order, intact"; an unknown method is UNIMPLEMENTED.
#[derive(Clone, Copy, Debug, Default)]
pub struct EchoService;

/// One echo call's state.
#[derive(Debug)]
struct Echo {
    kind: CallKind,
    delay: Duration,
    received: Vec<Bytes>,
    next_seq: u32,
}

impl Service for EchoService {
    fn on_event(&mut self, call: &mut ServiceCall<'_>, event: CallEvent<'_>) {
        let id = call.id();
        match event {
            CallEvent::Started(head) => {
                let Some(kind) = std::str::from_utf8(&head.path)
                    .ok()
                    .and_then(CallKind::from_path)
                else {
                    call.finish(Status::unimplemented("no such method"));
                    return;
                };
                let delay = head
                    .metadata
                    .get_str("x-delay-ms")
                    .and_then(|s| s.parse().ok())
                    .map_or(Duration::ZERO, Duration::from_millis);
                call.set_state(Echo {
                    kind,
                    delay,
                    received: Vec::new(),
                    next_seq: 0,
                });
            }
            CallEvent::Message(m) => {
                let Some(echo) = call.state::<Echo>() else {
                    return;
                };
                if echo.kind == CallKind::ServerStream {
                    match message::decode_stream_request(&m) {
                        Ok((tag, count, size)) => {
                            for i in 0..count {
                                call.send(message::encode(tag, i, size as usize));
                            }
                        }
                        Err(e) => call.violation(
                            "requests arrive in order, intact",
                            format!("link {} {:?}: bad stream request: {e}", id.link, id.call),
                        ),
                    }
                    return;
                }
                let expected = echo.next_seq;
                echo.next_seq += 1;
                let problem = match message::decode(&m) {
                    Ok(hd) if hd.seq == expected => None,
                    Ok(hd) => Some(format!(
                        "server read request #{} of call {:#x}, expected #{expected}",
                        hd.seq, hd.tag
                    )),
                    Err(e) => Some(format!("server read a bad request: {e}")),
                };
                if echo.kind == CallKind::Bidi {
                    call.send(m);
                } else {
                    echo.received.push(m);
                }
                if let Some(p) = problem {
                    call.violation(
                        "requests arrive in order, intact",
                        format!("link {} {:?}: {p}", id.link, id.call),
                    );
                }
            }
            CallEvent::HalfClosed => {
                let Some(echo) = call.state::<Echo>() else {
                    return;
                };
                let received = std::mem::take(&mut echo.received);
                let delay = echo.delay;
                for m in received {
                    call.send(m);
                }
                call.finish_after(delay, Status::ok());
            }
            CallEvent::Failed(_) => {}
        }
    }
}
