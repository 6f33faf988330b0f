//! Flow-control windows (RFC 9113 §5.2, §6.9) as plain arithmetic: how much the peer lets
//! us send, how much we let the peer send, and when to tell the peer it may send more.
//!
//! Sizes on the wire are u32 values of at most 2^31-1. Windows are kept in i64: a
//! SETTINGS_INITIAL_WINDOW_SIZE decrease can make one negative (§6.9.2), and no sum of u32
//! inputs can then wrap.
//!
//! The receive side follows grpc-go's policy: a stream's window is credited back as the
//! application consumes data, the connection's as soon as data arrives, and credit is
//! announced in batches of a quarter of the window.

use crate::frame::MAX_WINDOW_SIZE;

/// [`MAX_WINDOW_SIZE`] (2^31-1, §6.9.1) in the type windows are computed in.
const MAX_WINDOW: i64 = MAX_WINDOW_SIZE as i64;

/// Credit is announced once it reaches `limit / UPDATE_DIVISOR`, a quarter of the window.
///
/// A WINDOW_UPDATE per DATA frame would cost a frame and a wake-up of the peer for every
/// frame received; waiting for the whole window would leave the sender idle for a round
/// trip every window. At a quarter the sender still holds three quarters of its window
/// while the update travels, and a window's worth of data costs about four updates.
const UPDATE_DIVISOR: i64 = 4;

/// A WINDOW_UPDATE would have taken a window past 2^31-1 (§6.9.1), or a change of
/// SETTINGS_INITIAL_WINDOW_SIZE would have (§6.9.2). FLOW_CONTROL_ERROR: the caller decides
/// whether it is a stream or a connection error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WindowOverflow;

/// The peer sent more flow-controlled data than the window allowed (§6.9.1):
/// FLOW_CONTROL_ERROR, on the stream or the connection depending on the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FlowControlViolation;

/// `value` as a u32, 0 if negative. Callers pass values within u32 already; saturating
/// rather than casting means a broken assumption gives a wrong number, never a wrapped one.
fn saturate_u32(value: i64) -> u32 {
    u32::try_from(value.max(0)).unwrap_or(u32::MAX)
}

/// Whether `owed` octets of credit are worth a WINDOW_UPDATE for a window of `limit`.
/// Never for 0: a zero increment is a PROTOCOL_ERROR (§6.9).
fn update_due(owed: i64, limit: i64) -> bool {
    owed > 0 && owed >= limit / UPDATE_DIVISOR
}

/// `data` octets of a DATA frame fit in `window`. An empty frame always fits: it is not
/// flow-controlled and may end a stream whose window is exhausted or negative (§6.9.1).
fn fits(data: u32, window: i64) -> bool {
    data == 0 || i64::from(data) <= window
}

/// Send side of one window, a stream's or the connection's: what the peer lets us send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SendWindow {
    /// Octets we may still send; negative after a SETTINGS_INITIAL_WINDOW_SIZE decrease,
    /// never above 2^31-1.
    window: i64,
}

impl SendWindow {
    /// A window of `initial` octets: 65,535 for the connection (§6.9.2), the peer's
    /// SETTINGS_INITIAL_WINDOW_SIZE for a stream. Values past 2^31-1, which the frame
    /// decoder already rejects, are taken as 2^31-1.
    pub(crate) fn new(initial: u32) -> Self {
        SendWindow {
            window: i64::from(initial).min(MAX_WINDOW),
        }
    }

    /// Octets that may be sent now; 0 while the window is negative.
    pub(crate) fn available(&self) -> u32 {
        saturate_u32(self.window)
    }

    /// The window itself, negative after a SETTINGS_INITIAL_WINDOW_SIZE decrease.
    pub(crate) fn window(&self) -> i64 {
        self.window
    }

    /// `n` octets of flow-controlled data were sent (the whole DATA payload, padding
    /// included). The caller sends at most [`available`](Self::available).
    pub(crate) fn consume(&mut self, n: u32) {
        debug_assert!(
            n <= self.available(),
            "sent {n} octets past the peer's window"
        );
        self.window = self.window.saturating_sub(i64::from(n));
    }

    /// The peer sent a WINDOW_UPDATE of `increment`. On error the window is unchanged and
    /// the caller answers with FLOW_CONTROL_ERROR (§6.9.1): RST_STREAM for a stream window,
    /// GOAWAY for the connection window.
    pub(crate) fn increase(&mut self, increment: u32) -> Result<(), WindowOverflow> {
        self.set_bounded(self.window.saturating_add(i64::from(increment)))
    }

    /// The peer's SETTINGS_INITIAL_WINDOW_SIZE went from `old` to `new`: a stream window
    /// moves by the difference and may become negative, until WINDOW_UPDATEs bring it back
    /// (§6.9.2). Never call this for the connection window, which only WINDOW_UPDATE moves.
    /// On error the window is unchanged; §6.9.2 makes it a connection FLOW_CONTROL_ERROR.
    pub(crate) fn adjust_initial(&mut self, old: u32, new: u32) -> Result<(), WindowOverflow> {
        let delta = i64::from(new) - i64::from(old);
        self.set_bounded(self.window.saturating_add(delta))
    }

    fn set_bounded(&mut self, window: i64) -> Result<(), WindowOverflow> {
        if window > MAX_WINDOW {
            return Err(WindowOverflow);
        }
        self.window = window;
        Ok(())
    }
}

/// Receive side of one stream's window: what we let the peer send on it, credited back as
/// the application consumes the data, so a reader that stops reading stops the sender.
///
/// `window` is the peer's view once the frames we already sent have reached it, and at all
/// times `window + unconsumed + unannounced == limit + extra`: no credit is created or
/// lost, only moved between those states.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StreamRecvWindow {
    /// The window we want the peer to have when everything is consumed: our
    /// SETTINGS_INITIAL_WINDOW_SIZE, grown by BDP estimation. At most 2^31-1.
    limit: i64,
    /// Octets the peer may still send.
    window: i64,
    /// Received and not yet consumed by the application.
    unconsumed: i64,
    /// Consumed and not yet announced in a WINDOW_UPDATE.
    unannounced: i64,
    /// Credit granted past `limit` by [`request_read`](Self::request_read) and not yet
    /// paid back by consumption.
    extra: i64,
}

impl StreamRecvWindow {
    /// A new stream's window: `limit` is the SETTINGS_INITIAL_WINDOW_SIZE we sent (once it
    /// is acknowledged if it was a decrease, see [`set_limit`](Self::set_limit)). Values past
    /// 2^31-1 are taken as 2^31-1.
    pub(crate) fn new(limit: u32) -> Self {
        let limit = i64::from(limit).min(MAX_WINDOW);
        StreamRecvWindow {
            limit,
            window: limit,
            unconsumed: 0,
            unannounced: 0,
            extra: 0,
        }
    }

    /// A DATA frame of `n` flow-controlled octets (payload and padding) arrived. On error
    /// nothing is counted and the caller resets the stream with FLOW_CONTROL_ERROR; the
    /// connection window must still count the frame (§6.9).
    pub(crate) fn on_data(&mut self, n: u32) -> Result<(), FlowControlViolation> {
        if !fits(n, self.window) {
            return Err(FlowControlViolation);
        }
        self.window -= i64::from(n);
        self.unconsumed += i64::from(n);
        Ok(())
    }

    /// The application consumed `n` octets, or a frame's padding (and its pad-length
    /// octet) is released as soon as it arrives. Returns the increment of a stream
    /// WINDOW_UPDATE to send now, if one is due. More than [`unconsumed`](Self::unconsumed)
    /// counts as all of it.
    pub(crate) fn release(&mut self, n: u32) -> Option<u32> {
        let n = i64::from(n).min(self.unconsumed);
        self.unconsumed -= n;
        // Credit granted ahead for a large message was announced already: consumption pays
        // it back before it owes the peer anything new.
        let repaid = n.min(self.extra);
        self.extra -= repaid;
        self.unannounced += n - repaid;
        self.announce_if_due()
    }

    /// The application waits for `n` more octets (a message header or body). If the peer
    /// cannot send them within its window, the stream would stall on credit that only
    /// consumption of this very message could release, so the missing data is granted now,
    /// past the limit; returns the WINDOW_UPDATE increment. The whole outstanding amount is
    /// granted, not just the shortfall, so window the peer spends on padding or has not yet
    /// seen credited does not leave it short. Grants stop where `limit + extra` would pass
    /// 2^31-1. (grpc-go's `maybeAdjust`.)
    pub(crate) fn request_read(&mut self, n: u32) -> Option<u32> {
        let outstanding = i64::from(n) - self.unconsumed;
        if outstanding <= self.window {
            return None;
        }
        let grant = outstanding.min(MAX_WINDOW - self.limit - self.extra);
        if grant <= 0 {
            return None;
        }
        self.extra += grant;
        self.window += grant;
        Some(saturate_u32(grant))
    }

    /// Our SETTINGS_INITIAL_WINDOW_SIZE for streams becomes `new_limit` (BDP growth).
    ///
    /// The peer learns the change from that SETTINGS frame and moves every open stream's
    /// window by `new_limit - limit` itself (§6.9.2), so the difference is applied here and
    /// is never announced by WINDOW_UPDATE: doing both would let the peer send past the
    /// limit. Call it when the SETTINGS is sent for a growth, and when its ACK arrives for a
    /// decrease (until then the peer may still send to the old window, §6.9.3).
    ///
    /// Returns a WINDOW_UPDATE increment only when the new limit makes already-owed credit
    /// due (a decrease lowers the quarter threshold); a growth returns None.
    pub(crate) fn set_limit(&mut self, new_limit: u32) -> Option<u32> {
        let new_limit = i64::from(new_limit).min(MAX_WINDOW);
        self.window += new_limit - self.limit;
        self.limit = new_limit;
        self.announce_if_due()
    }

    /// The window we want the peer to have when everything is consumed.
    pub(crate) fn limit(&self) -> u32 {
        saturate_u32(self.limit)
    }

    /// Credit granted past the limit for a large message and not yet paid back.
    pub(crate) fn extra(&self) -> u32 {
        saturate_u32(self.extra)
    }

    /// Octets received and not yet consumed by the application.
    pub(crate) fn unconsumed(&self) -> u32 {
        saturate_u32(self.unconsumed)
    }

    /// Octets the peer may still send once our frames in flight reach it; negative after a
    /// decrease of the limit.
    pub(crate) fn window(&self) -> i64 {
        self.window
    }

    fn announce_if_due(&mut self) -> Option<u32> {
        if !update_due(self.unannounced, self.limit) {
            return None;
        }
        // The peer must never be given a window past 2^31-1 (§6.9.1). That bound only bites
        // with about 2 GiB of extra credit outstanding; what does not fit stays owed.
        let increment = self
            .unannounced
            .min(MAX_WINDOW - self.window)
            .min(MAX_WINDOW);
        if increment <= 0 {
            return None;
        }
        self.unannounced -= increment;
        self.window += increment;
        Some(saturate_u32(increment))
    }
}

/// Receive side of the connection window.
///
/// As grpc-go's `trInFlow`, octets are credited back when they arrive, not when the
/// application reads them: the stream windows already hold back a slow reader's sender, and
/// tying the connection window to reads would let one stalled stream block all the others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConnRecvWindow {
    /// The window the peer gets back after each update; at most 2^31-1.
    limit: i64,
    /// Octets the peer may still send once our frames in flight reach it; 0..=2^31-1.
    window: i64,
}

impl ConnRecvWindow {
    /// A connection window of `limit`, which must be the window the peer starts with:
    /// 65,535 (§6.9.2; SETTINGS cannot change it). Grow it with
    /// [`set_limit`](Self::set_limit), which returns the WINDOW_UPDATE that tells the peer.
    /// Starting from a larger value instead would never announce the difference, and the
    /// peer could stall. Values past 2^31-1 are taken as 2^31-1.
    pub(crate) fn new(limit: u32) -> Self {
        let limit = i64::from(limit).min(MAX_WINDOW);
        ConnRecvWindow {
            limit,
            window: limit,
        }
    }

    /// A DATA frame of `n` flow-controlled octets arrived, on any stream, open or not, and
    /// even if the stream rejects it (§6.9). Err is a connection FLOW_CONTROL_ERROR, with nothing counted; otherwise
    /// returns the increment of a connection WINDOW_UPDATE to send now, if one is due.
    pub(crate) fn on_data(&mut self, n: u32) -> Result<Option<u32>, FlowControlViolation> {
        if !fits(n, self.window) {
            return Err(FlowControlViolation);
        }
        self.window -= i64::from(n);
        if update_due(self.limit - self.window, self.limit) {
            return Ok(self.flush());
        }
        Ok(None)
    }

    /// Announce all owed credit now, even under the quarter threshold. grpc-go does this
    /// just before a BDP ping so that the ping travels with a WINDOW_UPDATE, which looks
    /// less like a ping flood to proxies that police PINGs.
    pub(crate) fn flush(&mut self) -> Option<u32> {
        let owed = self.limit - self.window;
        if owed <= 0 {
            return None;
        }
        self.window = self.limit;
        Some(saturate_u32(owed))
    }

    /// The connection window becomes `new_limit` (BDP growth). Only WINDOW_UPDATE moves the
    /// connection window, so a growth returns the increment that brings the peer up to the
    /// new limit. A decrease cannot take credit back: the peer keeps what it has, and
    /// updates resume once its window falls a quarter of the new limit below it.
    pub(crate) fn set_limit(&mut self, new_limit: u32) -> Option<u32> {
        let new_limit = i64::from(new_limit).min(MAX_WINDOW);
        let grew = new_limit > self.limit;
        self.limit = new_limit;
        if grew || update_due(self.limit - self.window, self.limit) {
            return self.flush();
        }
        None
    }

    /// The window the peer gets back after each update.
    pub(crate) fn limit(&self) -> u32 {
        saturate_u32(self.limit)
    }

    /// Octets the peer may still send once our frames in flight reach it.
    pub(crate) fn window(&self) -> u32 {
        saturate_u32(self.window)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use proptest::prelude::*;

    use super::*;

    const MAX: u32 = MAX_WINDOW_SIZE;

    #[test]
    fn send_window_counts_down_on_send_and_up_on_update() {
        let mut w = SendWindow::new(100);
        w.consume(60);
        assert_eq!(w.available(), 40);
        assert_eq!(w.increase(10), Ok(()));
        assert_eq!(w.available(), 50);
        w.consume(50);
        assert_eq!(w.available(), 0);
    }

    #[test]
    fn send_window_may_reach_2_pow_31_minus_1_but_not_pass_it() {
        let mut w = SendWindow::new(65_535);
        assert_eq!(w.increase(MAX - 65_535), Ok(()));
        assert_eq!(w.available(), MAX);
        assert_eq!(w.increase(1), Err(WindowOverflow));
        assert_eq!(w.available(), MAX);

        let mut w = SendWindow::new(0);
        assert_eq!(w.increase(u32::MAX), Err(WindowOverflow));
        assert_eq!(w.available(), 0);
        assert_eq!(SendWindow::new(u32::MAX).available(), MAX);
    }

    #[test]
    fn send_window_negative_after_settings_decrease_recovers_with_updates() {
        let mut w = SendWindow::new(65_535);
        w.consume(60_000);
        assert_eq!(w.adjust_initial(65_535, 16_384), Ok(()));
        assert_eq!(w.window, 5_535 - 49_151);
        assert_eq!(w.available(), 0);
        assert_eq!(w.increase(43_616), Ok(()));
        assert_eq!(w.available(), 0);
        assert_eq!(w.increase(1), Ok(()));
        assert_eq!(w.available(), 1);
        assert_eq!(w.adjust_initial(16_384, 65_535), Ok(()));
        assert_eq!(w.available(), 1 + 49_151);
    }

    #[test]
    fn send_window_settings_increase_past_max_is_an_error_that_changes_nothing() {
        let mut w = SendWindow::new(65_535);
        assert_eq!(w.adjust_initial(65_535, MAX), Ok(()));
        assert_eq!(w.available(), MAX);

        let mut w = SendWindow::new(65_535);
        assert_eq!(w.increase(1), Ok(()));
        assert_eq!(w.adjust_initial(65_535, MAX), Err(WindowOverflow));
        assert_eq!(w.available(), 65_536);
    }

    #[test]
    fn stream_accepts_up_to_its_window_and_rejects_one_octet_more() {
        let mut w = StreamRecvWindow::new(100);
        assert_eq!(w.on_data(60), Ok(()));
        assert_eq!(w.on_data(40), Ok(()));
        let before = w.clone();
        assert_eq!(w.on_data(1), Err(FlowControlViolation));
        assert_eq!(w, before, "a rejected frame must not be counted");
        assert_eq!(
            w.on_data(0),
            Ok(()),
            "an empty DATA frame is not flow-controlled"
        );
        assert_eq!(w.unconsumed(), 100);
        assert_eq!(w.limit(), 100);
    }

    #[test]
    fn stream_announces_consumption_once_a_quarter_of_the_limit_is_owed() {
        let mut w = StreamRecvWindow::new(100);
        assert_eq!(w.on_data(100), Ok(()));
        assert_eq!(w.release(24), None);
        assert_eq!(w.release(1), Some(25));
        assert_eq!(w.window(), 25);
        assert_eq!(w.release(30), Some(30));
        assert_eq!(w.release(45), Some(45));
        assert_eq!(w.window(), 100);
        assert_eq!(w.unconsumed(), 0);
    }

    #[test]
    fn stream_padding_released_on_arrival_is_announced_with_the_data() {
        let mut w = StreamRecvWindow::new(100);
        assert_eq!(w.on_data(30), Ok(()));
        assert_eq!(w.release(10), None);
        assert_eq!(w.unconsumed(), 20);
        assert_eq!(w.release(20), Some(30));
    }

    #[test]
    fn stream_release_beyond_unconsumed_counts_as_all_of_it() {
        let mut w = StreamRecvWindow::new(100);
        assert_eq!(w.on_data(40), Ok(()));
        assert_eq!(w.release(u32::MAX), Some(40));
        assert_eq!(w.window(), 100);
        assert_eq!(w.release(5), None);
        assert_eq!(w.window(), 100);
    }

    #[test]
    fn stream_tiny_limits_never_announce_a_zero_increment() {
        for limit in 0..4 {
            let mut w = StreamRecvWindow::new(limit);
            assert_eq!(w.release(1), None);
            if limit == 0 {
                assert_eq!(w.on_data(1), Err(FlowControlViolation));
            } else {
                assert_eq!(w.on_data(1), Ok(()));
                assert_eq!(w.release(1), Some(1));
            }
        }
    }

    #[test]
    fn stream_limit_growth_is_left_to_settings_and_later_released_in_quarters() {
        const MIB: u32 = 1 << 20;
        const FRAME: u32 = 16_384;
        let mut w = StreamRecvWindow::new(65_535);
        assert_eq!(w.on_data(65_535), Ok(()));
        assert_eq!(w.set_limit(MIB), None);
        assert_eq!(w.window(), i64::from(MIB - 65_535));
        assert_eq!(w.on_data(MIB - 65_535), Ok(()));
        assert_eq!(w.on_data(1), Err(FlowControlViolation));
        let updates: Vec<u32> = (0..MIB / FRAME).filter_map(|_| w.release(FRAME)).collect();
        assert_eq!(updates, vec![MIB / 4; 4]);
        assert_eq!(w.window(), i64::from(MIB));
    }

    #[test]
    fn stream_limit_decrease_goes_negative_and_recovers_with_updates() {
        let mut w = StreamRecvWindow::new(1_000);
        assert_eq!(w.on_data(900), Ok(()));
        assert_eq!(w.set_limit(200), None);
        assert_eq!(w.window(), -700);
        assert_eq!(w.on_data(1), Err(FlowControlViolation));
        assert_eq!(w.on_data(0), Ok(()));
        assert_eq!(w.release(49), None);
        assert_eq!(w.release(1), Some(50));
        let mut announced = 50;
        while w.unconsumed() > 0 {
            announced += w.release(50).unwrap_or(0);
        }
        assert_eq!(announced, 900);
        assert_eq!(w.window(), 200);
    }

    #[test]
    fn stream_limit_decrease_can_make_owed_credit_due() {
        let mut w = StreamRecvWindow::new(1_000);
        assert_eq!(w.on_data(1_000), Ok(()));
        assert_eq!(w.release(200), None);
        assert_eq!(w.set_limit(400), Some(200));
        assert_eq!(w.window(), -400);
    }

    #[test]
    fn stream_message_larger_than_the_window_is_granted_then_paid_back() {
        const MSG: u32 = 1 << 20;
        const FRAME: u32 = 16_384;
        let mut w = StreamRecvWindow::new(65_535);
        assert_eq!(w.request_read(MSG), Some(MSG));
        assert_eq!(w.window(), i64::from(65_535 + MSG));
        for _ in 0..MSG / FRAME {
            assert_eq!(w.on_data(FRAME), Ok(()));
            assert_eq!(
                w.release(FRAME),
                None,
                "consumption pays back the grant first"
            );
        }
        assert_eq!(w.window(), 65_535);
        assert_eq!(w.extra, 0);
    }

    #[test]
    fn stream_grants_nothing_when_window_or_buffer_suffices() {
        let mut w = StreamRecvWindow::new(65_535);
        assert_eq!(w.request_read(65_535), None);
        assert_eq!(w.on_data(60_000), Ok(()));
        assert_eq!(w.request_read(65_535), None);
        assert_eq!(w.request_read(65_536), Some(5_536));
    }

    #[test]
    fn stream_grants_stop_at_the_maximum_window() {
        let mut w = StreamRecvWindow::new(65_535);
        assert_eq!(w.request_read(u32::MAX), Some(MAX - 65_535));
        assert_eq!(w.window(), i64::from(MAX));
        assert_eq!(w.request_read(u32::MAX), None);
    }

    #[test]
    fn connection_credits_data_on_arrival_once_a_quarter_is_owed() {
        let mut w = ConnRecvWindow::new(65_535);
        assert_eq!(w.on_data(16_382), Ok(None));
        assert_eq!(w.on_data(1), Ok(Some(16_383)));
        assert_eq!(w.window(), 65_535);
        assert_eq!(w.limit(), 65_535);
    }

    #[test]
    fn connection_rejects_data_past_its_window_without_counting_it() {
        let mut w = ConnRecvWindow::new(100);
        assert_eq!(w.on_data(20), Ok(None));
        let before = w.clone();
        assert_eq!(w.on_data(81), Err(FlowControlViolation));
        assert_eq!(w, before);
        assert_eq!(w.on_data(80), Ok(Some(100)));
    }

    #[test]
    fn connection_flush_announces_whatever_is_owed() {
        let mut w = ConnRecvWindow::new(65_535);
        assert_eq!(w.on_data(100), Ok(None));
        assert_eq!(w.flush(), Some(100));
        assert_eq!(w.flush(), None);
    }

    #[test]
    fn connection_growth_is_announced_at_once() {
        const MIB: u32 = 1 << 20;
        let mut w = ConnRecvWindow::new(65_535);
        assert_eq!(w.on_data(1_000), Ok(None));
        assert_eq!(w.set_limit(MIB), Some(MIB - 65_535 + 1_000));
        assert_eq!(w.window(), MIB);
        assert_eq!(w.set_limit(MIB), None);
    }

    #[test]
    fn connection_decrease_withholds_credit_until_below_the_new_limit() {
        let mut w = ConnRecvWindow::new(1_000);
        assert_eq!(w.set_limit(100), None);
        assert_eq!(w.window(), 1_000);
        assert_eq!(w.on_data(900), Ok(None));
        assert_eq!(w.on_data(25), Ok(Some(25)));
        assert_eq!(w.window(), 100);
    }

    /// What the peer can do to a stream's receive window, or we to it, in one step.
    #[derive(Debug, Clone)]
    enum StreamOp {
        /// The peer sends a part of what its window allows.
        Send(u32),
        /// The peer sends one octet more than our window allows.
        Overrun,
        /// The application consumes a part of what is buffered.
        Release(u32),
        RequestRead(u32),
        /// We send SETTINGS_INITIAL_WINDOW_SIZE.
        Settings(u32),
        /// The oldest frame we sent reaches the peer.
        Deliver,
    }

    /// A frame on its way from us to the peer.
    #[derive(Debug)]
    enum InFlight {
        Update(u32),
        Settings { value: u32, decrease: bool },
    }

    fn limit_strategy() -> impl Strategy<Value = u32> {
        prop_oneof![
            0..=100u32,
            0..=300_000u32,
            Just(65_535),
            Just(MAX),
            any::<u32>()
        ]
    }

    fn stream_op() -> impl Strategy<Value = StreamOp> {
        prop_oneof![
            4 => any::<u32>().prop_map(StreamOp::Send),
            1 => Just(StreamOp::Overrun),
            4 => any::<u32>().prop_map(StreamOp::Release),
            1 => prop_oneof![0..=300_000u32, any::<u32>()].prop_map(StreamOp::RequestRead),
            1 => prop_oneof![0..=300_000u32, 0..=MAX].prop_map(StreamOp::Settings),
            4 => Just(StreamOp::Deliver),
        ]
    }

    /// A peer that tracks its send window from what we send it, as RFC 9113 requires.
    struct StreamPeer {
        window: i64,
        /// Our SETTINGS_INITIAL_WINDOW_SIZE as the peer knows it.
        setting: u32,
        in_flight: VecDeque<InFlight>,
    }

    impl StreamPeer {
        fn send_update(&mut self, increment: Option<u32>) {
            if let Some(increment) = increment {
                assert!(
                    increment > 0 && increment <= MAX,
                    "bad increment {increment}"
                );
                self.in_flight.push_back(InFlight::Update(increment));
            }
        }

        fn settings_in_flight(&self) -> bool {
            self.in_flight
                .iter()
                .any(|f| matches!(f, InFlight::Settings { .. }))
        }

        /// Our window minus the peer's: the credit still travelling.
        fn credit_in_flight(&self) -> i64 {
            self.in_flight
                .iter()
                .map(|f| match *f {
                    InFlight::Update(increment) => i64::from(increment),
                    InFlight::Settings {
                        value,
                        decrease: false,
                    } => i64::from(value) - i64::from(self.setting),
                    InFlight::Settings { decrease: true, .. } => 0,
                })
                .sum()
        }

        fn deliver(&mut self, ours: &mut StreamRecvWindow) {
            match self.in_flight.pop_front() {
                None => {}
                Some(InFlight::Update(increment)) => self.window += i64::from(increment),
                Some(InFlight::Settings { value, decrease }) => {
                    self.window += i64::from(value) - i64::from(self.setting);
                    self.setting = value;
                    if decrease {
                        // The peer's ACK arrives: only now may our limit shrink (§6.9.3).
                        let update = ours.set_limit(value);
                        self.send_update(update);
                    }
                }
            }
        }

        fn deliver_all(&mut self, ours: &mut StreamRecvWindow) {
            while !self.in_flight.is_empty() {
                self.deliver(ours);
                check_stream(ours, self);
            }
        }
    }

    fn check_stream(ours: &StreamRecvWindow, peer: &StreamPeer) {
        assert!(ours.unconsumed >= 0 && ours.unannounced >= 0 && ours.extra >= 0);
        assert_eq!(
            ours.window + ours.unconsumed + ours.unannounced,
            ours.limit + ours.extra,
            "credit created or lost: {ours:?}"
        );
        assert_eq!(ours.window, peer.window + peer.credit_in_flight());
        if ours.limit + ours.extra <= MAX_WINDOW {
            assert!(peer.window <= MAX_WINDOW, "peer window past 2^31-1");
        }
    }

    /// The peer's send window as it will be once `ours` is told about everything.
    fn stream_settled(ours: &mut StreamRecvWindow, peer: &mut StreamPeer) {
        peer.deliver_all(ours);
        let update = ours.release(ours.unconsumed());
        peer.send_update(update);
        peer.deliver_all(ours);
        assert_eq!(peer.window, ours.window);
    }

    proptest! {
        #[test]
        fn stream_window_never_lets_a_compliant_peer_fail_or_a_greedy_one_pass(
            limit in limit_strategy(),
            ops in proptest::collection::vec(stream_op(), 0..80),
        ) {
            let mut ours = StreamRecvWindow::new(limit);
            let mut peer = StreamPeer {
                window: ours.window,
                setting: ours.limit(),
                in_flight: VecDeque::new(),
            };
            for op in ops {
                match op {
                    StreamOp::Send(part) => {
                        let n = u32::try_from(i64::from(part) % (peer.window.max(0) + 1))
                            .unwrap_or(0);
                        prop_assert_eq!(ours.on_data(n), Ok(()));
                        peer.window -= i64::from(n);
                    }
                    StreamOp::Overrun => {
                        if let Ok(n) = u32::try_from(ours.window.max(0) + 1) {
                            let before = ours.clone();
                            prop_assert_eq!(ours.on_data(n), Err(FlowControlViolation));
                            prop_assert_eq!(&ours, &before);
                        }
                    }
                    StreamOp::Release(part) => {
                        let n = part % (ours.unconsumed().saturating_add(1));
                        let update = ours.release(n);
                        peer.send_update(update);
                    }
                    StreamOp::RequestRead(n) => {
                        let update = ours.request_read(n);
                        peer.send_update(update);
                    }
                    StreamOp::Settings(value) => {
                        if !peer.settings_in_flight() {
                            let decrease = value < ours.limit();
                            if !decrease {
                                prop_assert_eq!(ours.set_limit(value), None);
                            }
                            peer.in_flight.push_back(InFlight::Settings { value, decrease });
                        }
                    }
                    StreamOp::Deliver => peer.deliver(&mut ours),
                }
                check_stream(&ours, &peer);
            }

            // Once everything received is consumed, the peer is back to its full window
            // less at most a quarter not yet worth an update: none of it leaked.
            stream_settled(&mut ours, &mut peer);
            prop_assert!(!update_due(ours.unannounced, ours.limit) || peer.window >= MAX_WINDOW);
            prop_assert_eq!(peer.window + ours.unannounced, ours.limit + ours.extra);
            // And it stays live: the peer can keep sending whole windows.
            for _ in 0..4 {
                prop_assert!(peer.window >= ours.limit - ours.limit / UPDATE_DIVISOR);
                let n = u32::try_from(peer.window.max(0)).unwrap_or(u32::MAX);
                prop_assert_eq!(ours.on_data(n), Ok(()));
                peer.window -= i64::from(n);
                stream_settled(&mut ours, &mut peer);
            }
            // Consuming whole windows paid back any credit granted past the limit: the
            // peer's window is within a quarter below the limit, never above it.
            prop_assert_eq!(ours.extra, 0);
            prop_assert!(peer.window <= ours.limit);
            prop_assert!(peer.window >= ours.limit - ours.limit / UPDATE_DIVISOR);
        }
    }

    #[derive(Debug, Clone)]
    enum ConnOp {
        Send(u32),
        Overrun,
        Flush,
        SetLimit(u32),
        Deliver,
    }

    fn conn_op() -> impl Strategy<Value = ConnOp> {
        prop_oneof![
            6 => any::<u32>().prop_map(ConnOp::Send),
            1 => Just(ConnOp::Overrun),
            1 => Just(ConnOp::Flush),
            1 => limit_strategy().prop_map(ConnOp::SetLimit),
            4 => Just(ConnOp::Deliver),
        ]
    }

    proptest! {
        #[test]
        fn connection_window_never_lets_a_compliant_peer_fail_or_a_greedy_one_pass(
            limit in limit_strategy(),
            ops in proptest::collection::vec(conn_op(), 0..80),
        ) {
            let mut ours = ConnRecvWindow::new(limit);
            let mut peer_window = ours.window;
            let mut in_flight: VecDeque<u32> = VecDeque::new();
            for op in ops {
                let update = match op {
                    ConnOp::Send(part) => {
                        let n = u32::try_from(i64::from(part) % (peer_window + 1)).unwrap_or(0);
                        peer_window -= i64::from(n);
                        let result = ours.on_data(n);
                        prop_assert!(result.is_ok());
                        result.unwrap_or(None)
                    }
                    ConnOp::Overrun => {
                        if let Ok(n) = u32::try_from(ours.window + 1) {
                            let before = ours.clone();
                            prop_assert_eq!(ours.on_data(n), Err(FlowControlViolation));
                            prop_assert_eq!(&ours, &before);
                        }
                        None
                    }
                    ConnOp::Flush => ours.flush(),
                    ConnOp::SetLimit(value) => ours.set_limit(value),
                    ConnOp::Deliver => {
                        if let Some(increment) = in_flight.pop_front() {
                            peer_window += i64::from(increment);
                        }
                        None
                    }
                };
                if let Some(increment) = update {
                    prop_assert!(increment > 0 && increment <= MAX);
                    prop_assert_eq!(ours.window, ours.limit, "an update tops up to the limit");
                    in_flight.push_back(increment);
                }
                let travelling: i64 = in_flight.iter().map(|&i| i64::from(i)).sum();
                prop_assert_eq!(ours.window, peer_window + travelling);
                prop_assert!((0..=MAX_WINDOW).contains(&ours.window));
            }

            peer_window += in_flight.iter().map(|&i| i64::from(i)).sum::<i64>();
            prop_assert_eq!(peer_window, ours.window);
            prop_assert!(!update_due(ours.limit - ours.window, ours.limit));
            // Nothing leaked: flushing brings the peer back to the limit (or leaves it above
            // a lowered limit, which it keeps).
            let expected = ours.window.max(ours.limit);
            peer_window += ours.flush().map_or(0, i64::from);
            prop_assert_eq!(peer_window, expected);
        }

        #[test]
        fn send_window_tracks_the_peers_credit_exactly(
            initial in limit_strategy(),
            ops in proptest::collection::vec((0..3u8, any::<u32>()), 0..80),
        ) {
            let mut w = SendWindow::new(initial);
            let mut model = i128::from(initial.min(MAX));
            let mut setting = initial;
            for (kind, value) in ops {
                match kind {
                    0 => {
                        let expected = model + i128::from(value);
                        let result = w.increase(value);
                        if expected > i128::from(MAX) {
                            prop_assert_eq!(result, Err(WindowOverflow));
                        } else {
                            prop_assert_eq!(result, Ok(()));
                            model = expected;
                        }
                    }
                    1 => {
                        let value = value % (MAX + 1);
                        let expected = model + i128::from(value) - i128::from(setting);
                        let result = w.adjust_initial(setting, value);
                        if expected > i128::from(MAX) {
                            prop_assert_eq!(result, Err(WindowOverflow));
                        } else {
                            prop_assert_eq!(result, Ok(()));
                            model = expected;
                            setting = value;
                        }
                    }
                    _ => {
                        let n = value % w.available().saturating_add(1);
                        w.consume(n);
                        model -= i128::from(n);
                    }
                }
                prop_assert_eq!(i128::from(w.window), model);
                prop_assert_eq!(i128::from(w.available()), model.clamp(0, i128::from(MAX)));
            }
        }

        #[test]
        fn no_input_makes_any_window_panic(
            ops in proptest::collection::vec((0..12u8, any::<u32>(), any::<u32>()), 0..100),
        ) {
            let mut send = SendWindow::new(0);
            let mut stream = StreamRecvWindow::new(0);
            let mut conn = ConnRecvWindow::new(0);
            for (kind, a, b) in ops {
                match kind {
                    0 => send = SendWindow::new(a),
                    1 => send.consume(a.min(send.available())),
                    2 => drop(send.increase(a)),
                    3 => drop(send.adjust_initial(a, b)),
                    4 => stream = StreamRecvWindow::new(a),
                    5 => drop(stream.on_data(a)),
                    6 => drop(stream.release(a)),
                    7 => drop(stream.request_read(a)),
                    8 => drop(stream.set_limit(a)),
                    9 => conn = ConnRecvWindow::new(a),
                    10 => drop((conn.on_data(a), conn.flush())),
                    _ => drop(conn.set_limit(a)),
                }
                prop_assert!(send.window <= MAX_WINDOW);
                prop_assert!(conn.window() <= MAX && conn.limit() <= MAX && stream.limit() <= MAX);
                prop_assert_eq!(
                    stream.window + stream.unconsumed + stream.unannounced,
                    stream.limit + stream.extra
                );
            }
        }
    }
}
