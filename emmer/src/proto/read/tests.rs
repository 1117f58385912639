//! Tests of [`ReadTransfer`](super::ReadTransfer), driven through the shared
//! harness (`proto/harness.rs`).

use std::time::Duration;

use super::*;
use crate::proto::harness::{Harness, Sent, blocks, last_block, negotiated};

fn data(block: u16, len: usize) -> Sent {
    Sent::Data(block, vec![b'x'; len])
}

impl Harness<ReadTransfer> {
    fn new(n: Negotiated, config: TransferConfig, body_len: usize) -> Self {
        let mut h = Harness::start(|now| ReadTransfer::new(now, &n, &config));
        h.body = vec![b'x'; body_len];
        h
    }

    fn simple(blksize: u16, windowsize: u16, body_len: usize) -> Self {
        Self::new(
            negotiated(blksize, windowsize, &[]),
            TransferConfig::default(),
            body_len,
        )
    }
}

#[test]
fn lock_step_without_options() {
    let mut h = Harness::simple(512, 1, 1300);
    assert_eq!(h.step(), vec![data(1, 512)]);
    assert_eq!(h.t.poll_timeout(), Some(h.base + Duration::from_secs(1)));
    assert_eq!(h.ack(1), vec![data(2, 512)]);
    assert_eq!(h.t.bytes_acked(), 512);
    assert_eq!(h.ack(2), vec![data(3, 276)]);
    assert_eq!(h.t.outcome(), None);
    assert_eq!(h.ack(3), vec![]);
    assert_eq!(h.t.outcome(), Some(&Outcome::Complete));
    assert_eq!(h.t.bytes_acked(), 1300);
    assert_eq!(h.t.poll_timeout(), None);
    assert_eq!(h.t.retransmits(), 0);
}

#[test]
fn data_1_waits_until_it_is_filled() {
    let mut h = Harness::simple(512, 1, 0);
    // Nothing filled yet: nothing to send, no timer.
    assert_eq!(h.sent(), vec![]);
    assert_eq!(h.t.poll_timeout(), None);
    let buf = h.t.fill_buf().unwrap();
    assert_eq!(buf.len(), 512);
    h.t.commit(100);
    assert_eq!(h.sent(), vec![], "a partial block is not ready");
    assert_eq!(h.t.fill_buf().unwrap().len(), 412);
    h.t.commit(412);
    assert_eq!(h.sent(), vec![Sent::Data(1, vec![0; 512])]);
    // Window of 1 is full: no space until ACK 1.
    assert!(h.t.fill_buf().is_none());
}

#[test]
fn empty_body_is_one_empty_data_block() {
    let mut h = Harness::simple(512, 1, 0);
    assert_eq!(h.step(), vec![data(1, 0)]);
    assert_eq!(h.ack(1), vec![]);
    assert_eq!(h.t.outcome(), Some(&Outcome::Complete));
    assert_eq!(h.t.bytes_acked(), 0);
}

#[test]
fn body_multiple_of_blksize_ends_with_empty_block() {
    for ws in [1u16, 2, 4] {
        let mut h = Harness::simple(512, ws, 1024);
        let mut got = h.step();
        let mut acked = 0u16;
        while h.t.outcome().is_none() {
            let last = match got.last() {
                Some(Sent::Data(b, _)) => *b,
                other => panic!("ws {ws}: {other:?}"),
            };
            for s in &got {
                let Sent::Data(b, d) = s else { panic!() };
                assert_eq!(d.len(), if *b == 3 { 0 } else { 512 }, "ws {ws} block {b}");
            }
            assert!(last > acked);
            acked = last;
            got = h.ack(last);
        }
        assert_eq!(acked, 3, "ws {ws}: the last block is the empty block 3");
        assert_eq!(h.t.outcome(), Some(&Outcome::Complete));
        assert_eq!(h.t.bytes_acked(), 1024);
    }
}

#[test]
fn full_window_then_empty_last_block_after_ack() {
    // Exactly one window of full blocks: the empty block 5 is beyond it.
    let mut h = Harness::simple(8, 4, 32);
    assert_eq!(
        h.step(),
        vec![data(1, 8), data(2, 8), data(3, 8), data(4, 8)]
    );
    assert_eq!(h.ack(4), vec![data(5, 0)]);
    assert_eq!(h.ack(5), vec![]);
    assert_eq!(h.t.outcome(), Some(&Outcome::Complete));
    assert_eq!(h.t.bytes_acked(), 32);
}

#[test]
fn finish_without_asking_for_space_sends_empty_block() {
    // finish() right after a full block, without a fill_buf for the next.
    let base = Instant::now();
    let mut t = ReadTransfer::new(base, &negotiated(8, 4, &[]), &TransferConfig::default());
    t.fill_buf().unwrap().copy_from_slice(b"abcdefgh");
    t.commit(8);
    t.finish();
    let mut out = Vec::new();
    assert_eq!(t.poll_transmit(base, &mut out), Some(12));
    assert_eq!(out, b"\x00\x03\x00\x01abcdefgh");
    out.clear();
    assert_eq!(t.poll_transmit(base, &mut out), Some(4));
    assert_eq!(out, b"\x00\x03\x00\x02");
    assert_eq!(t.poll_transmit(base, &mut out), None);
    t.handle_packet(base, &Packet::Ack { block: 2 });
    assert_eq!(t.outcome(), Some(&Outcome::Complete));
    assert_eq!(t.bytes_acked(), 8);
}

#[test]
fn oack_first_and_data_after_ack_0() {
    let mut h = Harness::new(
        negotiated(1024, 1, &[("blksize", "1024"), ("tsize", "2000")]),
        TransferConfig::default(),
        2000,
    );
    assert_eq!(
        h.step(),
        vec![Sent::Oack(vec![
            ("blksize".into(), "1024".into()),
            ("tsize".into(), "2000".into())
        ])]
    );
    // Block 1 is filled meanwhile, but waits for ACK 0.
    assert_eq!(h.step(), vec![]);
    assert!(h.t.poll_timeout().is_some());
    // An ACK of another block does not count as ACK 0.
    assert_eq!(h.ack(1), vec![]);
    assert_eq!(h.ack(0), vec![data(1, 1024)]);
    // A duplicate ACK 0 after DATA 1 changes nothing.
    assert_eq!(h.ack(0), vec![]);
    assert_eq!(h.ack(1), vec![data(2, 976)]);
    assert_eq!(h.ack(2), vec![]);
    assert_eq!(h.t.outcome(), Some(&Outcome::Complete));
}

#[test]
fn error_in_answer_to_oack_is_a_size_probe() {
    for code in [8u16, 0] {
        let mut h = Harness::new(
            negotiated(512, 1, &[("tsize", "123")]),
            TransferConfig::default(),
            123,
        );
        assert_eq!(
            h.step(),
            vec![Sent::Oack(vec![("tsize".into(), "123".into())])]
        );
        assert_eq!(h.error(code, "tsize only"), vec![]);
        assert_eq!(h.t.outcome(), Some(&Outcome::SizeProbe));
        assert_eq!(h.t.poll_timeout(), None);
        assert!(h.t.outcome().unwrap().is_success());
    }
}

#[test]
fn error_after_ack_0_is_a_peer_error() {
    let mut h = Harness::new(
        negotiated(512, 1, &[("tsize", "600")]),
        TransferConfig::default(),
        600,
    );
    h.step();
    assert_eq!(h.ack(0), vec![data(1, 512)]);
    assert_eq!(h.error(2, "disk on fire"), vec![]);
    assert_eq!(
        h.t.outcome(),
        Some(&Outcome::PeerError {
            code: 2,
            message: "disk on fire".into()
        })
    );
    assert_eq!(h.t.poll_timeout(), None);
    assert_eq!(h.ack(1), vec![], "nothing after the end");
}

#[test]
fn oack_is_retransmitted_on_timeout() {
    let mut h = Harness::new(
        negotiated(512, 1, &[("blksize", "512")]),
        TransferConfig::default(),
        10,
    );
    let oack = h.step();
    assert_eq!(oack.len(), 1);
    assert_eq!(h.fire(), oack);
    assert_eq!(h.t.retransmits(), 1);
    assert_eq!(h.now, h.base + Duration::from_secs(1));
    // The second wait is doubled.
    assert_eq!(h.t.poll_timeout(), Some(h.base + Duration::from_secs(3)));
    assert_eq!(h.ack(0), vec![data(1, 10)]);
    // Progress resets the backoff.
    assert_eq!(h.t.poll_timeout(), Some(h.now + Duration::from_secs(1)));
}

#[test]
fn duplicate_ack_never_triggers_data() {
    // RFC 1123 §4.2.3.1: Sorcerer's Apprentice.
    let mut h = Harness::simple(512, 1, 2000);
    h.step();
    assert_eq!(h.ack(1), vec![data(2, 512)]);
    let deadline = h.t.poll_timeout();
    h.advance(Duration::from_millis(300));
    assert_eq!(h.ack(1), vec![], "duplicate ACK 1");
    assert_eq!(h.ack(0), vec![], "stale ACK 0");
    assert_eq!(h.ack(3), vec![], "ACK of an unsent block");
    assert_eq!(h.ack(60000), vec![]);
    assert_eq!(h.t.poll_timeout(), deadline, "the timer is not reset");
    assert_eq!(h.t.retransmits(), 0);
    assert_eq!(h.t.duplicates(), 4, "each ignored ACK is counted");
    assert_eq!(h.t.blocks_acked(), 1);
    assert_eq!(h.ack(2), vec![data(3, 512)]);
    assert_eq!(h.t.blocks_acked(), 2);
    assert_eq!(h.t.duplicates(), 4);
}

#[test]
fn windows_and_mid_window_ack() {
    // 10 full blocks and a short one, window of 4.
    let mut h = Harness::simple(8, 4, 10 * 8 + 3);
    assert_eq!(
        h.step(),
        vec![data(1, 8), data(2, 8), data(3, 8), data(4, 8)]
    );
    assert!(h.t.fill_buf().is_none(), "at most one window is buffered");
    assert_eq!(h.step(), vec![], "wait for an ACK after a window");
    assert_eq!(
        h.ack(4),
        vec![data(5, 8), data(6, 8), data(7, 8), data(8, 8)]
    );
    // Mid-window: 7 and 8 were lost; they go again in a new window.
    assert_eq!(
        h.ack(6),
        vec![data(7, 8), data(8, 8), data(9, 8), data(10, 8)]
    );
    assert_eq!(h.t.bytes_acked(), 48);
    // A late ACK of the old window is a duplicate now.
    assert_eq!(h.ack(5), vec![]);
    assert_eq!(h.ack(10), vec![data(11, 3)]);
    assert_eq!(h.ack(11), vec![]);
    assert_eq!(h.t.outcome(), Some(&Outcome::Complete));
    assert_eq!(h.t.bytes_acked(), 83);
    // Mid-window resends are not timeout retransmissions.
    assert_eq!(h.t.retransmits(), 0);
}

#[test]
fn blocks_are_sent_as_they_become_ready() {
    let mut h = Harness::simple(8, 4, 0);
    let buf = h.t.fill_buf().unwrap();
    buf.copy_from_slice(&[1; 8]);
    h.t.commit(8);
    assert_eq!(h.sent(), vec![Sent::Data(1, vec![1; 8])]);
    // The timer runs while block 1 is outstanding, even though the
    // window is not full.
    assert!(h.t.poll_timeout().is_some());
    h.t.fill_buf().unwrap()[..4].copy_from_slice(&[2; 4]);
    h.t.commit(4);
    assert_eq!(h.sent(), vec![]);
    h.t.finish();
    assert_eq!(h.sent(), vec![Sent::Data(2, vec![2; 4])]);
    assert!(h.t.fill_buf().is_none(), "no space after finish");
    // ACK of everything sent: done.
    h.t.handle_packet(h.now, &Packet::Ack { block: 2 });
    assert_eq!(h.t.outcome(), Some(&Outcome::Complete));
    assert_eq!(h.t.bytes_acked(), 12);
}

#[test]
fn no_timer_while_waiting_for_the_driver() {
    let mut h = Harness::simple(8, 1, 0);
    h.t.fill_buf().unwrap();
    h.t.commit(8);
    assert_eq!(h.sent().len(), 1);
    h.t.handle_packet(h.now, &Packet::Ack { block: 1 });
    // Block 1 acknowledged, block 2 not filled: nothing outstanding.
    assert_eq!(h.t.poll_timeout(), None);
    h.t.handle_timeout(h.now + Duration::from_secs(100));
    assert_eq!(h.sent(), vec![]);
    assert_eq!(h.t.outcome(), None);
}

#[test]
fn timeout_resends_window_with_backoff_then_gives_up() {
    let config = TransferConfig {
        retransmit_timeout: Duration::from_secs(1),
        backoff: 2,
        max_retransmit_timeout: Duration::from_secs(3),
        max_retries: 3,
        ..TransferConfig::default()
    };
    let mut h = Harness::new(negotiated(8, 3, &[]), config, 100);
    let window = vec![data(1, 8), data(2, 8), data(3, 8)];
    assert_eq!(h.step(), window);
    // Too early: nothing happens.
    h.t.handle_timeout(h.now + Duration::from_millis(999));
    assert_eq!(h.sent(), vec![]);
    // Waits: 1 s, then 2 s, then 3 s (4 s capped), then 3 s.
    let mut waits = vec![];
    for _ in 0..3 {
        let before = h.now;
        assert_eq!(h.fire(), window, "the whole window again");
        waits.push(h.now - before);
    }
    assert_eq!(h.t.retransmits(), 9);
    let before = h.now;
    assert_eq!(h.fire(), vec![], "gives up after max_retries");
    waits.push(h.now - before);
    assert_eq!(
        waits,
        [1, 2, 3, 3].map(Duration::from_secs).to_vec(),
        "backoff capped at max_retransmit_timeout"
    );
    assert_eq!(h.t.outcome(), Some(&Outcome::TimedOut));
    assert_eq!(h.t.poll_timeout(), None);
    assert_eq!(h.ack(3), vec![], "nothing after giving up");
}

#[test]
fn progress_resets_the_retry_count() {
    let config = TransferConfig {
        max_retries: 1,
        ..TransferConfig::default()
    };
    let mut h = Harness::new(negotiated(8, 1, &[]), config, 40);
    h.step();
    assert_eq!(h.fire(), vec![data(1, 8)]);
    assert_eq!(h.ack(1), vec![data(2, 8)]);
    // A fresh retry budget for block 2.
    assert_eq!(h.fire(), vec![data(2, 8)]);
    assert_eq!(h.t.outcome(), None);
    assert_eq!(h.fire(), vec![]);
    assert_eq!(h.t.outcome(), Some(&Outcome::TimedOut));
    assert_eq!(h.t.retransmits(), 2);
}

#[test]
fn timeout_after_mid_window_ack_resends_from_first_unacked() {
    let mut h = Harness::simple(8, 4, 100);
    h.step();
    assert_eq!(
        h.ack(2),
        vec![data(3, 8), data(4, 8), data(5, 8), data(6, 8)]
    );
    assert_eq!(
        h.fire(),
        vec![data(3, 8), data(4, 8), data(5, 8), data(6, 8)]
    );
    assert_eq!(h.t.retransmits(), 4);
}

#[test]
fn mid_window_ack_after_a_timeout_is_no_retransmission() {
    let mut h = Harness::simple(8, 4, 100);
    let window = vec![data(1, 8), data(2, 8), data(3, 8), data(4, 8)];
    assert_eq!(h.step(), window);
    assert_eq!(h.fire(), window);
    assert_eq!(h.t.retransmits(), 4);
    // 3 and 4 go a third time, in the new window after ACK 2: not
    // because of the timeout.
    assert_eq!(
        h.ack(2),
        vec![data(3, 8), data(4, 8), data(5, 8), data(6, 8)]
    );
    assert_eq!(h.t.retransmits(), 4);
}

#[test]
fn negotiated_timeout_replaces_configured_one() {
    let mut n = negotiated(512, 1, &[("timeout", "5")]);
    n.timeout = Some(Duration::from_secs(5));
    let mut h = Harness::new(n, TransferConfig::default(), 10);
    h.step();
    assert_eq!(h.t.poll_timeout(), Some(h.base + Duration::from_secs(5)));
    // Doubling is not capped below the negotiated value (max_retransmit_timeout 8 s).
    h.fire();
    assert_eq!(h.t.poll_timeout(), Some(h.now + Duration::from_secs(8)));
}

#[test]
fn client_error_mid_transfer_is_quiet() {
    let mut h = Harness::simple(512, 2, 5000);
    h.step();
    assert_eq!(h.error(0, "cancelled"), vec![]);
    assert_eq!(
        h.t.outcome(),
        Some(&Outcome::PeerError {
            code: 0,
            message: "cancelled".into()
        })
    );
    assert!(h.t.fill_buf().is_none());
}

#[test]
fn stray_packets_from_the_client_are_ignored() {
    let mut h = Harness::simple(512, 1, 600);
    assert_eq!(h.step(), vec![data(1, 512)]);
    let req = crate::proto::RequestPacket {
        filename: "f",
        mode: crate::proto::Mode::Octet,
        options: vec![],
    };
    for p in [
        Packet::Data {
            block: 1,
            data: b"x",
        },
        Packet::Rrq(req.clone()),
        Packet::Wrq(req),
        Packet::Oack { options: vec![] },
    ] {
        h.t.handle_packet(h.now, &p);
        assert_eq!(h.step(), vec![]);
        assert_eq!(h.t.outcome(), None);
    }
    assert_eq!(h.ack(1), vec![data(2, 88)]);
}

#[test]
fn abort_sends_error_once() {
    let mut h = Harness::simple(512, 1, 600);
    h.step();
    h.t.abort(ErrorCode::Undefined, "source failed");
    assert_eq!(h.step(), vec![Sent::Error(0, "source failed".into())]);
    assert_eq!(h.step(), vec![]);
    assert_eq!(
        h.t.outcome(),
        Some(&Outcome::Failed {
            code: ErrorCode::Undefined,
            message: "source failed".into()
        })
    );
    assert_eq!(h.t.poll_timeout(), None);
    // A second abort or an ACK changes nothing.
    h.t.abort(ErrorCode::DiskFull, "again");
    assert_eq!(h.ack(1), vec![]);
    assert!(matches!(
        h.t.outcome(),
        Some(Outcome::Failed {
            code: ErrorCode::Undefined,
            ..
        })
    ));
}

#[test]
fn is_finished_once_the_outcome_is_known_and_no_error_is_left() {
    let mut h = Harness::simple(512, 1, 10);
    assert_eq!(h.step(), vec![data(1, 10)]);
    assert!(!h.t.is_finished());
    assert_eq!(h.ack(1), vec![]);
    assert!(h.t.is_finished());
    // An ERROR from the client: nothing to send back.
    let mut h = Harness::simple(512, 1, 600);
    h.step();
    h.error(0, "cancelled");
    assert!(h.t.is_finished());
    // Our ERROR: finished once it is sent.
    let mut h = Harness::simple(512, 1, 600);
    h.step();
    h.t.abort(ErrorCode::Undefined, "gone");
    assert!(h.t.outcome().is_some());
    assert!(!h.t.is_finished(), "the ERROR is not sent yet");
    assert_eq!(h.sent(), vec![Sent::Error(0, "gone".into())]);
    assert!(h.t.is_finished());
}

#[test]
fn abort_after_completion_is_ignored() {
    let mut h = Harness::simple(512, 1, 10);
    h.step();
    h.ack(1);
    h.t.abort(ErrorCode::Undefined, "late");
    assert_eq!(h.step(), vec![]);
    assert_eq!(h.t.outcome(), Some(&Outcome::Complete));
}

#[test]
fn repeated_request_resends_the_oack() {
    let config = TransferConfig {
        max_retries: 2,
        ..TransferConfig::default()
    };
    let mut h = Harness::new(negotiated(512, 1, &[("tsize", "600")]), config, 600);
    let oack = h.step();
    assert!(matches!(oack[..], [Sent::Oack(_)]));
    h.advance(Duration::from_millis(300));
    assert_eq!(h.repeat(), (true, oack.clone()));
    assert_eq!(h.t.retransmits(), 1);
    // The timer restarts with the base timeout.
    assert_eq!(h.t.poll_timeout(), Some(h.now + Duration::from_secs(1)));
    // After a timeout, a repeat keeps the backoff: the wait stays 2 s.
    assert_eq!(h.fire(), oack);
    assert_eq!(h.repeat(), (true, oack.clone()));
    assert_eq!(h.t.poll_timeout(), Some(h.now + Duration::from_secs(2)));
    assert_eq!(h.t.retransmits(), 3);
    // No retry was spent on the repeat: one is left.
    assert_eq!(h.fire(), oack);
    assert_eq!(h.t.outcome(), None);
    assert_eq!(h.ack(0), vec![data(1, 512)]);
    // ACK 0 came: the client has the OACK.
    assert_eq!(h.repeat(), (false, vec![]));
    assert_eq!(h.t.retransmits(), 4);
}

#[test]
fn repeated_request_resends_data_1_lock_step() {
    let mut h = Harness::simple(512, 1, 600);
    assert_eq!(h.step(), vec![data(1, 512)]);
    h.advance(Duration::from_millis(300));
    assert_eq!(h.repeat(), (true, vec![data(1, 512)]));
    assert_eq!(h.t.retransmits(), 1);
    assert_eq!(h.t.poll_timeout(), Some(h.now + Duration::from_secs(1)));
    assert_eq!(h.ack(1), vec![data(2, 88)]);
    // ACK 1 came: the request is stale.
    assert_eq!(h.repeat(), (false, vec![]));
    assert_eq!(h.t.retransmits(), 1);
    assert_eq!(h.ack(2), vec![]);
    assert_eq!(h.t.outcome(), Some(&Outcome::Complete));
    assert_eq!(h.repeat(), (false, vec![]), "over");
}

#[test]
fn repeated_request_resends_the_first_window() {
    let mut h = Harness::simple(8, 4, 100);
    let window = vec![data(1, 8), data(2, 8), data(3, 8), data(4, 8)];
    assert_eq!(h.step(), window);
    assert_eq!(h.repeat(), (true, window));
    assert_eq!(h.t.retransmits(), 4);
    // A mid-window ACK is an answer: no resend after it.
    assert_eq!(
        h.ack(2),
        vec![data(3, 8), data(4, 8), data(5, 8), data(6, 8)]
    );
    assert_eq!(h.repeat(), (false, vec![]));
    assert_eq!(h.t.retransmits(), 4);
}

#[test]
fn repeated_request_before_anything_was_sent_resends_nothing() {
    // The body is not ready: nothing was sent.
    let mut h = Harness::simple(512, 1, 0);
    assert_eq!(h.sent(), vec![]);
    assert!(!h.t.handle_repeat(h.now));
    assert_eq!(h.sent(), vec![]);
    // The OACK was not polled yet: it goes once.
    let mut h = Harness::new(
        negotiated(512, 1, &[("blksize", "512")]),
        TransferConfig::default(),
        10,
    );
    assert!(!h.t.handle_repeat(h.now));
    assert_eq!(h.step().len(), 1);
    assert_eq!(h.t.retransmits(), 0);
    // After an abort, nothing but the ERROR.
    h.t.abort(ErrorCode::Undefined, "gone");
    assert!(!h.t.handle_repeat(h.now));
    assert_eq!(h.sent(), vec![Sent::Error(0, "gone".into())]);
}

#[test]
fn buffers_are_reused() {
    let mut h = Harness::simple(8, 4, 8 * 40);
    h.step();
    let ptrs: Vec<*const u8> = h.t.slots.iter().map(|s| s.buf.as_ptr()).collect();
    assert_eq!(ptrs.len(), 4);
    let mut last = 4;
    while h.t.outcome().is_none() {
        let got = h.ack(last);
        if let Some(Sent::Data(b, _)) = got.last() {
            last = *b;
        }
        assert!(h.t.slots.len() <= 4);
    }
    let after: Vec<*const u8> = h.t.slots.iter().map(|s| s.buf.as_ptr()).collect();
    assert_eq!(ptrs, after);
    assert_eq!(h.t.bytes_acked(), 320);
}

/// Runs a whole lock-step or windowed transfer with a perfect client and
/// returns the wire numbers of all DATA sent, in order.
fn run_to_end(h: &mut Harness<ReadTransfer>) -> Vec<u16> {
    let mut wires = Vec::new();
    let mut got = h.step();
    while h.t.outcome().is_none() {
        let window = blocks(&got);
        let last = *window.last().expect("stalled");
        wires.extend(window);
        got = h.ack(last);
    }
    wires
}

#[test]
fn rollover_past_65535_lock_step() {
    for (rollover, after) in [
        (Rollover::ToZero, [0u16, 1, 2]),
        (Rollover::ToOne, [1, 2, 3]),
    ] {
        let config = TransferConfig {
            rollover,
            ..TransferConfig::default()
        };
        // 65538 blocks of 8 bytes: the last one is short.
        let len = 65537 * 8 + 5;
        let mut h = Harness::new(negotiated(8, 1, &[]), config, len);
        let wires = run_to_end(&mut h);
        assert_eq!(wires.len(), 65538);
        assert_eq!(&wires[65533..65535], &[65534, 65535]);
        assert_eq!(&wires[65535..], &after, "{rollover:?}");
        assert_eq!(h.t.outcome(), Some(&Outcome::Complete));
        assert_eq!(h.t.bytes_acked(), len as u64);
    }
}

#[test]
fn rollover_inside_a_window() {
    for (rollover, wrap) in [
        (Rollover::ToZero, [65535u16, 0, 1]),
        (Rollover::ToOne, [65535, 1, 2]),
    ] {
        let config = TransferConfig {
            rollover,
            ..TransferConfig::default()
        };
        // Window of 8 starting at block 65530: 65530..=65537 spans the wrap.
        let mut h = Harness::new(negotiated(8, 8, &[]), config, 65600 * 8);
        let mut got = h.step();
        // Whole windows up to the one holding 65529 (65529..=65536).
        while !got.contains(&data(65529, 8)) {
            got = h.ack(last_block(&got));
        }
        assert_eq!(got.last(), Some(&data(wrap[1], 8)));
        // Mid-window ACK of 65529: the new window 65530..=65537 spans the wrap.
        got = h.ack(65529);
        let (w1, w2) = (wrap[1], wrap[2]);
        assert_eq!(
            blocks(&got),
            [65530, 65531, 65532, 65533, 65534, 65535, w1, w2],
            "{rollover:?}"
        );
        // An ACK of a block from before the window is ignored.
        assert_eq!(h.ack(65529), vec![]);
        // Mid-window ACK after the wrap: block 65536 (wire w1).
        let got = h.ack(w1);
        assert_eq!(got.first(), Some(&data(w2, 8)), "{rollover:?}");
        assert_eq!(got.len(), 8);
        assert_eq!(h.t.bytes_acked(), 65536 * 8);
        // Timeout resends from the first unacknowledged block, 65537.
        let again = h.fire();
        assert_eq!(again, got);
        // Finish the transfer.
        let mut got = h.ack(last_block(&again));
        while h.t.outcome().is_none() {
            got = h.ack(last_block(&got));
        }
        assert_eq!(h.t.bytes_acked(), 65600 * 8);
    }
}

#[test]
fn the_timer_adapts_to_the_measured_round_trip() {
    let ms = Duration::from_millis;
    let mut h = Harness::simple(512, 1, 5000);
    assert_eq!(h.step(), vec![data(1, 512)]);
    assert_eq!(
        h.t.poll_timeout(),
        Some(h.now + ms(1000)),
        "before any sample"
    );
    h.advance(ms(50));
    assert_eq!(h.ack(1), vec![data(2, 512)]);
    assert_eq!(h.t.srtt(), Some(ms(50)));
    // RFC 6298: SRTT + 4 × RTTVAR = 50 + 100 ms, raised to the 200 ms floor.
    assert_eq!(h.t.poll_timeout(), Some(h.now + ms(200)));
    // A slower path: the wait grows with it.
    h.advance(ms(400));
    assert_eq!(h.ack(2), vec![data(3, 512)]);
    assert!(h.t.poll_timeout().unwrap() > h.now + ms(400));
}

#[test]
fn the_oack_round_trip_is_measured() {
    let ms = Duration::from_millis;
    let n = negotiated(512, 1, &[("blksize", "512")]);
    let mut h = Harness::new(n, TransferConfig::default(), 100);
    assert!(matches!(h.step()[..], [Sent::Oack(_)]));
    h.advance(ms(20));
    assert_eq!(h.ack(0), vec![data(1, 100)]);
    assert_eq!(h.t.srtt(), Some(ms(20)));
}

/// Karn's rule: an ACK of a block sent twice may answer either copy, so it
/// is not measured; the next block, sent once, is.
#[test]
fn a_block_sent_again_is_never_measured() {
    let ms = Duration::from_millis;
    let mut h = Harness::simple(512, 1, 5000);
    h.step();
    assert_eq!(h.fire(), vec![data(1, 512)], "sent again on timeout");
    h.advance(ms(10));
    assert_eq!(h.ack(1), vec![data(2, 512)]);
    assert_eq!(h.t.srtt(), None);
    h.advance(ms(30));
    h.ack(2);
    assert_eq!(h.t.srtt(), Some(ms(30)));
    // The same after a repeated request resent the first window.
    let mut h = Harness::simple(512, 4, 5000);
    h.step();
    assert!(h.repeat().0);
    h.advance(ms(5));
    h.ack(4);
    assert_eq!(h.t.srtt(), None);
}

/// RFC 7440: a mid-window ACK sends the rest of the window again at once,
/// but at most once per round trip: a late ACK from before that resend does
/// not send the same blocks yet again.
#[test]
fn the_rest_of_a_window_goes_again_at_most_once_per_round_trip() {
    let ms = Duration::from_millis;
    let mut h = Harness::simple(8, 4, 20 * 8);
    assert_eq!(blocks(&h.step()), [1, 2, 3, 4]);
    h.advance(ms(50));
    // Block 3 was lost: the client ACKs 2; 3 and 4 go again, then 5 and 6.
    assert_eq!(blocks(&h.ack(2)), [3, 4, 5, 6]);
    assert_eq!(h.t.srtt(), Some(ms(50)));
    // A late ACK of 3 (the client got the first copy of 3 after all):
    // the window slides, but 4..6, just sent, do not go again.
    h.advance(ms(5));
    assert_eq!(blocks(&h.ack(3)), [7]);
    // A round trip later, a mid-window ACK sends the rest again.
    h.advance(ms(60));
    assert_eq!(blocks(&h.ack(4)), [5, 6, 7, 8]);
}
