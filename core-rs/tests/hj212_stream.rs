//! The TCP-facing frame decoder: split, glued and garbled streams, bounded memory, and the
//! properties that must hold for any input (no panic; chunking never changes the result;
//! encode -> decode round trips).

use carbonstream_core::hj212::{
    CivilDateTime, CpBuilder, DataFlag, FrameDecoder, FrameError, MAX_FRAME_LEN, Packet,
    PacketFlag, PacketSpec, PendingFrame, Split, Suffix, Value, decode_frame,
};
use proptest::prelude::*;

const V_SET_INTERVAL: &str = "##0101QN=20160801085857223;ST=32;CN=1062;PW=100000;MN=010000A8900016F000169DC0;Flag=5;CP=&&RtdInterval=30&&1C80\r\n";
const V_QNRTN: &str = "##0094QN=20231008125115215;ST=22;CN=9011;PW=123456;MN=010000A8900016F000169DC0;Flag=4;CP=&&QnRtn=1&&CC01\r\n";
const V_HOURLY: &str = "##0612QN=20240123101501421;ST=31;CN=2061;PW=123456;MN=81733553216103;Flag=4;CP=&&DataTime=20240122170000;a00000-Cou=19191.973,a00000-Min=5.051,a00000-Avg=5.331,a00000-Max=5.617,a00000-Flag=N;a01011-Min=6.686,a01011-Avg=7.029,a01011-Max=7.425,a01011-Flag=N;a01013-Min=-0.041,a01013-Avg=-0.026,a01013-Max=0.011,a01013-Flag=N;a01012-Min=8.074,a01012-Avg=8.524,a01012-Max=8.789,a01012-Flag=N;a24088-Cou=0.018,a24088-Min=0.665,a24088-Avg=0.933,a24088-Max=1.418,a24088-Flag=N;a05002-Cou=0.000,a05002-Min=0.000,a05002-Avg=0.000,a05002-Max=0.000,a05002-Flag=N;a01014-Min=0.828,a01014-Avg=1.040,a01014-Max=1.239,a01014-Flag=N&&0E40\r\n";
const V_REALTIME_AIR: &str = "##0317QN=20191012133710130;ST=22;CN=2011;PW=123456;MN=Y80110010000010;Flag=4;CP=&&DataTime=20191012133710;a21005-Rtd=0.00,a21005-Flag=N;a21004-Rtd=0.00,a21004-Flag=N;a21007-Rtd=0.033,a21007-Flag=N;a21006-Rtd=0.036,a21006-Flag=N;a21001-Rtd=25.40,a21001-Flag=N;a21003-Rtd=101.94,a21003-Flag=N;a21002-Rtd=49.20,a21002-Flag=N&&cc01\r\n";
const INVALID_CRC: &str = "##0094QN=20231008125115215;ST=22;CN=9011;PW=123456;MN=010000A8900016F000169DC0;Flag=4;CP=&&QnRtn=1&&CC02\r\n";
const INVALID_LEN: &str = "##0095QN=20231008125115215;ST=22;CN=9011;PW=123456;MN=010000A8900016F000169DC0;Flag=4;CP=&&QnRtn=1&&CC01\r\n";

#[derive(Clone, Debug, PartialEq, Eq)]
enum Item {
    Frame(Vec<u8>),
    Error(FrameError),
}

fn drain(d: &mut FrameDecoder, out: &mut Vec<Item>) {
    while let Some(r) = d.next_frame() {
        out.push(match r {
            Ok(f) => Item::Frame(f.segment().to_vec()),
            Err(e) => Item::Error(e),
        });
    }
}

fn decode_chunks<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> Vec<Item> {
    let mut d = FrameDecoder::new();
    let mut out = Vec::new();
    for c in chunks {
        d.push(c);
        drain(&mut d, &mut out);
    }
    out
}

/// Garbage reports depend on how the garbage was chunked; everything else must not. Merges
/// consecutive garbage reports into one.
fn normalise(items: Vec<Item>) -> Vec<Item> {
    let mut out: Vec<Item> = Vec::new();
    for it in items {
        if let (
            Some(Item::Error(FrameError::Garbage { skipped: a })),
            Item::Error(FrameError::Garbage { skipped: b }),
        ) = (out.last_mut(), &it)
        {
            *a += b;
            continue;
        }
        out.push(it);
    }
    out
}

fn seg(frame: &str) -> Item {
    Item::Frame(frame.as_bytes()[6..frame.len() - 6].to_vec())
}

fn stream() -> String {
    [
        V_SET_INTERVAL,
        V_HOURLY,
        "\0\0junk#",
        V_QNRTN,
        INVALID_CRC,
        V_REALTIME_AIR,
        INVALID_LEN,
        V_QNRTN,
    ]
    .concat()
}

fn expected_stream_items() -> Vec<Item> {
    vec![
        seg(V_SET_INTERVAL),
        seg(V_HOURLY),
        Item::Error(FrameError::Garbage { skipped: 7 }),
        seg(V_QNRTN),
        Item::Error(FrameError::CrcMismatch {
            expected: 0xCC01,
            found: 0xCC02,
        }),
        seg(V_REALTIME_AIR),
        Item::Error(FrameError::LengthMismatch {
            declared: 95,
            actual: 94,
        }),
        seg(V_QNRTN),
    ]
}

#[test]
fn glued_frames_errors_and_garbage_in_one_read() {
    let s = stream();
    assert_eq!(decode_chunks([s.as_bytes()]), expected_stream_items());
}

#[test]
fn splitting_the_stream_at_every_position_gives_the_same_frames() {
    let s = stream();
    let b = s.as_bytes();
    for cut in 0..=b.len() {
        let got = normalise(decode_chunks([&b[..cut], &b[cut..]]));
        assert_eq!(got, expected_stream_items(), "cut at {cut}");
    }
}

#[test]
fn one_byte_at_a_time() {
    let s = stream();
    let got = normalise(decode_chunks(s.as_bytes().chunks(1)));
    assert_eq!(got, expected_stream_items());
}

#[test]
fn a_megabyte_of_garbage_does_not_grow_memory() {
    let mut d = FrameDecoder::new();
    let junk: Vec<u8> = (0..1_000_000u32)
        .map(|i| b"abc#xyz\r\n"[(i % 9) as usize])
        .collect();
    d.push(&junk);
    assert!(
        d.buffered() <= 1 && d.capacity() < 4096,
        "{} {}",
        d.buffered(),
        d.capacity()
    );
    let mut out = Vec::new();
    drain(&mut d, &mut out);
    assert_eq!(
        out,
        vec![Item::Error(FrameError::Garbage { skipped: 1_000_000 })]
    );
    // In small reads too, and a frame after it still decodes.
    for c in junk.chunks(1460) {
        d.push(c);
        drain(&mut d, &mut out);
        assert!(d.capacity() < 4096);
    }
    d.push(V_QNRTN.as_bytes());
    out.clear();
    drain(&mut d, &mut out);
    assert_eq!(out, vec![seg(V_QNRTN)]);
    assert_eq!(d.stats().skipped_bytes, 2_000_000);
    assert_eq!(d.stats().frames, 1);
}

#[test]
fn garbage_with_hashes_in_it_is_bounded_and_resynchronises() {
    let mut d = FrameDecoder::new();
    let mut out = Vec::new();
    // `##` followed by non-digits, repeated: each is a bad header, none is stored.
    for _ in 0..10_000 {
        d.push(b"##ab,x");
        drain(&mut d, &mut out);
        assert!(d.buffered() < MAX_FRAME_LEN);
    }
    assert!(out.iter().all(|i| matches!(i, Item::Error(_))));
    d.push(V_HOURLY.as_bytes());
    out.clear();
    drain(&mut d, &mut out);
    assert_eq!(out, vec![seg(V_HOURLY)]);
}

#[test]
fn header_shifted_by_one_hash_is_found() {
    // A stray `#` (or a few) before the header is garbage; the frame itself is intact.
    for prefix in ["#", "x#", "###"] {
        let s = format!("{prefix}{V_QNRTN}");
        assert_eq!(
            decode_chunks([s.as_bytes()]),
            vec![
                Item::Error(FrameError::Garbage {
                    skipped: prefix.len()
                }),
                seg(V_QNRTN)
            ],
            "{prefix}"
        );
    }
    // Also when the run of `#` is split across reads.
    let s = format!("###{V_QNRTN}");
    let got = normalise(decode_chunks([&s.as_bytes()[..2], &s.as_bytes()[2..]]));
    assert_eq!(
        got,
        vec![
            Item::Error(FrameError::Garbage { skipped: 3 }),
            seg(V_QNRTN)
        ]
    );
}

#[test]
fn an_empty_read_keeps_a_held_hash() {
    // Found by Hypothesis: reads `#0#`, ``, `#0101...` lost the frame, since the empty read
    // dropped the `#` held as the possible start of a header.
    let s = format!("#0{V_QNRTN}");
    let (a, b) = s.as_bytes().split_at(3);
    let got = normalise(decode_chunks([a, &[][..], b]));
    assert_eq!(
        got,
        vec![
            Item::Error(FrameError::Garbage { skipped: 2 }),
            seg(V_QNRTN)
        ]
    );
}

#[test]
fn half_a_frame_then_silence_is_reportable() {
    let mut d = FrameDecoder::new();
    let mut out = Vec::new();
    d.push(&V_HOURLY.as_bytes()[..300]);
    drain(&mut d, &mut out);
    assert!(out.is_empty());
    assert_eq!(
        d.pending(),
        Some(PendingFrame {
            buffered: 300,
            declared: Some(612)
        })
    );
    let e = d.abandon_pending().unwrap();
    assert_eq!(
        e,
        FrameError::Incomplete {
            buffered: 300,
            declared: Some(612)
        }
    );
    assert!(
        e.to_string().contains("300 bytes buffered of 624 declared"),
        "{e}"
    );
    assert_eq!((d.pending(), d.buffered()), (None, 0));
    // Only `##0` arrived: pending without a known length.
    d.push(b"##0");
    assert_eq!(
        d.pending(),
        Some(PendingFrame {
            buffered: 3,
            declared: None
        })
    );
    // Nothing pending after complete frames.
    let mut d = FrameDecoder::new();
    d.push(V_QNRTN.as_bytes());
    drain(&mut d, &mut out);
    assert_eq!(d.pending(), None);
    assert_eq!(d.abandon_pending(), None);
}

#[test]
fn a_frame_cut_off_by_the_next_one_is_reported_and_the_next_one_kept() {
    let cut = &V_HOURLY[..200];
    let s = format!("{cut}{V_QNRTN}");
    assert_eq!(
        decode_chunks([s.as_bytes()]),
        vec![
            Item::Error(FrameError::Truncated {
                declared: 612,
                received: 194
            }),
            seg(V_QNRTN)
        ]
    );
}

#[test]
fn a_frame_without_crlf_is_reported_and_the_next_one_kept() {
    let no_crlf = &V_QNRTN[..V_QNRTN.len() - 2];
    let s = format!("{no_crlf}{V_SET_INTERVAL}");
    let items = decode_chunks([s.as_bytes()]);
    assert!(
        matches!(items[0], Item::Error(FrameError::MissingCrlf { .. })),
        "{items:?}"
    );
    assert_eq!(items[1..], [seg(V_SET_INTERVAL)]);
    // And with nothing after it, the decoder decides once a maximal frame could have ended.
    let mut d = FrameDecoder::new();
    let mut out = Vec::new();
    d.push(format!("{no_crlf}XY").as_bytes());
    drain(&mut d, &mut out);
    assert!(
        out.is_empty(),
        "waits: a longer frame could still end in CRLF"
    );
    d.push(&[b'x'; MAX_FRAME_LEN]);
    drain(&mut d, &mut out);
    assert!(
        matches!(out[0], Item::Error(FrameError::MissingCrlf { .. })),
        "{out:?}"
    );
}

#[test]
fn length_declared_too_short_is_a_mismatch() {
    let s = V_QNRTN.replacen("##0094", "##0093", 1);
    assert_eq!(
        decode_chunks([s.as_bytes()]),
        vec![Item::Error(FrameError::LengthMismatch {
            declared: 93,
            actual: 94
        })]
    );
}

#[test]
fn frames_borrow_the_buffer_and_parse() {
    let mut d = FrameDecoder::new();
    d.push(V_HOURLY.as_bytes());
    let f = d.next_frame().unwrap().unwrap();
    let p = f.parse().unwrap();
    assert_eq!(p.number("a24088", Suffix::Avg), Some(0.933));
}

fn arb_key() -> impl Strategy<Value = String> {
    (
        "[a-w][0-9]{5}",
        prop::sample::select(vec!["Rtd", "Avg", "Min", "Max", "Cou", "ZsAvg"]),
    )
        .prop_map(|(c, s)| format!("{c}-{s}"))
}

fn arb_time() -> impl Strategy<Value = CivilDateTime> {
    (
        2000u16..2100,
        1u8..13,
        1u8..29,
        0u8..24,
        0u8..60,
        0u8..60,
        0u16..1000,
    )
        .prop_map(|(y, mo, d, h, mi, s, ms)| CivilDateTime::new(y, mo, d, h, mi, s, ms).unwrap())
}

fn arb_flag() -> impl Strategy<Value = DataFlag> {
    prop::sample::select(DataFlag::ALL.to_vec())
}

#[derive(Clone, Debug)]
struct Generated {
    qn: CivilDateTime,
    st: u16,
    cn: u16,
    pw: String,
    mn: String,
    flag: u8,
    split: Option<(u16, u16)>,
    data_time: CivilDateTime,
    groups: Vec<Vec<(String, f64, DataFlag)>>,
}

fn arb_packet() -> impl Strategy<Value = Generated> {
    (
        arb_time(),
        0u16..100,
        1000u16..10000,
        "[0-9]{6}",
        "[A-Za-z0-9_]{1,24}",
        0u8..=255,
        prop::option::of((1u16..20).prop_flat_map(|n| (Just(n), 1..=n))),
        arb_time(),
        prop::collection::vec(
            prop::collection::vec((arb_key(), -1e6f64..1e6, arb_flag()), 1..4),
            0..6,
        ),
    )
        .prop_map(|(qn, st, cn, pw, mn, flag, split, data_time, groups)| {
            // The D bit and PNUM/PNO go together.
            let flag = if split.is_some() { flag | 2 } else { flag & !2 };
            Generated {
                qn,
                st,
                cn,
                pw,
                mn,
                flag,
                split,
                data_time,
                groups,
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Arbitrary bytes in arbitrary chunks never panic, and never leave more than a frame held.
    #[test]
    fn arbitrary_bytes_never_panic(
        data in prop::collection::vec(prop::sample::select(b"##0123456789abcCP=&;,\r\n\x00\xff".to_vec()), 0..4000),
        cuts in prop::collection::vec(0usize..4000, 0..8),
    ) {
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(data.len())).collect();
        cuts.sort();
        let mut d = FrameDecoder::new();
        let mut out = Vec::new();
        let mut prev = 0;
        for c in cuts.into_iter().chain([data.len()]) {
            d.push(&data[prev..c]);
            drain(&mut d, &mut out);
            prop_assert!(d.buffered() < MAX_FRAME_LEN);
            prev = c;
        }
        let _ = d.pending();
        let _ = d.abandon_pending();
        for it in out {
            if let Item::Frame(s) = it {
                let _ = Packet::parse_bytes(&s);
            }
        }
    }

    /// Any bytes as a segment: the packet parser returns, never panics.
    #[test]
    fn arbitrary_segments_never_panic(s in "(QN=|ST=|CN=|PW=|MN=|Flag=|PNUM=|PNO=|CP=&&|&&|[0-9]{1,17}|[;,=a-z-]){0,40}") {
        let _ = Packet::parse(&s);
        let _ = decode_frame(s.as_bytes());
    }

    /// A stream of valid frames split at arbitrary positions decodes to exactly those frames.
    #[test]
    fn chunking_never_changes_the_frames(
        picks in prop::collection::vec(0usize..4, 1..12),
        cuts in prop::collection::vec(0usize..5000, 0..20),
    ) {
        let frames = [V_SET_INTERVAL, V_QNRTN, V_HOURLY, V_REALTIME_AIR];
        let s: String = picks.iter().map(|&i| frames[i]).collect();
        let b = s.as_bytes();
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(b.len())).collect();
        cuts.sort();
        let mut chunks = Vec::new();
        let mut prev = 0;
        for c in cuts.into_iter().chain([b.len()]) {
            chunks.push(&b[prev..c]);
            prev = c;
        }
        let want: Vec<Item> = picks.iter().map(|&i| seg(frames[i])).collect();
        prop_assert_eq!(decode_chunks(chunks), want);
    }

    /// encode -> frame -> decode -> parse gives back every header field and every value.
    #[test]
    fn encode_decode_round_trip(g in arb_packet()) {
        let mut cp = CpBuilder::new();
        cp.time("DataTime", g.data_time).unwrap();
        for group in &g.groups {
            cp.group();
            for (key, v, f) in group {
                cp.number(key, *v).unwrap();
                let code = key.split('-').next().unwrap();
                cp.flag(&format!("{code}-Flag"), *f).unwrap();
            }
        }
        let qn = g.qn.millis_text();
        let spec = PacketSpec {
            qn: Some(&qn),
            st: g.st,
            cn: g.cn,
            pw: &g.pw,
            mn: &g.mn,
            flag: Some(PacketFlag(g.flag)),
            split: g.split.map(|(pnum, pno)| Split { pnum, pno }),
            cp: cp.as_str(),
        };
        let bytes = spec.encode().unwrap();
        let frame = decode_frame(&bytes).unwrap();
        let p = frame.parse().unwrap();
        prop_assert_eq!(p.qn_time, Some(g.qn));
        prop_assert_eq!((p.st, p.cn, p.pw, p.mn), (g.st, g.cn, g.pw.as_str(), g.mn.as_str()));
        prop_assert_eq!(p.flag, Some(PacketFlag(g.flag)));
        prop_assert_eq!(p.split, spec.split);
        prop_assert_eq!(p.data_time, Some(CivilDateTime { millisecond: 0, ..g.data_time }));
        prop_assert!(p.warnings.is_empty());
        let mut i = 1;
        for (gi, group) in g.groups.iter().enumerate() {
            for (key, v, f) in group {
                prop_assert_eq!(p.fields[i].key, key.as_str());
                prop_assert_eq!(p.fields[i].value, Value::Number(*v));
                prop_assert_eq!(p.fields[i].group as usize, gi + 1);
                prop_assert_eq!(p.fields[i + 1].value, Value::Flag(*f));
                i += 2;
            }
        }
        prop_assert_eq!(i, p.fields.len());
        // And through the streaming decoder, glued to itself.
        let twice = [bytes.clone(), bytes.clone()].concat();
        let items = decode_chunks([twice.as_slice()]);
        prop_assert_eq!(items.len(), 2);
    }
}
