//! Property tests of the protocol core: the invariants in `proto/checks`,
//! which the fuzz targets in `fuzz/` check too, on inputs that proptest
//! generates and shrinks. The case counts are modest so that `cargo test`
//! stays fast; the fuzzers run the same checks for as long as one likes.

use proptest::collection::vec;
use proptest::option::of;
use proptest::prelude::*;

use super::checks::{netascii, options, packet, read, write};

/// Bytes heavy in NULs and letters, as TFTP strings are.
fn stringy() -> impl Strategy<Value = u8> {
    prop_oneof![2 => Just(0u8), 3 => b'a'..=b'z', 1 => any::<u8>()]
}

/// A request as a client may send it: any file name and mode spelling,
/// options with any names and values, maybe a trailing NUL.
fn request_bytes() -> impl Strategy<Value = Vec<u8>> {
    let mode = prop_oneof![
        Just("octet"),
        Just("NetAscii"),
        Just("binary"),
        Just("mail"),
        Just("junk")
    ];
    let options = vec(("[a-zA-Z]{0,10}", "[0-9a-z]{0,6}"), 0..5);
    (1u16..=2, "[a-z./]{0,12}", mode, options, any::<bool>()).prop_map(
        |(op, filename, mode, options, pad)| {
            let mut b = op.to_be_bytes().to_vec();
            for s in [filename.as_str(), mode]
                .into_iter()
                .chain(options.iter().flat_map(|(n, v)| [n.as_str(), v.as_str()]))
            {
                b.extend_from_slice(s.as_bytes());
                b.push(0);
            }
            if pad {
                b.push(0);
            }
            b
        },
    )
}

fn options_scenario() -> impl Strategy<Value = options::Scenario> {
    use options::{Name, Overrides, Value};
    let name = prop_oneof![
        4 => (any::<u8>(), any::<u16>()).prop_map(|(which, case)| Name::Known { which, case }),
        1 => "[a-zA-Z]{0,10}".prop_map(Name::Other),
    ];
    let value = prop_oneof![
        any::<u64>().prop_map(Value::Number),
        (any::<u8>(), any::<i8>()).prop_map(|(edge, delta)| Value::Edge { edge, delta }),
        "[0-9 +-]{0,24}".prop_map(Value::Text),
        any::<String>().prop_map(Value::Text),
    ];
    let overrides = (
        of(of(any::<u16>())),
        of(of(any::<u16>())),
        of(of(any::<u8>())),
        of(of(any::<u32>())),
        of(of(any::<u64>())),
    )
        .prop_map(
            |(blksize, windowsize, timeout, utimeout, tsize)| Overrides {
                blksize,
                windowsize,
                timeout,
                utimeout,
                tsize,
            },
        );
    (
        vec((name, value), 0..8),
        (any::<u16>(), any::<u16>()),
        any::<[bool; 5]>(),
        of(any::<u64>()),
        of(overrides),
    )
        .prop_map(
            |(options, (max_blksize, max_windowsize), flags, body_size, overrides)| {
                let [blksize, windowsize, timeout, tsize, is_write] = flags;
                options::Scenario {
                    options,
                    max_blksize,
                    max_windowsize,
                    blksize,
                    windowsize,
                    timeout,
                    tsize,
                    is_write,
                    body_size,
                    overrides,
                }
            },
        )
}

fn netascii_scenario() -> impl Strategy<Value = netascii::Scenario> {
    let text = prop_oneof![
        Just(b'\r'),
        Just(b'\n'),
        Just(0u8),
        b'a'..=b'c',
        any::<u8>()
    ];
    let small = prop_oneof![3 => 0u8..8, 1 => any::<u8>()];
    (
        vec(text, 0..200),
        vec(small.clone(), 0..8),
        vec(small, 0..8),
    )
        .prop_map(|(data, cuts, caps)| netascii::Scenario { data, cuts, caps })
}

fn read_event() -> impl Strategy<Value = read::Event> {
    use read::Event as E;
    prop_oneof![
        6 => (0u8..4).prop_map(E::AckSent),
        1 => any::<u16>().prop_map(E::Ack),
        1 => (any::<u16>(), any::<u16>()).prop_map(|(block, len)| E::Data { block, len }),
        1 => any::<u16>().prop_map(E::Error),
        1 => any::<u8>().prop_map(E::Stray),
        4 => Just(E::Tick),
        2 => (0u16..3000).prop_map(E::Wait),
        2 => Just(E::Repeat),
        6 => (0u16..1500).prop_map(E::Feed),
        1 => Just(E::End),
        1 => Just(E::Abort),
    ]
}

fn read_scenario() -> impl Strategy<Value = read::Scenario> {
    (
        (any::<u16>(), any::<u16>(), any::<bool>(), any::<bool>()),
        (any::<u16>(), any::<u8>(), any::<u8>()),
        vec(read_event(), 0..80),
    )
        .prop_map(
            |(
                (blksize, windowsize, oack, rollover_to_one),
                (timeout_ms, backoff, max_retries),
                events,
            )| {
                read::Scenario {
                    blksize,
                    windowsize,
                    oack,
                    rollover_to_one,
                    timeout_ms,
                    backoff,
                    max_retries,
                    events,
                }
            },
        )
}

fn write_event() -> impl Strategy<Value = write::Event> {
    use write::{Event as E, Len};
    let len = prop_oneof![
        6 => Just(Len::Full),
        2 => any::<u16>().prop_map(Len::Short),
        1 => any::<u16>().prop_map(Len::Any),
    ];
    prop_oneof![
        10 => (-2i8..=2, len.clone(), any::<u8>())
            .prop_map(|(skip, len, seed)| E::DataNear { skip, len, seed }),
        1 => (any::<u16>(), len, any::<u8>())
            .prop_map(|(block, len, seed)| E::Data { block, len, seed }),
        1 => any::<u16>().prop_map(E::Ack),
        1 => any::<u16>().prop_map(E::Error),
        1 => any::<u8>().prop_map(E::Stray),
        4 => Just(E::Tick),
        2 => (0u16..3000).prop_map(E::Wait),
        2 => Just(E::Repeat),
        2 => Just(E::Accept),
        1 => Just(E::Abort),
    ]
}

fn write_scenario() -> impl Strategy<Value = write::Scenario> {
    (
        (any::<u16>(), any::<u16>(), any::<bool>(), any::<bool>()),
        (
            any::<u16>(),
            any::<u8>(),
            any::<u8>(),
            any::<u16>(),
            any::<u16>(),
        ),
        of(any::<u16>()),
        vec(write_event(), 0..80),
    )
        .prop_map(
            |(
                (blksize, windowsize, oack, rollover_to_one),
                (timeout_ms, backoff, max_retries, window_idle_ms, dally_ms),
                max_bytes,
                events,
            )| write::Scenario {
                blksize,
                windowsize,
                oack,
                rollover_to_one,
                timeout_ms,
                backoff,
                max_retries,
                window_idle_ms,
                dally_ms,
                max_bytes,
                events,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn packet_any_bytes(bytes in vec(any::<u8>(), 0..48)) {
        packet::check(&bytes);
    }

    #[test]
    fn packet_stringy_bytes(op in 0u16..=7, body in vec(stringy(), 0..48)) {
        let bytes = [op.to_be_bytes().as_slice(), &body].concat();
        packet::check(&bytes);
    }

    #[test]
    fn packet_requests(bytes in request_bytes()) {
        packet::check(&bytes);
    }

    #[test]
    fn options_parse_and_negotiate(s in options_scenario()) {
        options::check(&s);
    }

}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn netascii_round_trips_in_any_chunking(s in netascii_scenario()) {
        netascii::check(&s);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(192))]

    #[test]
    fn read_machine(s in read_scenario()) {
        read::check(&s);
    }

    #[test]
    fn write_machine(s in write_scenario()) {
        write::check(&s);
    }
}
