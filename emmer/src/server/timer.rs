//! A transfer's one timer, moved as little as possible.

use std::pin::Pin;
use std::time::{Duration, Instant};

/// The state machine's deadline moves with nearly every packet; the timer
/// is moved only when that deadline is earlier than the one armed, or when
/// the armed one fires (then the loop re-arms it for the real deadline). A
/// lock-step transfer so touches the timer wheel about once per timeout
/// period instead of once per packet.
pub(crate) struct Timer {
    sleep: Pin<Box<tokio::time::Sleep>>,
    armed: Option<Instant>,
}

impl Timer {
    pub(crate) fn new() -> Self {
        Self {
            sleep: Box::pin(tokio::time::sleep(Duration::from_secs(86400))),
            armed: None,
        }
    }

    /// Makes sure the timer fires no later than `want` (never, for `None`).
    pub(crate) fn arm(&mut self, want: Option<Instant>) {
        match (want, self.armed) {
            (Some(w), Some(a)) if a <= w => {}
            (Some(w), _) => {
                self.sleep.as_mut().reset(w.into());
                self.armed = Some(w);
            }
            (None, _) => self.armed = None,
        }
    }

    /// Resolves when the armed deadline passes; never while none is armed.
    pub(crate) async fn fired(&mut self) {
        if self.armed.is_none() {
            return std::future::pending().await;
        }
        self.sleep.as_mut().await;
        self.armed = None;
    }
}

/// The time now, on tokio's clock (which tests may pause and advance).
pub(crate) fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// The time to handle a timeout at, when the state machine's deadline has
/// passed (the timer may fire early, for a deadline that has since moved).
pub(crate) fn due(deadline: Option<Instant>) -> Option<Instant> {
    let now = now();
    deadline.filter(|&d| d <= now).map(|_| now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn fires_at_the_earliest_deadline_asked_for() {
        let mut t = Timer::new();
        let start = now();
        t.arm(Some(start + Duration::from_millis(500)));
        // A later deadline does not move the timer.
        t.arm(Some(start + Duration::from_millis(900)));
        t.fired().await;
        let waited = now() - start;
        assert!(waited >= Duration::from_millis(500) && waited < Duration::from_millis(900));
        // An earlier one does.
        let at = now();
        t.arm(Some(at + Duration::from_millis(300)));
        t.arm(Some(at + Duration::from_millis(100)));
        t.fired().await;
        let waited = now() - at;
        assert!(waited >= Duration::from_millis(100) && waited < Duration::from_millis(300));
    }

    #[tokio::test(start_paused = true)]
    async fn never_fires_while_disarmed() {
        let mut t = Timer::new();
        t.arm(Some(now() + Duration::from_millis(10)));
        t.arm(None);
        let r = tokio::time::timeout(Duration::from_secs(3600), t.fired()).await;
        assert!(r.is_err(), "a disarmed timer fired");
    }

    #[test]
    fn due_only_once_the_deadline_has_passed() {
        let at = now();
        assert!(due(None).is_none());
        assert!(due(Some(at + Duration::from_secs(5))).is_none());
        assert!(due(Some(at - Duration::from_millis(1))).is_some());
    }
}
