//! `Packet::decode` on any bytes: no panic; what decodes re-encodes to
//! bytes that decode to the same packet, and encoding is canonical.

use crate::proto::Packet;
use crate::proto::packet::MAX_BLKSIZE;

/// Decodes `bytes`; checks the error's message or the round trip.
pub fn check(bytes: &[u8]) {
    let packet = match Packet::decode(bytes) {
        Ok(packet) => packet,
        Err(e) => {
            // Errors are one sentence (STYLE.md), whatever the input.
            let message = e.to_string();
            assert!(message.starts_with("malformed packet: "), "{message:?}");
            assert!(!message.contains('\n'), "{message:?}");
            return;
        }
    };
    if let Packet::Data { data, .. } = &packet {
        assert!(
            data.len() <= usize::from(MAX_BLKSIZE),
            "DATA of {} bytes",
            data.len()
        );
    }
    let mut wire = Vec::new();
    packet.encode(&mut wire);
    let again = Packet::decode(&wire)
        .unwrap_or_else(|e| panic!("{packet:?} encodes to {wire:?}, which does not decode: {e}"));
    assert_eq!(again, packet, "{packet:?} encodes to {wire:?}");
    // The encoding is canonical: the same packet gives the same bytes.
    let mut wire2 = Vec::new();
    again.encode(&mut wire2);
    assert_eq!(wire2, wire, "the encoding of {packet:?} is not canonical");
}
