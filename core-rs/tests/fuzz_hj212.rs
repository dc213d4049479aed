//! Fuzzing the HJ 212 decoder with bounded property tests: whatever a logger, a broken modem or a
//! hostile peer sends, the frame checker, the streaming decoder and the packet parser return a
//! value or an error naming what was wrong, never panic, and never lose a valid frame that sits
//! next to bad bytes. The cases are few enough for `cargo test` (well under a second each).
//!
//! `hj212_stream.rs` holds the example-based tests and properties over a narrow alphabet; here the
//! inputs are the whole byte range, mutations of the reference vectors (with and without a
//! recomputed CRC) and valid frames buried in garbage.

use carbonstream_core::hj212::{
    CivilDateTime, FrameDecoder, FrameError, MAX_FRAME_LEN, MAX_SEGMENT_LEN, Packet, PacketError,
    Value, cp::parse_number, crc16, data_answer, decode_frame, encode_frame,
};
use proptest::prelude::*;
use proptest::test_runner::Config;

/// The valid reference vectors of reference/hj212/README.md (length and CRC verified).
const VALID: [&str; 6] = [
    "##0101QN=20160801085857223;ST=32;CN=1062;PW=100000;MN=010000A8900016F000169DC0;Flag=5;CP=&&RtdInterval=30&&1C80\r\n",
    "##0162QN=20231008123340461;ST=22;CN=2011;PW=123456;MN=010000A8900016F000169DC0;Flag=5;CP=&&DataTime=20231008123340;w01008-SampleTime=20231008123340,w01008-Rtd=123.456&&F441\r\n",
    "##0094QN=20231008125115215;ST=22;CN=9011;PW=123456;MN=010000A8900016F000169DC0;Flag=4;CP=&&QnRtn=1&&CC01\r\n",
    "##0411QN=20220513162608370;ST=22;CN=2051;PW=123456;MN=JLYP01_AIR01_0001;Flag=4;CP=&&DataTime=20220513162600;a21004-Avg=4,a21004-Flag=N;a05024-Avg=63,a05024-Flag=N;a21026-Avg=6,a21026-Flag=N;a21005-Avg=0.427,a21005-Flag=N;a34004-Avg=14,a34004-Flag=N;a34002-Avg=31,a34002-Flag=N;a01007-Avg=1,a01007-Flag=N;a01008-Avg=11,a01008-Flag=N;a01001-Avg=17,a01001-Flag=N;a01002-Avg=85,a01002-Flag=N;a01006-Avg=95,a01006-Flag=N&&D641\r\n",
    "##0612QN=20240123101501421;ST=31;CN=2061;PW=123456;MN=81733553216103;Flag=4;CP=&&DataTime=20240122170000;a00000-Cou=19191.973,a00000-Min=5.051,a00000-Avg=5.331,a00000-Max=5.617,a00000-Flag=N;a01011-Min=6.686,a01011-Avg=7.029,a01011-Max=7.425,a01011-Flag=N;a01013-Min=-0.041,a01013-Avg=-0.026,a01013-Max=0.011,a01013-Flag=N;a01012-Min=8.074,a01012-Avg=8.524,a01012-Max=8.789,a01012-Flag=N;a24088-Cou=0.018,a24088-Min=0.665,a24088-Avg=0.933,a24088-Max=1.418,a24088-Flag=N;a05002-Cou=0.000,a05002-Min=0.000,a05002-Avg=0.000,a05002-Max=0.000,a05002-Flag=N;a01014-Min=0.828,a01014-Avg=1.040,a01014-Max=1.239,a01014-Flag=N&&0E40\r\n",
    "##0317QN=20191012133710130;ST=22;CN=2011;PW=123456;MN=Y80110010000010;Flag=4;CP=&&DataTime=20191012133710;a21005-Rtd=0.00,a21005-Flag=N;a21004-Rtd=0.00,a21004-Flag=N;a21007-Rtd=0.033,a21007-Flag=N;a21006-Rtd=0.036,a21006-Flag=N;a21001-Rtd=25.40,a21001-Flag=N;a21003-Rtd=101.94,a21003-Flag=N;a21002-Rtd=49.20,a21002-Flag=N&&cc01\r\n",
];

/// Bounded and without regression files: a failure is pinned as an example test instead.
fn cases(n: u32) -> Config {
    Config {
        failure_persistence: None,
        ..Config::with_cases(n)
    }
}

/// CRC of Appendix A, bit by bit, exactly as the standard prints it: the reference for the
/// table-driven, eight-bytes-at-a-time `crc16`.
fn crc16_bitwise(data: &[u8]) -> u16 {
    let mut crc: u16 = 0xFFFF;
    for &b in data {
        crc = (crc >> 8) ^ u16::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xA001
            } else {
                crc >> 1
            };
        }
    }
    crc
}

#[derive(Clone, Debug)]
enum Mutation {
    Flip { at: usize, bit: u8 },
    Set { at: usize, byte: u8 },
    Insert { at: usize, byte: u8 },
    Delete { at: usize, len: usize },
    Duplicate { at: usize, len: usize },
}

/// A byte biased toward the protocol's own separators and digits, where the parser's decisions
/// are made, and otherwise anything.
fn protocol_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        3 => prop::sample::select(b"#0123456789;,=&-CPQNSTMWFlagRtdAvg\r\n ".to_vec()),
        1 => any::<u8>(),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 0u8..8).prop_map(|(at, bit)| Mutation::Flip { at, bit }),
        (any::<usize>(), protocol_byte()).prop_map(|(at, byte)| Mutation::Set { at, byte }),
        (any::<usize>(), protocol_byte()).prop_map(|(at, byte)| Mutation::Insert { at, byte }),
        (any::<usize>(), 1usize..40).prop_map(|(at, len)| Mutation::Delete { at, len }),
        (any::<usize>(), 1usize..40).prop_map(|(at, len)| Mutation::Duplicate { at, len }),
    ]
}

fn apply(bytes: &mut Vec<u8>, mutations: &[Mutation]) {
    for m in mutations {
        let n = bytes.len();
        match *m {
            Mutation::Flip { at, bit } if n > 0 => bytes[at % n] ^= 1 << bit,
            Mutation::Set { at, byte } if n > 0 => bytes[at % n] = byte,
            Mutation::Insert { at, byte } => bytes.insert(at % (n + 1), byte),
            Mutation::Delete { at, len } if n > 0 => {
                let a = at % n;
                bytes.drain(a..(a + len).min(n));
            }
            Mutation::Duplicate { at, len } if n > 0 => {
                let a = at % n;
                let piece = bytes[a..(a + len).min(n)].to_vec();
                bytes.splice(a..a, piece);
            }
            _ => {}
        }
    }
}

/// Everything a decoded frame promises: it is the input, its length field and CRC agree with the
/// segment, and parsing it (then answering it) returns without panicking.
fn check_frame(bytes: &[u8]) -> Result<(), TestCaseError> {
    let Ok(frame) = decode_frame(bytes) else {
        return Ok(());
    };
    let seg = frame.segment();
    prop_assert_eq!(frame.bytes(), bytes);
    prop_assert_eq!(seg.len() + 12, bytes.len());
    prop_assert!(seg.len() <= MAX_SEGMENT_LEN);
    prop_assert_eq!(
        std::str::from_utf8(&bytes[2..6]).unwrap(),
        format!("{:04}", seg.len())
    );
    prop_assert_eq!(frame.crc(), crc16_bitwise(seg));
    check_packet(seg)
}

/// A parsed packet borrows every field from its segment; its answer, when one can be built, is
/// itself a valid frame echoing QN, PW and MN.
fn check_packet(seg: &[u8]) -> Result<(), TestCaseError> {
    let Ok(p) = Packet::parse_bytes(seg) else {
        return Ok(());
    };
    let text = std::str::from_utf8(seg).unwrap();
    for f in &p.fields {
        prop_assert!(text.contains(f.key) && text.contains(f.raw));
        if let Value::Number(v) = f.value {
            prop_assert!(v.is_finite(), "{} = {}", f.key, v);
        }
    }
    if let Ok(answer) = data_answer(&p, 91) {
        let frame = decode_frame(&answer).expect("an answer is a valid frame");
        let a = frame.parse().expect("an answer is a valid packet");
        prop_assert_eq!((a.qn, a.pw, a.mn, a.cn), (p.qn, p.pw, p.mn, 9014));
    }
    Ok(())
}

/// The segments of every frame the streaming decoder returns for `chunks`, and the errors.
fn stream(chunks: &[&[u8]]) -> (Vec<Vec<u8>>, Vec<FrameError>) {
    let mut d = FrameDecoder::new();
    let (mut frames, mut errors) = (Vec::new(), Vec::new());
    for c in chunks {
        d.push(c);
        while let Some(item) = d.next_frame() {
            match item {
                Ok(f) => frames.push(f.segment().to_vec()),
                Err(e) => errors.push(e),
            }
        }
        assert!(d.buffered() < MAX_FRAME_LEN + c.len());
    }
    errors.extend(d.abandon_pending());
    (frames, errors)
}

fn segment_of(frame: &str) -> Vec<u8> {
    frame.as_bytes()[6..frame.len() - 6].to_vec()
}

/// Splits `data` at the sorted positions `cuts` (taken modulo its length).
fn chunked(data: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut at: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
    at.sort_unstable();
    let mut out = Vec::new();
    let mut prev = 0;
    for c in at.into_iter().chain([data.len()]) {
        out.push(data[prev..c].to_vec());
        prev = c;
    }
    out
}

proptest! {
    #![proptest_config(cases(512))]

    /// The fast CRC equals the standard's bitwise definition on any bytes.
    #[test]
    fn crc_equals_the_bitwise_definition(data in prop::collection::vec(any::<u8>(), 0..300)) {
        prop_assert_eq!(crc16(&data), crc16_bitwise(&data));
    }

    /// Any bytes (the whole byte range) as one frame: a frame or an error, never a panic.
    #[test]
    fn arbitrary_bytes_as_a_frame(data in prop::collection::vec(any::<u8>(), 0..1100)) {
        check_frame(&data)?;
        let _ = Packet::parse_bytes(&data);
    }

    /// Any bytes after a plausible header, so the length, CRC and CRLF checks are reached.
    #[test]
    fn arbitrary_bytes_behind_a_header(
        len in 0usize..1100,
        body in prop::collection::vec(protocol_byte(), 0..1100),
    ) {
        let mut data = format!("##{len:04}").into_bytes();
        data.extend_from_slice(&body);
        check_frame(&data)?;
    }

    /// Any text framed with a correct length and CRC reaches the packet parser: it returns a
    /// packet or a packet error, never panics.
    #[test]
    fn arbitrary_segments_with_a_valid_crc(
        seg in prop::collection::vec(protocol_byte(), 0..MAX_SEGMENT_LEN),
    ) {
        let mut framed = format!("##{:04}", seg.len()).into_bytes();
        framed.extend_from_slice(&seg);
        framed.extend_from_slice(format!("{:04X}\r\n", crc16_bitwise(&seg)).as_bytes());
        prop_assert!(decode_frame(&framed).is_ok());
        check_frame(&framed)?;
    }

    /// Reference packets mutated byte by byte: the frame checker refuses or accepts, and a frame
    /// it accepts keeps every promise (`check_frame`).
    #[test]
    fn mutated_vectors_as_sent(
        which in 0usize..VALID.len(),
        mutations in prop::collection::vec(mutation(), 1..6),
    ) {
        let mut bytes = VALID[which].as_bytes().to_vec();
        apply(&mut bytes, &mutations);
        check_frame(&bytes)?;
    }

    /// Reference segments mutated, then framed again with a correct CRC (a logger that computes
    /// its CRC over a malformed packet): the parser must cope with whatever it finds.
    #[test]
    fn mutated_segments_with_a_recomputed_crc(
        which in 0usize..VALID.len(),
        mutations in prop::collection::vec(mutation(), 1..6),
    ) {
        let mut seg = segment_of(VALID[which]);
        apply(&mut seg, &mutations);
        let text = String::from_utf8_lossy(&seg).into_owned();
        if let Ok(framed) = encode_frame(&text) {
            prop_assert!(decode_frame(&framed).is_ok());
            check_frame(&framed)?;
        }
        check_packet(&seg)?;
    }

    /// A valid frame between arbitrary garbage, delivered in arbitrary reads, is decoded: bad
    /// bytes next to it cost only themselves.
    #[test]
    fn a_valid_frame_between_garbage_is_decoded(
        which in 0usize..VALID.len(),
        before in prop::collection::vec(protocol_byte(), 0..300),
        after in prop::collection::vec(protocol_byte(), 0..300),
        cuts in prop::collection::vec(any::<usize>(), 0..6),
    ) {
        let frame = VALID[which].as_bytes();
        let data = [before.as_slice(), frame, after.as_slice()].concat();
        let chunks = chunked(&data, &cuts);
        let refs: Vec<&[u8]> = chunks.iter().map(Vec::as_slice).collect();
        let (frames, _) = stream(&refs);
        prop_assert!(
            frames.contains(&segment_of(VALID[which])),
            "frame {} lost between {:?} and {:?}", which,
            String::from_utf8_lossy(&before), String::from_utf8_lossy(&after)
        );
    }

    /// The hard case of the above, which random garbage rarely builds: the garbage before the
    /// frame is itself a header whose declared length ends, on a CRLF, after the valid frame.
    /// The broken outer frame fails its CRC and must not swallow the valid one inside it.
    #[test]
    fn a_valid_frame_inside_a_broken_frame_is_decoded(
        which in 0usize..VALID.len(),
        pad_before in 0usize..40,
        pad_after in 0usize..40,
        crc in "[0-9A-F]{4}",
    ) {
        let frame = VALID[which].as_bytes();
        let declared = pad_before + frame.len() + pad_after;
        prop_assume!(declared <= MAX_SEGMENT_LEN);
        let mut data = format!("##{declared:04}").into_bytes();
        data.extend(std::iter::repeat_n(b'x', pad_before));
        data.extend_from_slice(frame);
        data.extend(std::iter::repeat_n(b'y', pad_after));
        // One CRC in 65,536 is the outer segment's own: then the outer frame is valid (a fresh
        // clone's run drew it: pad 8 + VALID[1] + pad 1 has CRC BDC1).
        prop_assume!(crc != format!("{:04X}", crc16(&data[6..])));
        data.extend_from_slice(crc.as_bytes());
        data.extend_from_slice(b"\r\n");
        let (frames, errors) = stream(&[&data]);
        prop_assert_eq!(frames, vec![segment_of(VALID[which])]);
        prop_assert!(!errors.is_empty(), "the broken outer frame is reported");
    }

    /// Any number text the CP parser accepts is finite and equals the standard library's value.
    #[test]
    fn numbers_parse_like_the_standard_library(s in "[-+]?[0-9]{0,22}(\\.[0-9]{0,22})?([eE][-+]?[0-9]{1,4})?") {
        match parse_number(&s) {
            Some(v) => {
                prop_assert!(v.is_finite());
                prop_assert_eq!(Some(v), s.parse::<f64>().ok());
            }
            None => prop_assert!(s.parse::<f64>().map_or(true, |v| !v.is_finite())),
        }
    }

    /// Wall-clock times: any text is a time or an error; a time round-trips through Unix ms at
    /// any offset, and any instant converts back or says it is out of range.
    #[test]
    fn civil_times_never_panic_and_round_trip(
        text in "[0-9]{12,18}|.{0,20}",
        ms in any::<i64>(),
        offset in -1440i32..=1440,
        wild_offset in any::<i32>(),
    ) {
        if let Ok(t) = CivilDateTime::parse_millis(&text).or_else(|_| CivilDateTime::parse_seconds(&text)) {
            let unix = t.to_unix_ms(offset);
            prop_assert_eq!(CivilDateTime::from_unix_ms(unix, offset), Ok(t));
            let _ = t.to_unix_ms(wild_offset);
        }
        let _ = CivilDateTime::from_unix_ms(ms, wild_offset);
    }
}

/// A header number longer than the 5 digits allowed is a `BadNumber` error, not an overflow of
/// the accumulator (found by `mutated_segments_with_a_recomputed_crc`: `ST` duplicated digits).
#[test]
fn long_header_numbers_are_refused_not_overflowed() {
    for value in [
        "99999999999",
        "12345678901234567890",
        "4294967296",
        "ÿÿÿÿÿÿÿÿÿÿÿ",
    ] {
        let seg = format!("ST={value};CN=2011;PW=1;MN=M;CP=&&&&");
        match Packet::parse(&seg) {
            Err(PacketError::BadNumber { key: "ST", .. }) => {}
            other => panic!("{seg}: {other:?}"),
        }
    }
    let seg = "ST=31;CN=2011;PW=1;MN=M;Flag=4;PNUM=99999999999;PNO=1;CP=&&&&";
    assert!(matches!(
        Packet::parse(seg),
        Err(PacketError::BadNumber { key: "PNUM", .. })
    ));
}

/// Found by `a_valid_frame_inside_a_broken_frame_is_decoded`: a cut-off frame (`##0113`, then
/// straight into the next frame) whose declared end falls on the next frame's CRLF failed its
/// CRC and was dropped whole, taking the valid frame inside it along.
#[test]
fn a_broken_frame_does_not_swallow_the_valid_frame_inside_it() {
    let inner = VALID[0];
    let outer = format!("##{:04}{inner}AAA0\r\n", inner.len());
    let (frames, errors) = stream(&[outer.as_bytes()]);
    assert_eq!(frames, vec![segment_of(inner)]);
    assert!(
        matches!(errors[0], FrameError::CrcMismatch { .. }),
        "{errors:?}"
    );
    // The same bytes checked as one frame are still refused with the CRC reason.
    assert!(matches!(
        decode_frame(outer.as_bytes()),
        Err(FrameError::CrcMismatch { .. })
    ));
}
