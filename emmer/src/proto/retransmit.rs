//! The retransmission timer of both transfer machines: the one place that
//! computes the retransmission timeout (RTO) and counts retries.
//!
//! - RFC 1350 §2: a packet that is not answered within the timeout is sent
//!   again; RFC 1123 §4.2.3.2 asks that the timeout adapt, here by backing
//!   off: each retry waits `backoff` times longer than the one before, up to
//!   `max_retransmit_timeout`.
//! - RFC 2349: a negotiated `timeout` replaces the configured one, and the
//!   wait is never capped below it (the client was promised that much).
//! - Without a negotiated timeout the wait adapts to the path (RFC 1123
//!   §4.2.3.2): the machines measure round trips (Karn's rule: never from a
//!   packet that was sent more than once) and the base wait is
//!   SRTT + 4 × RTTVAR (RFC 6298 §2), kept within the configured floor and
//!   ceiling; before the first measurement it is the configured timeout.
//! - After `max_retries` unanswered retries the transfer gives up.
//! - Progress (an answer that moves the transfer on) resets the retry count,
//!   so the next wait is the base timeout again.

use std::time::{Duration, Instant};

use super::TransferConfig;

/// What [`Retransmit::expire`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expiry {
    /// No deadline is armed, or it has not passed yet.
    NotYet,
    /// The deadline passed and a retry is left: one was spent; send again
    /// (and arm the timer again).
    Retry,
    /// The deadline passed and `max_retries` were spent already: give up.
    GiveUp,
}

/// The clock granularity of RFC 6298 §2: the least the variation adds.
const GRANULARITY: Duration = Duration::from_millis(1);

/// The retransmission timer of one transfer.
#[derive(Debug, Clone)]
pub(crate) struct Retransmit {
    /// The timeout negotiated with the client (RFC 2349): used as it is.
    negotiated: Option<Duration>,
    /// The wait before any round trip was measured.
    initial: Duration,
    /// The shortest and longest adapted wait.
    floor: Duration,
    ceiling: Duration,
    backoff: u32,
    max_retries: u32,
    /// Retries spent since the last progress.
    retries: u32,
    deadline: Option<Instant>,
    /// The smoothed round trip and its variation (RFC 6298), once measured.
    srtt: Option<Duration>,
    rttvar: Duration,
}

impl Retransmit {
    /// A disarmed timer. `negotiated` is the timeout granted to the client
    /// (RFC 2349), which replaces `config.retransmit_timeout` and is not
    /// adapted.
    pub(crate) fn new(negotiated: Option<Duration>, config: &TransferConfig) -> Self {
        Self {
            negotiated,
            initial: config.retransmit_timeout,
            floor: config.min_retransmit_timeout,
            ceiling: config.max_retransmit_timeout,
            backoff: config.backoff.max(1),
            max_retries: config.max_retries,
            retries: 0,
            deadline: None,
            srtt: None,
            rttvar: Duration::ZERO,
        }
    }

    /// The wait before the first retransmission of a packet.
    fn base(&self) -> Duration {
        match (self.negotiated, self.srtt) {
            (Some(t), _) => t,
            // RFC 6298 §2.3: RTO = SRTT + max(G, 4 × RTTVAR).
            (None, Some(srtt)) => (srtt + GRANULARITY.max(self.rttvar * 4))
                .clamp(self.floor.min(self.ceiling), self.ceiling),
            (None, None) => self.initial,
        }
    }

    /// The wait before the next retransmission: the base wait times
    /// backoff^retries, capped at `max_retransmit_timeout` (but never below
    /// the base: a negotiated timeout was promised to the client).
    pub(crate) fn rto(&self) -> Duration {
        let base = self.base();
        let factor = self.backoff.saturating_pow(self.retries);
        base.saturating_mul(factor).min(self.ceiling.max(base))
    }

    /// A measured round trip, from a packet sent once to its answer (Karn's
    /// rule: the machines never measure a packet sent again). RFC 6298 §2.2
    /// and §2.3, with alpha = 1/8 and beta = 1/4.
    pub(crate) fn sample(&mut self, rtt: Duration) {
        match self.srtt {
            None => {
                self.srtt = Some(rtt);
                self.rttvar = rtt / 2;
            }
            Some(srtt) => {
                let delta = srtt.abs_diff(rtt);
                self.rttvar = (self.rttvar * 3 + delta) / 4;
                self.srtt = Some((srtt * 7 + rtt) / 8);
            }
        }
    }

    /// The smoothed round trip, once one was measured.
    pub(crate) fn srtt(&self) -> Option<Duration> {
        self.srtt
    }

    /// Arms the deadline one RTO from `now` (something was just sent).
    pub(crate) fn arm(&mut self, now: Instant) {
        self.deadline = Some(now + self.rto());
    }

    /// Nothing waits for an answer any more.
    pub(crate) fn disarm(&mut self) {
        self.deadline = None;
    }

    /// When [`expire`](Self::expire) has something to say, if armed.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// The peer answered and the transfer moved on: a fresh retry budget,
    /// and the next wait is the base timeout again. The deadline is kept.
    pub(crate) fn progress(&mut self) {
        self.retries = 0;
    }

    /// Checks the deadline at `now`. On [`Expiry::Retry`] a retry is spent
    /// and the timer is disarmed until the caller sends again and
    /// [`arm`](Self::arm)s it; on [`Expiry::GiveUp`] it stays disarmed.
    pub(crate) fn expire(&mut self, now: Instant) -> Expiry {
        match self.deadline {
            Some(deadline) if now >= deadline => {}
            _ => return Expiry::NotYet,
        }
        self.deadline = None;
        if self.retries >= self.max_retries {
            return Expiry::GiveUp;
        }
        self.retries += 1;
        Expiry::Retry
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(base: u64, backoff: u32, max: u64, max_retries: u32) -> TransferConfig {
        TransferConfig {
            retransmit_timeout: Duration::from_secs(base),
            backoff,
            max_retransmit_timeout: Duration::from_secs(max),
            max_retries,
            ..TransferConfig::default()
        }
    }

    /// Arms, waits out and expires the timer until it gives up; returns the
    /// waits that ended in a retry.
    fn waits(r: &mut Retransmit, mut now: Instant) -> Vec<u64> {
        let mut waits = Vec::new();
        loop {
            r.arm(now);
            let deadline = r.deadline().unwrap();
            waits.push((deadline - now).as_secs());
            now = deadline;
            match r.expire(now) {
                Expiry::Retry => {}
                Expiry::GiveUp => return waits,
                Expiry::NotYet => panic!("the deadline has passed"),
            }
        }
    }

    #[test]
    fn backoff_doubles_up_to_max_retransmit_timeout_then_gives_up() {
        let mut r = Retransmit::new(None, &config(1, 2, 8, 5));
        // Five retries after waits of 1, 2, 4, 8 (16 capped), 8 (32 capped)
        // seconds, then a last wait of 8 s ends in giving up.
        assert_eq!(waits(&mut r, Instant::now()), [1, 2, 4, 8, 8, 8]);
        assert_eq!(r.deadline(), None, "disarmed after giving up");
    }

    #[test]
    fn other_backoff_factors() {
        let mut r = Retransmit::new(None, &config(1, 3, 5, 3));
        assert_eq!(waits(&mut r, Instant::now()), [1, 3, 5, 5]);
        // A factor of 0 is taken as 1: a constant timeout.
        let mut r = Retransmit::new(None, &config(2, 0, 8, 2));
        assert_eq!(waits(&mut r, Instant::now()), [2, 2, 2]);
    }

    #[test]
    fn never_below_a_negotiated_timeout() {
        // RFC 2349: the client was granted 10 s; max_retransmit_timeout (8 s) does not
        // shorten it, and the configured 1 s is replaced.
        let mut r = Retransmit::new(Some(Duration::from_secs(10)), &config(1, 2, 8, 2));
        assert_eq!(r.rto(), Duration::from_secs(10));
        assert_eq!(waits(&mut r, Instant::now()), [10, 10, 10]);
        // Below max_retransmit_timeout, the negotiated timeout still doubles up to it.
        let mut r = Retransmit::new(Some(Duration::from_secs(3)), &config(1, 2, 8, 3));
        assert_eq!(waits(&mut r, Instant::now()), [3, 6, 8, 8]);
    }

    #[test]
    fn gives_up_after_max_retries() {
        let base = Instant::now();
        let mut r = Retransmit::new(None, &config(1, 1, 8, 2));
        r.arm(base);
        assert_eq!(r.expire(base + Duration::from_secs(1)), Expiry::Retry);
        r.arm(base + Duration::from_secs(1));
        assert_eq!(r.expire(base + Duration::from_secs(2)), Expiry::Retry);
        r.arm(base + Duration::from_secs(2));
        assert_eq!(r.expire(base + Duration::from_secs(3)), Expiry::GiveUp);
        // Without retries at all: the first expiry gives up.
        let mut r = Retransmit::new(None, &config(1, 2, 8, 0));
        r.arm(base);
        assert_eq!(r.expire(base + Duration::from_secs(1)), Expiry::GiveUp);
    }

    #[test]
    fn not_yet_before_the_deadline_or_when_disarmed() {
        let base = Instant::now();
        let mut r = Retransmit::new(None, &config(1, 2, 8, 1));
        assert_eq!(r.deadline(), None, "a new timer is disarmed");
        assert_eq!(r.expire(base + Duration::from_secs(100)), Expiry::NotYet);
        r.arm(base);
        assert_eq!(r.expire(base + Duration::from_millis(999)), Expiry::NotYet);
        assert_eq!(r.deadline(), Some(base + Duration::from_secs(1)));
        r.disarm();
        assert_eq!(r.expire(base + Duration::from_secs(100)), Expiry::NotYet);
        // A NotYet spends no retry: the one retry is still there.
        r.arm(base);
        assert_eq!(r.expire(base + Duration::from_secs(1)), Expiry::Retry);
    }

    #[test]
    fn progress_resets_the_backoff_and_the_retry_budget() {
        let base = Instant::now();
        let mut r = Retransmit::new(None, &config(1, 2, 8, 2));
        r.arm(base);
        assert_eq!(r.expire(base + Duration::from_secs(1)), Expiry::Retry);
        r.arm(base + Duration::from_secs(1));
        assert_eq!(r.rto(), Duration::from_secs(2));
        assert_eq!(r.expire(base + Duration::from_secs(3)), Expiry::Retry);
        assert_eq!(r.rto(), Duration::from_secs(4));
        r.progress();
        assert_eq!(r.rto(), Duration::from_secs(1), "back to the base timeout");
        // Two retries again before giving up.
        assert_eq!(waits(&mut r, base), [1, 2, 4]);
    }

    #[test]
    fn progress_keeps_the_deadline() {
        let base = Instant::now();
        let mut r = Retransmit::new(None, &config(1, 2, 8, 2));
        r.arm(base);
        r.progress();
        assert_eq!(r.deadline(), Some(base + Duration::from_secs(1)));
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_wait_adapts_to_measured_round_trips_within_floor_and_ceiling() {
        let mut r = Retransmit::new(None, &config(1, 2, 8, 5));
        assert_eq!(
            r.rto(),
            Duration::from_secs(1),
            "the initial wait before any sample"
        );
        // RFC 6298: the first sample sets SRTT = R, RTTVAR = R/2: RTO = 3R.
        r.sample(ms(100));
        assert_eq!(r.srtt(), Some(ms(100)));
        assert_eq!(r.rto(), ms(300));
        // Steady samples shrink the variation: RTO approaches SRTT, but
        // never goes below the floor (200 ms).
        for _ in 0..50 {
            r.sample(ms(100));
        }
        assert_eq!(r.rto(), ms(200));
        // Backoff doubles the adapted wait, up to the ceiling (8 s).
        let mut now = Instant::now();
        r.arm(now);
        now += r.rto();
        assert_eq!(r.expire(now), Expiry::Retry);
        assert_eq!(r.rto(), ms(400));
        // A slow path: the wait follows, up to the ceiling.
        let mut slow = Retransmit::new(None, &config(1, 2, 8, 5));
        slow.sample(Duration::from_secs(5));
        assert_eq!(slow.rto(), Duration::from_secs(8));
    }

    #[test]
    fn a_variable_path_gets_a_longer_wait_than_a_steady_one() {
        let mut steady = Retransmit::new(None, &config(1, 2, 8, 5));
        let mut jumpy = Retransmit::new(None, &config(1, 2, 8, 5));
        for i in 0..20u64 {
            steady.sample(ms(300));
            jumpy.sample(ms(if i % 2 == 0 { 100 } else { 500 }));
        }
        assert!(
            jumpy.rto() > steady.rto(),
            "{:?} vs {:?}",
            jumpy.rto(),
            steady.rto()
        );
    }

    #[test]
    fn a_negotiated_timeout_is_not_adapted() {
        let mut r = Retransmit::new(Some(Duration::from_secs(3)), &config(1, 2, 8, 5));
        r.sample(ms(1));
        assert_eq!(r.rto(), Duration::from_secs(3), "the client's choice");
        assert_eq!(r.srtt(), Some(ms(1)), "still measured, for reports");
    }
}
