//! Tests of [`WriteTransfer`](super::WriteTransfer), driven through the shared
//! harness (`proto/harness.rs`).

use super::*;
use crate::proto::harness::{Harness, Sent, negotiated};

impl Harness<WriteTransfer> {
    fn new(n: Negotiated, config: TransferConfig, max_bytes: u64) -> Self {
        Harness::start(|now| WriteTransfer::new(now, &n, &config, max_bytes))
    }

    fn simple(blksize: u16, windowsize: u16) -> Self {
        Self::new(
            negotiated(blksize, windowsize, &[]),
            TransferConfig::default(),
            u64::MAX,
        )
    }
}

#[test]
fn lock_step_without_options() {
    let mut h = Harness::simple(512, 1);
    assert_eq!(h.sent(), vec![Sent::Ack(0)]);
    assert_eq!(h.t.poll_timeout(), Some(h.base + Duration::from_secs(1)));
    assert_eq!(h.data(1, 512), (true, vec![Sent::Ack(1)]));
    assert_eq!(h.data(2, 512), (true, vec![Sent::Ack(2)]));
    assert!(!h.t.awaits_verdict());
    // The short block: handed on, but its ACK waits for accept().
    assert_eq!(h.data(3, 100), (true, vec![]));
    assert!(h.t.awaits_verdict());
    assert_eq!(h.t.outcome(), None);
    assert_eq!(h.t.poll_timeout(), None);
    assert_eq!(h.t.bytes_received(), 1124);
    assert_eq!(h.stored.len(), 1124);
    h.t.accept(h.now);
    assert!(!h.t.awaits_verdict());
    assert_eq!(h.sent(), vec![Sent::Ack(3)]);
    assert_eq!(h.t.outcome(), Some(&Outcome::Complete));
    assert!(!h.t.is_finished());
    assert_eq!(h.t.retransmits(), 0);
}

#[test]
fn oack_first_then_data_1() {
    let mut h = Harness::new(
        negotiated(1024, 1, &[("blksize", "1024"), ("tsize", "1500")]),
        TransferConfig::default(),
        u64::MAX,
    );
    assert_eq!(
        h.sent(),
        vec![Sent::Oack(vec![
            ("blksize".into(), "1024".into()),
            ("tsize".into(), "1500".into())
        ])]
    );
    assert_eq!(h.data(1, 1024), (true, vec![Sent::Ack(1)]));
    assert_eq!(h.data(2, 476), (true, vec![]));
    h.t.accept(h.now);
    assert_eq!(h.sent(), vec![Sent::Ack(2)]);
    assert_eq!(h.t.bytes_received(), 1500);
}

#[test]
fn oack_is_retransmitted_with_backoff_then_gives_up() {
    let config = TransferConfig {
        retransmit_timeout: Duration::from_secs(1),
        backoff: 3,
        max_retransmit_timeout: Duration::from_secs(5),
        max_retries: 3,
        ..TransferConfig::default()
    };
    let mut h = Harness::new(negotiated(512, 1, &[("tsize", "0")]), config, u64::MAX);
    let oack = h.sent();
    assert!(matches!(oack[..], [Sent::Oack(_)]));
    // Too early: nothing.
    h.t.handle_timeout(h.now + Duration::from_millis(500));
    assert_eq!(h.sent(), vec![]);
    let mut waits = vec![];
    for _ in 0..3 {
        let before = h.now;
        assert_eq!(h.fire(), oack);
        waits.push(h.now - before);
    }
    assert_eq!(h.t.retransmits(), 3);
    let before = h.now;
    assert_eq!(h.fire(), vec![]);
    waits.push(h.now - before);
    // 1 s, 3 s, 5 s (9 s capped), 5 s.
    assert_eq!(waits, [1, 3, 5, 5].map(Duration::from_secs).to_vec());
    assert_eq!(h.t.outcome(), Some(&Outcome::TimedOut));
    assert!(h.t.is_finished());
    assert_eq!(h.t.poll_timeout(), None);
    assert_eq!(h.data(1, 512), (false, vec![]));
}

#[test]
fn ack_0_is_retransmitted_on_timeout() {
    let mut h = Harness::simple(512, 1);
    assert_eq!(h.sent(), vec![Sent::Ack(0)]);
    assert_eq!(h.fire(), vec![Sent::Ack(0)]);
    assert_eq!(h.t.retransmits(), 1);
}

#[test]
fn repeated_request_resends_the_oack() {
    let config = TransferConfig {
        max_retries: 2,
        ..TransferConfig::default()
    };
    let mut h = Harness::new(negotiated(512, 1, &[("tsize", "0")]), config, u64::MAX);
    let oack = h.sent();
    assert!(matches!(oack[..], [Sent::Oack(_)]));
    h.advance(Duration::from_millis(300));
    assert_eq!(h.repeat(), (true, oack.clone()));
    assert_eq!(h.t.retransmits(), 1);
    assert_eq!(h.t.poll_timeout(), Some(h.now + Duration::from_secs(1)));
    // After a timeout, a repeat keeps the backoff: the wait stays 2 s.
    assert_eq!(h.fire(), oack);
    assert_eq!(h.repeat(), (true, oack.clone()));
    assert_eq!(h.t.poll_timeout(), Some(h.now + Duration::from_secs(2)));
    // No retry was spent on the repeat: one is left.
    assert_eq!(h.fire(), oack);
    assert_eq!(h.t.outcome(), None);
    assert_eq!(h.t.retransmits(), 4);
    assert_eq!(h.data(1, 512), (true, vec![Sent::Ack(1)]));
    // DATA 1 came: the client has the OACK.
    assert_eq!(h.repeat(), (false, vec![]));
    assert_eq!(h.t.retransmits(), 4);
}

#[test]
fn repeated_request_resends_ack_0_until_data_1() {
    let mut h = Harness::simple(512, 1);
    // Before anything was sent: nothing happens, ACK 0 goes once.
    assert!(!h.t.handle_repeat(h.now));
    assert_eq!(h.sent(), vec![Sent::Ack(0)]);
    assert_eq!(h.repeat(), (true, vec![Sent::Ack(0)]));
    assert_eq!(h.repeat(), (true, vec![Sent::Ack(0)]));
    assert_eq!(h.t.retransmits(), 2);
    assert_eq!(h.data(1, 512), (true, vec![Sent::Ack(1)]));
    assert_eq!(h.repeat(), (false, vec![]));
    assert_eq!(h.data(2, 0), (true, vec![]));
    assert_eq!(h.repeat(), (false, vec![]), "waiting for the verdict");
    h.t.accept(h.now);
    assert_eq!(h.sent(), vec![Sent::Ack(2)]);
    assert_eq!(h.repeat(), (false, vec![]), "dallying");
    assert_eq!(h.t.retransmits(), 2);
}

#[test]
fn timeout_resends_last_ack_and_data_resets_retries() {
    let config = TransferConfig {
        max_retries: 2,
        // The round trips here take no time: keep the adapted wait at 1 s.
        min_retransmit_timeout: Duration::from_secs(1),
        ..TransferConfig::default()
    };
    let mut h = Harness::new(negotiated(8, 1, &[]), config, u64::MAX);
    h.sent();
    assert_eq!(h.data(1, 8), (true, vec![Sent::Ack(1)]));
    assert_eq!(h.t.poll_timeout(), Some(h.now + Duration::from_secs(1)));
    assert_eq!(h.fire(), vec![Sent::Ack(1)]);
    assert_eq!(h.fire(), vec![Sent::Ack(1)]);
    // New data: a fresh retry budget and the base timeout.
    assert_eq!(h.data(2, 8), (true, vec![Sent::Ack(2)]));
    assert_eq!(h.t.poll_timeout(), Some(h.now + Duration::from_secs(1)));
    assert_eq!(h.fire(), vec![Sent::Ack(2)]);
    assert_eq!(h.fire(), vec![Sent::Ack(2)]);
    assert_eq!(h.fire(), vec![]);
    assert_eq!(h.t.outcome(), Some(&Outcome::TimedOut));
    assert_eq!(h.t.retransmits(), 4);
}

#[test]
fn negotiated_timeout_replaces_configured_one() {
    let mut n = negotiated(512, 1, &[("timeout", "4")]);
    n.timeout = Some(Duration::from_secs(4));
    let h = Harness::new(n, TransferConfig::default(), u64::MAX);
    assert_eq!(h.t.poll_timeout(), Some(h.base + Duration::from_secs(4)));
}

#[test]
fn empty_upload() {
    let mut h = Harness::simple(512, 1);
    h.sent();
    assert_eq!(h.data(1, 0), (true, vec![]));
    assert!(h.t.awaits_verdict());
    h.t.accept(h.now);
    assert_eq!(h.sent(), vec![Sent::Ack(1)]);
    assert_eq!(h.t.bytes_received(), 0);
}

#[test]
fn upload_multiple_of_blksize_ends_with_empty_block() {
    let mut h = Harness::simple(8, 1);
    h.sent();
    assert_eq!(h.data(1, 8), (true, vec![Sent::Ack(1)]));
    assert!(!h.t.awaits_verdict(), "a full block is not the last");
    assert_eq!(h.data(2, 0), (true, vec![]));
    assert!(h.t.awaits_verdict());
}

#[test]
fn duplicate_data_is_re_acked_and_handed_on_once() {
    let mut h = Harness::simple(8, 1);
    h.sent();
    assert_eq!(h.data(1, 8), (true, vec![Sent::Ack(1)]));
    let deadline = h.t.poll_timeout();
    // The client did not get ACK 1: every duplicate is re-ACKed.
    for _ in 0..3 {
        assert_eq!(h.data(1, 8), (false, vec![Sent::Ack(1)]));
    }
    assert_eq!(h.t.poll_timeout(), deadline, "a duplicate is no progress");
    assert_eq!(h.data(2, 8), (true, vec![Sent::Ack(2)]));
    assert_eq!(h.t.bytes_received(), 16);
    assert_eq!(h.stored, [[1u8; 8], [2u8; 8]].concat());
    // A block from the future (gap) is not handed on either.
    assert_eq!(h.data(9, 8), (false, vec![Sent::Ack(2)]));
    assert_eq!(h.t.bytes_received(), 16);
    assert_eq!(h.t.blocks_received(), 2);
    assert_eq!(h.t.duplicates(), 4, "three duplicates and one after a gap");
}

#[test]
fn window_acks_after_windowsize_blocks() {
    let mut h = Harness::simple(8, 4);
    h.sent();
    for b in 1..=3 {
        assert_eq!(h.data(b, 8), (true, vec![]), "block {b}: no ACK mid-window");
    }
    assert_eq!(h.data(4, 8), (true, vec![Sent::Ack(4)]));
    for b in 5..=7 {
        assert_eq!(h.data(b, 8), (true, vec![]));
    }
    assert_eq!(h.data(8, 8), (true, vec![Sent::Ack(8)]));
    // The last block is ACKed at accept, even mid-window.
    assert_eq!(h.data(9, 8), (true, vec![]));
    assert_eq!(h.data(10, 3), (true, vec![]));
    assert!(h.t.awaits_verdict());
    h.t.accept(h.now);
    assert_eq!(h.sent(), vec![Sent::Ack(10)]);
    assert_eq!(h.t.bytes_received(), 75);
}

#[test]
fn lost_block_in_window_is_re_acked_once() {
    let mut h = Harness::simple(8, 4);
    h.sent();
    assert_eq!(h.data(1, 8), (true, vec![]));
    // Block 2 is lost: 3 reveals the gap, ACK 1 tells the sender.
    assert_eq!(h.data(3, 8), (false, vec![Sent::Ack(1)]));
    // More of the same window: no ACK storm.
    assert_eq!(h.data(4, 8), (false, vec![]));
    assert_eq!(h.data(1, 8), (false, vec![]), "duplicates too");
    // The sender restarts at 2 with a new window of 4.
    assert_eq!(h.data(2, 8), (true, vec![]));
    assert_eq!(h.data(3, 8), (true, vec![]));
    assert_eq!(h.data(4, 8), (true, vec![]));
    assert_eq!(h.data(5, 8), (true, vec![Sent::Ack(5)]));
    // New data re-arms the one re-ACK.
    assert_eq!(h.data(7, 8), (false, vec![Sent::Ack(5)]));
    assert_eq!(h.data(8, 8), (false, vec![]));
    // So does the timer: it ACKs the last in-order block, and the next
    // out-of-order block may be re-ACKed again.
    assert_eq!(h.fire(), vec![Sent::Ack(5)]);
    assert_eq!(h.data(8, 8), (false, vec![Sent::Ack(5)]));
    assert_eq!(h.stored.len(), 40);
    assert_eq!(h.stored, (1..=5u8).flat_map(|b| [b; 8]).collect::<Vec<_>>());
}

#[test]
fn timeout_mid_window_acks_last_in_order_block() {
    let mut h = Harness::simple(8, 8);
    h.sent();
    for b in 1..=3 {
        h.data(b, 8);
    }
    assert_eq!(h.fire(), vec![Sent::Ack(3)]);
    // The sender resumes at 4 with a full window: ACK after 8 more.
    for b in 4..=10 {
        assert_eq!(h.data(b, 8), (true, vec![]));
    }
    assert_eq!(h.data(11, 8), (true, vec![Sent::Ack(11)]));
}

#[test]
fn lost_window_tail_is_acked_after_the_idle_wait_not_the_timeout() {
    // The round trips here take no time: keep the adapted wait at 1 s.
    let config = TransferConfig {
        min_retransmit_timeout: Duration::from_secs(1),
        ..TransferConfig::default()
    };
    let mut h = Harness::new(negotiated(8, 4, &[]), config, u64::MAX);
    h.sent();
    h.data(1, 8);
    h.data(2, 8);
    // Blocks 3 and 4 are lost: the idle wait, not the 1 s timeout.
    let idle = TransferConfig::default().window_idle;
    assert_eq!(h.t.poll_timeout(), Some(h.now + idle));
    assert_eq!(h.fire(), vec![Sent::Ack(2)]);
    assert_eq!(h.t.retransmits(), 0, "an early ACK is no retransmission");
    // Then the ordinary timeout applies again.
    assert_eq!(
        h.t.poll_timeout(),
        Some(h.now + TransferConfig::default().retransmit_timeout)
    );
    // A whole window arrives: ACK at its end, with no idle wait.
    for b in 3..=5 {
        assert_eq!(h.data(b, 8), (true, vec![]));
    }
    assert_eq!(h.data(6, 8), (true, vec![Sent::Ack(6)]));
    assert_eq!(
        h.t.poll_timeout(),
        Some(h.now + TransferConfig::default().retransmit_timeout)
    );
}

#[test]
fn last_block_waits_for_accept_and_retransmissions_are_ignored() {
    let mut h = Harness::simple(8, 1);
    h.sent();
    h.data(1, 8);
    assert_eq!(h.data(2, 5), (true, vec![]));
    for _ in 0..3 {
        assert_eq!(h.data(2, 5), (false, vec![]));
    }
    assert_eq!(h.t.poll_timeout(), None);
    h.t.handle_timeout(h.now + Duration::from_secs(1000));
    assert_eq!(h.sent(), vec![]);
    assert!(h.t.awaits_verdict());
    assert_eq!(h.t.bytes_received(), 13);
}

#[test]
fn dally_re_acks_the_last_block() {
    let config = TransferConfig {
        dally: Duration::from_secs(2),
        ..TransferConfig::default()
    };
    let mut h = Harness::new(negotiated(8, 1, &[]), config, u64::MAX);
    h.sent();
    h.data(1, 8);
    h.data(2, 1);
    h.now += Duration::from_millis(10);
    h.t.accept(h.now);
    assert_eq!(h.sent(), vec![Sent::Ack(2)]);
    let end = h.now + Duration::from_secs(2);
    assert_eq!(h.t.poll_timeout(), Some(end));
    // The final ACK was lost: the client sends block 2 again.
    h.now += Duration::from_millis(500);
    assert_eq!(h.data(2, 1), (false, vec![Sent::Ack(2)]));
    assert_eq!(h.data(2, 1), (false, vec![Sent::Ack(2)]));
    // Other blocks are not answered.
    assert_eq!(h.data(1, 8), (false, vec![]));
    assert_eq!(h.t.poll_timeout(), Some(end));
    assert!(!h.t.is_finished());
    h.t.handle_timeout(end - Duration::from_millis(1));
    assert!(!h.t.is_finished(), "not before the deadline");
    assert_eq!(h.fire(), vec![]);
    assert!(h.t.is_finished());
    assert_eq!(h.t.outcome(), Some(&Outcome::Complete));
    assert_eq!(h.t.poll_timeout(), None);
    assert_eq!(h.data(2, 1), (false, vec![]), "after the dally: silence");
    assert_eq!(h.t.bytes_received(), 9);
}

#[test]
fn abort_instead_of_final_ack() {
    let mut h = Harness::simple(8, 1);
    h.sent();
    h.data(1, 3);
    assert!(h.t.awaits_verdict());
    h.t.abort(ErrorCode::AccessViolation, "checksum mismatch");
    assert!(!h.t.is_finished(), "the ERROR is not sent yet");
    assert_eq!(h.sent(), vec![Sent::Error(2, "checksum mismatch".into())]);
    assert!(h.t.is_finished());
    assert_eq!(
        h.t.outcome(),
        Some(&Outcome::Failed {
            code: ErrorCode::AccessViolation,
            message: "checksum mismatch".into()
        })
    );
    // accept() after abort does nothing; nothing more is sent.
    h.t.accept(h.now);
    assert_eq!(h.sent(), vec![]);
    assert_eq!(h.data(1, 3), (false, vec![]));
}

#[test]
fn abort_mid_transfer_and_after_accept() {
    let mut h = Harness::simple(8, 1);
    h.sent();
    h.data(1, 8);
    h.t.abort(ErrorCode::Undefined, "shutting down");
    assert_eq!(h.sent(), vec![Sent::Error(0, "shutting down".into())]);
    assert_eq!(h.t.poll_timeout(), None);

    // After accept the upload is complete: abort is ignored.
    let mut h = Harness::simple(8, 1);
    h.sent();
    h.data(1, 2);
    h.t.accept(h.now);
    h.t.abort(ErrorCode::Undefined, "too late");
    assert_eq!(h.sent(), vec![Sent::Ack(1)]);
    assert_eq!(h.t.outcome(), Some(&Outcome::Complete));
}

#[test]
fn upload_over_max_bytes_is_refused_with_error_3() {
    let mut h = Harness::new(negotiated(512, 1, &[]), TransferConfig::default(), 1000);
    h.sent();
    assert_eq!(h.data(1, 512), (true, vec![Sent::Ack(1)]));
    assert_eq!(
        h.data(2, 512),
        (
            false,
            vec![Sent::Error(
                3,
                "upload exceeds the limit of 1000 bytes".into()
            )]
        )
    );
    assert_eq!(h.t.bytes_received(), 512);
    assert!(matches!(
        h.t.outcome(),
        Some(Outcome::Failed {
            code: ErrorCode::DiskFull,
            ..
        })
    ));
    assert!(h.t.is_finished());
    // Exactly at the limit is fine.
    let mut h = Harness::new(negotiated(512, 1, &[]), TransferConfig::default(), 1024);
    h.sent();
    h.data(1, 512);
    assert_eq!(h.data(2, 512), (true, vec![Sent::Ack(2)]));
    assert_eq!(h.data(3, 0), (true, vec![]));
    assert!(h.t.awaits_verdict());
}

#[test]
fn block_larger_than_blksize_is_illegal() {
    let mut h = Harness::simple(512, 1);
    h.sent();
    let (handed, sent) = h.data(1, 513);
    assert!(!handed);
    let [Sent::Error(4, msg)] = &sent[..] else {
        panic!("{sent:?}")
    };
    assert!(msg.contains("513") && msg.contains("blksize"), "{msg}");
    assert!(matches!(
        h.t.outcome(),
        Some(Outcome::Failed {
            code: ErrorCode::IllegalOperation,
            ..
        })
    ));
}

#[test]
fn client_error_ends_quietly() {
    for before_data in [true, false] {
        let mut h = Harness::simple(8, 1);
        h.sent();
        if !before_data {
            h.data(1, 8);
        }
        assert_eq!(h.error(0, "user cancelled"), vec![]);
        assert_eq!(
            h.t.outcome(),
            Some(&Outcome::PeerError {
                code: 0,
                message: "user cancelled".into()
            })
        );
        assert!(h.t.is_finished());
        assert_eq!(h.t.poll_timeout(), None);
    }
}

#[test]
fn stray_packets_are_ignored() {
    let mut h = Harness::simple(8, 1);
    h.sent();
    let req = crate::proto::RequestPacket {
        filename: "f",
        mode: crate::proto::Mode::Octet,
        options: vec![],
    };
    for p in [
        Packet::Ack { block: 0 },
        Packet::Rrq(req.clone()),
        Packet::Wrq(req),
        Packet::Oack { options: vec![] },
    ] {
        assert_eq!(h.t.handle_packet(h.now, &p), None);
        assert_eq!(h.sent(), vec![]);
        assert_eq!(h.t.outcome(), None);
    }
    assert_eq!(h.data(1, 8), (true, vec![Sent::Ack(1)]));
}

#[test]
fn rollover_past_65535_lock_step() {
    for rollover in [Rollover::ToZero, Rollover::ToOne] {
        let config = TransferConfig {
            rollover,
            ..TransferConfig::default()
        };
        let mut h = Harness::new(negotiated(8, 1, &[]), config, u64::MAX);
        h.sent();
        for n in 1..=65537u64 {
            let wire = to_wire(n, rollover);
            assert_eq!(h.data(wire, 8), (true, vec![Sent::Ack(wire)]), "{n}");
        }
        // 65538 is 2 (ToZero) or 3 (ToOne) on the wire; the next number
        // is out of order and only re-ACKs 65537.
        let (right, wrong) = match rollover {
            Rollover::ToZero => (2, 3),
            Rollover::ToOne => (3, 4),
        };
        assert_eq!(to_wire(65538, rollover), right);
        assert_eq!(h.data(wrong, 8), (false, vec![Sent::Ack(right - 1)]));
        assert_eq!(h.data(right, 3), (true, vec![]));
        h.t.accept(h.now);
        assert_eq!(h.sent(), vec![Sent::Ack(right)]);
        assert_eq!(h.t.bytes_received(), 65537 * 8 + 3);
    }
}

#[test]
fn rollover_at_the_exact_wrap() {
    // 65535 is followed by 0 (ToZero) or 1 (ToOne); the other is a gap.
    for (rollover, next, other) in [(Rollover::ToZero, 0u16, 1u16), (Rollover::ToOne, 1, 0)] {
        let config = TransferConfig {
            rollover,
            ..TransferConfig::default()
        };
        let mut h = Harness::new(negotiated(8, 1, &[]), config, u64::MAX);
        h.sent();
        for n in 1..=65535u16 {
            h.data(n, 8);
        }
        assert_eq!(
            h.data(other, 8),
            (false, vec![Sent::Ack(65535)]),
            "{rollover:?}"
        );
        assert_eq!(
            h.data(next, 8),
            (true, vec![Sent::Ack(next)]),
            "{rollover:?}"
        );
    }
}

#[test]
fn rollover_inside_a_window() {
    for rollover in [Rollover::ToZero, Rollover::ToOne] {
        let config = TransferConfig {
            rollover,
            ..TransferConfig::default()
        };
        let mut h = Harness::new(negotiated(8, 8, &[]), config, u64::MAX);
        h.sent();
        // Windows of 8 from block 1: 65529..=65536 spans 65535.
        for n in 1..=65528u64 {
            h.data(to_wire(n, rollover), 8);
        }
        for n in 65529..65536u64 {
            assert_eq!(h.data(to_wire(n, rollover), 8), (true, vec![]));
        }
        let w = to_wire(65536, rollover);
        assert_eq!(h.data(w, 8), (true, vec![Sent::Ack(w)]), "{rollover:?}");
        // A gap right after the wrap re-ACKs the wrapped number.
        let skip = to_wire(65538, rollover);
        assert_eq!(h.data(skip, 8), (false, vec![Sent::Ack(w)]));
        assert_eq!(h.t.bytes_received(), 65536 * 8);
    }
}

/// A client that negotiated `timeout` 5 (curl does) retransmits its last
/// block after 5 s if the final ACK was lost: the dally covers twice that.
#[test]
fn the_dally_covers_the_clients_own_timeout() {
    let short = TransferConfig {
        dally: Duration::from_secs(2),
        ..TransferConfig::default()
    };
    let mut n = negotiated(8, 1, &[("timeout", "5")]);
    n.timeout = Some(Duration::from_secs(5));
    let mut h = Harness::new(n, short.clone(), u64::MAX);
    h.sent();
    h.data(1, 3);
    h.t.accept(h.now);
    assert_eq!(h.sent(), vec![Sent::Ack(1)]);
    assert_eq!(h.t.poll_timeout(), Some(h.now + Duration::from_secs(10)));
    // The lost final ACK: the client's retransmission after 5 s is answered.
    h.now += Duration::from_secs(5);
    assert_eq!(h.data(1, 3), (false, vec![Sent::Ack(1)]));
    assert!(!h.t.is_finished());
    // Without a negotiated timeout the configured dally stays (2 s here).
    let mut h = Harness::new(negotiated(8, 1, &[]), short, u64::MAX);
    h.sent();
    h.data(1, 3);
    h.t.accept(h.now);
    assert_eq!(h.t.poll_timeout(), Some(h.now + Duration::from_secs(2)));
    // The default covers clients that negotiate nothing and wait 5 to 6 s
    // (tftp-hpa, curl), twice.
    assert!(TransferConfig::default().dally >= Duration::from_secs(12));
}

#[test]
fn the_round_trip_is_measured_from_fresh_acks_only() {
    let ms = Duration::from_millis;
    let mut h = Harness::simple(8, 2);
    assert_eq!(h.sent(), vec![Sent::Ack(0)]);
    h.now += ms(40);
    h.data(1, 8);
    assert_eq!(h.t.srtt(), Some(ms(40)), "ACK 0 to DATA 1");
    assert_eq!(h.data(2, 8), (true, vec![Sent::Ack(2)]));
    h.now += ms(10);
    h.data(3, 8);
    let want = Duration::from_micros(36_250);
    assert_eq!(h.t.srtt(), Some(want), "7/8 × 40 + 1/8 × 10 ms (RFC 6298)");
    // A re-ACK after a timeout is not measured (Karn's rule).
    h.data(4, 8);
    let before = h.t.srtt();
    assert_eq!(h.fire(), vec![Sent::Ack(4)]);
    h.now += ms(1);
    h.data(5, 8);
    assert_eq!(h.t.srtt(), before);
}
