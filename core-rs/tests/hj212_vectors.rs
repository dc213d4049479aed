//! Every test vector of reference/hj212/README.md: valid ones decode to the values they carry,
//! invalid ones are rejected for the right reason. Plus the CRC itself, field typing, time
//! validation and answer packets.

use carbonstream_core::hj212::{
    CivilDateTime, CpBuilder, DataFlag, EncodeError, ExeRtn, FrameError, Packet, PacketError,
    PacketFlag, PacketSpec, QnRtn, Split, Suffix, TimeError, Value, WarningReason, codes, crc16,
    data_answer, decode_frame, execution_result, request_answer,
};

const V_SET_INTERVAL: &str = "##0101QN=20160801085857223;ST=32;CN=1062;PW=100000;MN=010000A8900016F000169DC0;Flag=5;CP=&&RtdInterval=30&&1C80\r\n";
const V_REALTIME_W: &str = "##0162QN=20231008123340461;ST=22;CN=2011;PW=123456;MN=010000A8900016F000169DC0;Flag=5;CP=&&DataTime=20231008123340;w01008-SampleTime=20231008123340,w01008-Rtd=123.456&&F441\r\n";
const V_QNRTN: &str = "##0094QN=20231008125115215;ST=22;CN=9011;PW=123456;MN=010000A8900016F000169DC0;Flag=4;CP=&&QnRtn=1&&CC01\r\n";
const V_MINUTE: &str = "##0411QN=20220513162608370;ST=22;CN=2051;PW=123456;MN=JLYP01_AIR01_0001;Flag=4;CP=&&DataTime=20220513162600;a21004-Avg=4,a21004-Flag=N;a05024-Avg=63,a05024-Flag=N;a21026-Avg=6,a21026-Flag=N;a21005-Avg=0.427,a21005-Flag=N;a34004-Avg=14,a34004-Flag=N;a34002-Avg=31,a34002-Flag=N;a01007-Avg=1,a01007-Flag=N;a01008-Avg=11,a01008-Flag=N;a01001-Avg=17,a01001-Flag=N;a01002-Avg=85,a01002-Flag=N;a01006-Avg=95,a01006-Flag=N&&D641\r\n";
const V_HOURLY: &str = "##0612QN=20240123101501421;ST=31;CN=2061;PW=123456;MN=81733553216103;Flag=4;CP=&&DataTime=20240122170000;a00000-Cou=19191.973,a00000-Min=5.051,a00000-Avg=5.331,a00000-Max=5.617,a00000-Flag=N;a01011-Min=6.686,a01011-Avg=7.029,a01011-Max=7.425,a01011-Flag=N;a01013-Min=-0.041,a01013-Avg=-0.026,a01013-Max=0.011,a01013-Flag=N;a01012-Min=8.074,a01012-Avg=8.524,a01012-Max=8.789,a01012-Flag=N;a24088-Cou=0.018,a24088-Min=0.665,a24088-Avg=0.933,a24088-Max=1.418,a24088-Flag=N;a05002-Cou=0.000,a05002-Min=0.000,a05002-Avg=0.000,a05002-Max=0.000,a05002-Flag=N;a01014-Min=0.828,a01014-Avg=1.040,a01014-Max=1.239,a01014-Flag=N&&0E40\r\n";
const V_REALTIME_AIR: &str = "##0317QN=20191012133710130;ST=22;CN=2011;PW=123456;MN=Y80110010000010;Flag=4;CP=&&DataTime=20191012133710;a21005-Rtd=0.00,a21005-Flag=N;a21004-Rtd=0.00,a21004-Flag=N;a21007-Rtd=0.033,a21007-Flag=N;a21006-Rtd=0.036,a21006-Flag=N;a21001-Rtd=25.40,a21001-Flag=N;a21003-Rtd=101.94,a21003-Flag=N;a21002-Rtd=49.20,a21002-Flag=N&&cc01\r\n";
const INVALID_CRC: &str = "##0094QN=20231008125115215;ST=22;CN=9011;PW=123456;MN=010000A8900016F000169DC0;Flag=4;CP=&&QnRtn=1&&CC02\r\n";
const INVALID_LEN: &str = "##0095QN=20231008125115215;ST=22;CN=9011;PW=123456;MN=010000A8900016F000169DC0;Flag=4;CP=&&QnRtn=1&&CC01\r\n";

const ALL_VALID: [&str; 6] = [
    V_SET_INTERVAL,
    V_REALTIME_W,
    V_QNRTN,
    V_MINUTE,
    V_HOURLY,
    V_REALTIME_AIR,
];

fn packet(frame: &str) -> Packet<'_> {
    decode_frame(frame.as_bytes()).unwrap().parse().unwrap()
}

fn t(y: u16, mo: u8, d: u8, h: u8, mi: u8, s: u8, ms: u16) -> CivilDateTime {
    CivilDateTime::new(y, mo, d, h, mi, s, ms).unwrap()
}

/// The README's pseudo-code, bit by bit: the reference the table-driven CRC must equal.
fn crc_reference(data: &[u8]) -> u16 {
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

#[test]
fn crc_of_the_standards_example_is_1c80_not_the_printed_1c08() {
    let seg = &V_SET_INTERVAL[6..V_SET_INTERVAL.len() - 6];
    assert_eq!(crc16(seg.as_bytes()), 0x1C80);
    assert_ne!(crc16(seg.as_bytes()), 0x1C08);
}

#[test]
fn crc_is_not_modbus() {
    // CRC-16/MODBUS of "123456789" is 0x4B37; the HJ 212 variant differs.
    assert_ne!(crc16(b"123456789"), 0x4B37);
    assert_eq!(crc16(b"123456789"), crc_reference(b"123456789"));
    assert_eq!(crc16(b""), 0xFFFF);
}

#[test]
fn table_crc_equals_the_bitwise_reference_on_every_byte_pattern() {
    let data: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
    for n in 0..data.len() {
        if n % 7 == 0 {
            assert_eq!(crc16(&data[..n]), crc_reference(&data[..n]));
        }
    }
}

#[test]
fn every_valid_vector_passes_length_and_crc_in_either_hex_case() {
    for v in ALL_VALID {
        let f = decode_frame(v.as_bytes()).unwrap_or_else(|e| panic!("{v}: {e}"));
        assert_eq!(f.segment().len(), v[2..6].parse::<usize>().unwrap());
        assert_eq!(
            format!("{:04X}", f.crc()),
            v[v.len() - 6..v.len() - 2].to_uppercase()
        );
    }
    // The last vector carries its CRC in lower case.
    assert_eq!(
        decode_frame(V_REALTIME_AIR.as_bytes()).unwrap().crc(),
        0xCC01
    );
}

#[test]
fn invalid_vectors_are_rejected_for_the_right_reason() {
    assert_eq!(
        decode_frame(INVALID_CRC.as_bytes()).unwrap_err(),
        FrameError::CrcMismatch {
            expected: 0xCC01,
            found: 0xCC02
        }
    );
    assert_eq!(
        decode_frame(INVALID_LEN.as_bytes()).unwrap_err(),
        FrameError::LengthMismatch {
            declared: 95,
            actual: 94
        }
    );
    let msg = decode_frame(INVALID_CRC.as_bytes())
        .unwrap_err()
        .to_string();
    assert!(msg.contains("CC01") && msg.contains("CC02"), "{msg}");
}

#[test]
fn other_frame_damage_is_named() {
    let body = &V_QNRTN[..V_QNRTN.len() - 2];
    assert_eq!(
        decode_frame(body.as_bytes()).unwrap_err(),
        FrameError::Incomplete {
            buffered: body.len(),
            declared: Some(94)
        }
    );
    assert!(matches!(
        decode_frame(format!("{body}\r\nxy").as_bytes()),
        Err(FrameError::TrailingBytes { extra: 2 })
    ));
    assert!(matches!(
        decode_frame(b"##01a1QN=1\r\n"),
        Err(FrameError::BadLengthField { .. })
    ));
    assert!(matches!(
        decode_frame(b"##2000xxxx\r\n"),
        Err(FrameError::LengthOutOfRange { declared: 2000 })
    ));
    assert_eq!(decode_frame(b"QN=1"), Err(FrameError::NoHeader));
    let bad_hex = V_QNRTN.replace("CC01\r\n", "CG01\r\n");
    assert!(matches!(
        decode_frame(bad_hex.as_bytes()),
        Err(FrameError::BadCrcField { .. })
    ));
    assert!(matches!(
        decode_frame(b"##0010ab\r\n"),
        Err(FrameError::TooShort { len: 10 })
    ));
}

#[test]
fn set_interval_request_decodes() {
    let p = packet(V_SET_INTERVAL);
    assert_eq!(p.qn, Some("20160801085857223"));
    assert_eq!(p.qn_time, Some(t(2016, 8, 1, 8, 58, 57, 223)));
    assert_eq!((p.st, p.cn, p.pw), (32, 1062, "100000"));
    assert_eq!(p.mn, "010000A8900016F000169DC0");
    let flag = p.flag.unwrap();
    assert_eq!(
        (flag.version(), flag.is_split(), flag.answer_requested()),
        (1, false, true)
    );
    assert!(p.answer_requested());
    assert_eq!(p.split, None);
    assert_eq!(p.data_time, None);
    assert_eq!(p.fields.len(), 1);
    assert_eq!(p.fields[0].key, "RtdInterval");
    assert_eq!(p.fields[0].value, Value::Number(30.0));
    assert_eq!(
        codes::command_name(p.cn),
        Some("set real-time data interval")
    );
}

#[test]
fn water_realtime_decodes_with_sample_time() {
    let p = packet(V_REALTIME_W);
    assert_eq!((p.st, p.cn), (22, codes::cn::REALTIME_DATA));
    assert_eq!(p.data_time, Some(t(2023, 10, 8, 12, 33, 40, 0)));
    assert_eq!(p.number("w01008", Suffix::Rtd), Some(123.456));
    assert_eq!(
        p.field("w01008", Suffix::SampleTime).unwrap().value,
        Value::Time(t(2023, 10, 8, 12, 33, 40, 0))
    );
    assert_eq!(p.data_flag("w01008"), None);
    assert!(p.warnings.is_empty());
}

#[test]
fn request_answer_vector_decodes() {
    let p = packet(V_QNRTN);
    assert_eq!(p.cn, codes::cn::REQUEST_ANSWER);
    assert_eq!(p.flag, Some(PacketFlag(4)));
    assert!(!p.answer_requested());
    assert_eq!(p.number("QnRtn", Suffix::None), Some(1.0));
}

#[test]
fn minute_vector_decodes_every_value_and_flag() {
    let p = packet(V_MINUTE);
    assert_eq!((p.st, p.cn, p.mn), (22, 2051, "JLYP01_AIR01_0001"));
    assert_eq!(p.data_time, Some(t(2022, 5, 13, 16, 26, 0, 0)));
    let expected = [
        ("a21004", 4.0),
        ("a05024", 63.0),
        ("a21026", 6.0),
        ("a21005", 0.427),
        ("a34004", 14.0),
        ("a34002", 31.0),
        ("a01007", 1.0),
        ("a01008", 11.0),
        ("a01001", 17.0),
        ("a01002", 85.0),
        ("a01006", 95.0),
    ];
    let codes: Vec<&str> = p.codes().collect();
    assert_eq!(codes, expected.map(|e| e.0).to_vec());
    for (i, (code, avg)) in expected.iter().enumerate() {
        assert_eq!(p.number(code, Suffix::Avg), Some(*avg), "{code}");
        assert_eq!(p.data_flag(code), Some(DataFlag::Normal), "{code}");
        // Group 0 is DataTime; pollutant i is group i + 1.
        assert_eq!(p.field(code, Suffix::Avg).unwrap().group as usize, i + 1);
    }
    assert_eq!(p.fields.len(), 1 + 2 * expected.len());
}

#[test]
fn hourly_vector_decodes_and_is_self_consistent() {
    let p = packet(V_HOURLY);
    assert_eq!(
        (p.st, p.cn, p.mn),
        (31, codes::cn::HOURLY_DATA, "81733553216103")
    );
    assert_eq!(p.qn_time, Some(t(2024, 1, 23, 10, 15, 1, 421)));
    assert_eq!(p.data_time, Some(t(2024, 1, 22, 17, 0, 0, 0)));
    let n = |code, s| p.number(code, s).unwrap();
    assert_eq!(n("a00000", Suffix::Cou), 19191.973);
    assert_eq!(n("a00000", Suffix::Min), 5.051);
    assert_eq!(n("a00000", Suffix::Avg), 5.331);
    assert_eq!(n("a00000", Suffix::Max), 5.617);
    assert_eq!(n("a01011", Suffix::Avg), 7.029);
    assert_eq!(n("a01013", Suffix::Min), -0.041);
    assert_eq!(n("a01013", Suffix::Avg), -0.026);
    assert_eq!(n("a01012", Suffix::Max), 8.789);
    assert_eq!(n("a24088", Suffix::Cou), 0.018);
    assert_eq!(n("a24088", Suffix::Avg), 0.933);
    assert_eq!(n("a05002", Suffix::Cou), 0.0);
    assert_eq!(n("a01014", Suffix::Avg), 1.040);
    for code in [
        "a00000", "a01011", "a01013", "a01012", "a24088", "a05002", "a01014",
    ] {
        assert_eq!(p.data_flag(code), Some(DataFlag::Normal));
    }
    assert_eq!(p.fields.len(), 1 + 5 + 4 + 4 + 4 + 5 + 5 + 4);
    // 5.331 m3/s x 3600 s = 19,192 m3 ~ Cou; 0.933 mg/m3 x that x 1e-6 = 0.018 kg.
    let flow = n("a00000", Suffix::Avg) * 3600.0;
    assert!((flow - n("a00000", Suffix::Cou)).abs() < 1.0);
    let mass = n("a24088", Suffix::Avg) * flow * 1e-6;
    assert!((mass - n("a24088", Suffix::Cou)).abs() < 0.0005);
}

#[test]
fn air_realtime_vector_decodes() {
    let p = packet(V_REALTIME_AIR);
    assert_eq!(p.mn, "Y80110010000010");
    assert_eq!(p.number("a21005", Suffix::Rtd), Some(0.0));
    assert_eq!(p.number("a21007", Suffix::Rtd), Some(0.033));
    assert_eq!(p.number("a21001", Suffix::Rtd), Some(25.40));
    assert_eq!(p.number("a21003", Suffix::Rtd), Some(101.94));
    assert_eq!(p.number("a21002", Suffix::Rtd), Some(49.20));
    assert_eq!(p.codes().count(), 7);
}

#[test]
fn local_time_converts_with_the_callers_offset() {
    let p = packet(V_HOURLY);
    let dt = p.data_time.unwrap();
    // 2024-01-22 17:00:00 at +08:00 is 09:00:00 UTC.
    let utc_ms = 1_705_914_000_000;
    assert_eq!(dt.to_unix_ms(480), utc_ms);
    assert_eq!(dt.to_unix_ms(0), utc_ms + 8 * 3_600_000);
    assert_eq!(dt.to_unix_ns(480), utc_ms * 1_000_000);
    assert_eq!(CivilDateTime::from_unix_ms(utc_ms, 480).unwrap(), dt);
    assert_eq!(dt.to_string(), "2024-01-22T17:00:00.000");
}

#[test]
fn absurd_times_are_rejected_with_the_component() {
    let cases = [
        ("20241301000000", TimeError::Month(13)),
        ("99990101000000", TimeError::Year(9999)),
        ("19700101000000", TimeError::Year(1970)),
        (
            "20230229000000",
            TimeError::Day {
                year: 2023,
                month: 2,
                day: 29,
            },
        ),
        ("20240101240000", TimeError::Hour(24)),
        ("20240101006000", TimeError::Minute(60)),
        ("20240101000060", TimeError::Second(60)),
        (
            "2024010100000",
            TimeError::BadLength {
                expected: 14,
                got: 13,
            },
        ),
        ("2024010100000x", TimeError::NotDigits),
    ];
    for (text, reason) in cases {
        assert_eq!(CivilDateTime::parse_seconds(text), Err(reason), "{text}");
    }
    assert!(CivilDateTime::parse_seconds("20240229235959").is_ok());
    // An absurd DataTime rejects the packet, naming the field.
    let seg = "QN=20240123101501421;ST=31;CN=2061;PW=1;MN=M;Flag=4;CP=&&DataTime=20241301000000;a00000-Avg=1&&";
    assert_eq!(
        Packet::parse(seg).unwrap_err(),
        PacketError::BadTime {
            key: "DataTime".into(),
            value: "20241301000000".into(),
            reason: TimeError::Month(13)
        }
    );
    let seg = "QN=99990123101501421;ST=31;CN=2061;PW=1;MN=M;CP=&&&&";
    assert!(matches!(
        Packet::parse(seg),
        Err(PacketError::BadTime { ref key, .. }) if key == "QN"
    ));
    // A bad SampleTime is kept as text with a warning: the values of the packet stay usable.
    let seg = "ST=31;CN=2011;PW=1;MN=M;CP=&&DataTime=20240101000000;a21026-SampleTime=20241399000000,a21026-Rtd=3&&";
    let p = Packet::parse(seg).unwrap();
    assert_eq!(p.number("a21026", Suffix::Rtd), Some(3.0));
    assert_eq!(p.warnings.len(), 1);
    assert_eq!(
        p.warnings[0].reason,
        WarningReason::BadTime(TimeError::Month(13))
    );
}

#[test]
fn non_numeric_values_and_unknown_flags_are_kept_as_text_with_a_warning() {
    let seg = "ST=31;CN=2011;PW=1;MN=M;Flag=4;CP=&&DataTime=20240101000000;a21026-Rtd=--,a21026-Flag=X;a99999-Rtd=NaN,a99999-Foo=bar,x=;noequals&&";
    let p = Packet::parse(seg).unwrap();
    assert_eq!(
        p.field("a21026", Suffix::Rtd).unwrap().value,
        Value::Text("--")
    );
    assert_eq!(
        p.field("a21026", Suffix::Flag).unwrap().value,
        Value::Text("X")
    );
    assert_eq!(
        p.field("a99999", Suffix::Rtd).unwrap().value,
        Value::Text("NaN")
    );
    // Unknown code and suffix: kept.
    let foo = p.field("a99999", Suffix::Other("Foo")).unwrap();
    assert_eq!((foo.key, foo.value), ("a99999-Foo", Value::Text("bar")));
    assert_eq!(p.field("x", Suffix::None).unwrap().raw, "");
    let reasons: Vec<_> = p.warnings.iter().map(|w| (w.key, w.reason)).collect();
    assert_eq!(
        reasons,
        vec![
            ("a21026-Rtd", WarningReason::NotNumeric),
            ("a21026-Flag", WarningReason::UnknownDataFlag),
            ("a99999-Rtd", WarningReason::NotNumeric),
            ("noequals", WarningReason::NoEquals),
        ]
    );
}

#[test]
fn every_data_flag_letter_is_typed() {
    let mut cp = CpBuilder::new();
    for (i, f) in DataFlag::ALL.iter().enumerate() {
        cp.group().flag(&format!("a{i:05}-Flag"), *f).unwrap();
    }
    let seg = format!("ST=31;CN=2011;PW=1;MN=M;CP=&&{}&&", cp.as_str());
    let p = Packet::parse(&seg).unwrap();
    let got: Vec<_> = p.fields.iter().map(|f| f.value).collect();
    let want: Vec<_> = DataFlag::ALL.iter().map(|f| Value::Flag(*f)).collect();
    assert_eq!(got, want);
    assert_eq!(
        DataFlag::ALL.map(|f| f.letter()).iter().collect::<String>(),
        "NFMSDCTB"
    );
}

#[test]
fn header_errors_name_the_field() {
    let base = |h: &str| format!("{h}CP=&&&&");
    let cases = [
        ("ST=31;PW=1;MN=M;", PacketError::MissingField("CN")),
        ("ST=31;CN=2011;PW=1;", PacketError::MissingField("MN")),
        ("CN=2011;PW=1;MN=M;", PacketError::MissingField("ST")),
        (
            "ST=31;CN=20x1;PW=1;MN=M;",
            PacketError::BadNumber {
                key: "CN",
                value: "20x1".into(),
                max: 9999,
            },
        ),
        (
            "ST=31;CN=2011;PW=1;MN=M;Flag=256;",
            PacketError::BadNumber {
                key: "Flag",
                value: "256".into(),
                max: 255,
            },
        ),
        (
            "ST=31;CN=2011;CN=2011;PW=1;MN=M;",
            PacketError::DuplicateHeader("CN"),
        ),
        (
            "ST=31;CN=2011;PW=1;MN=M;Flag=6;",
            PacketError::BadSplit("Flag has the D bit but PNUM/PNO are missing"),
        ),
        (
            "ST=31;CN=2011;PW=1;MN=M;Flag=6;PNUM=2;PNO=3;",
            PacketError::BadSplit("PNO must be in 1..=PNUM"),
        ),
        (
            "ST=31;CN=2011;PW=1;MN=M;PNUM=2;",
            PacketError::BadSplit("PNUM and PNO must come together"),
        ),
        (
            "ST=31;CN;PW=1;MN=M;",
            PacketError::BadHeaderItem { item: "CN".into() },
        ),
    ];
    for (h, e) in cases {
        assert_eq!(Packet::parse(&base(h)).unwrap_err(), e, "{h}");
    }
    assert_eq!(Packet::parse("ST=31;CN=2011"), Err(PacketError::MissingCp));
    assert_eq!(
        Packet::parse("ST=31;CN=2011;PW=1;MN=M;CP=&&a=1"),
        Err(PacketError::UnterminatedCp)
    );
    assert_eq!(
        Packet::parse_bytes(b"ST=31;\xff"),
        Err(PacketError::NotUtf8 { at: 6 })
    );
    // 2005-edition packets without QN and Flag still parse.
    let p = Packet::parse("ST=32;CN=2011;PW=123456;MN=M1;CP=&&DataTime=20240101000000&&").unwrap();
    assert_eq!((p.qn, p.flag), (None, None));
    // An unknown header item is a warning, not an error.
    let p = Packet::parse("ST=32;CN=2011;PW=1;MN=M1;XX=1;CP=&&&&").unwrap();
    assert_eq!(p.warnings[0].reason, WarningReason::UnknownHeader);
}

#[test]
fn split_header_is_typed() {
    let seg = "QN=20240101000000000;ST=31;CN=2051;PW=1;MN=M;Flag=7;PNUM=3;PNO=2;CP=&&a=1&&";
    let p = Packet::parse(seg).unwrap();
    assert_eq!(p.split, Some(Split { pnum: 3, pno: 2 }));
    let f = p.flag.unwrap();
    assert!(f.is_split() && f.answer_requested());
    assert_eq!(PacketFlag::new(2, false, false), PacketFlag(8));
    assert_eq!(PacketFlag::new(1, true, true), PacketFlag(7));
}

#[test]
fn request_answer_reproduces_the_9011_vector_byte_for_byte() {
    // A request with the QN of the 9011 vector, answered with ST echoed (22) and QnRtn=1.
    let req = "QN=20231008125115215;ST=22;CN=1062;PW=123456;MN=010000A8900016F000169DC0;Flag=5;CP=&&RtdInterval=30&&";
    let req = Packet::parse(req).unwrap();
    let out = request_answer(&req, QnRtn::Ready, req.st).unwrap();
    assert_eq!(String::from_utf8(out).unwrap(), V_QNRTN);
}

#[test]
fn execution_and_data_answers_are_framed_and_parse_back() {
    let data = packet(V_REALTIME_W);
    let ack = data_answer(&data, codes::st::SYSTEM_INTERACTION).unwrap();
    let p = decode_frame(&ack).unwrap().parse().unwrap();
    assert_eq!(p.cn, codes::cn::DATA_ANSWER);
    assert_eq!((p.qn, p.st, p.pw, p.mn), (data.qn, 91, data.pw, data.mn));
    assert_eq!(p.flag, Some(PacketFlag(4)));
    assert_eq!(p.cp, "");
    let exe = execution_result(&data, ExeRtn::NoData, 91).unwrap();
    let p = decode_frame(&exe).unwrap().parse().unwrap();
    assert_eq!(
        (p.cn, p.number("ExeRtn", Suffix::None)),
        (9012, Some(100.0))
    );
    // The answer keeps the request's protocol version (2025: Flag base 8).
    let v2025 =
        Packet::parse("QN=20250101000000000;ST=31;CN=2011;PW=1;MN=M;Flag=9;CP=&&&&").unwrap();
    let p2 = data_answer(&v2025, 91).unwrap();
    assert!(String::from_utf8(p2).unwrap().contains(";Flag=8;"));
}

#[test]
fn builder_refuses_separators_and_oversize() {
    let mut cp = CpBuilder::new();
    assert!(matches!(
        cp.text("a-Info", "x;y"),
        Err(EncodeError::Reserved { .. })
    ));
    assert!(matches!(
        cp.number("a-Rtd", f64::NAN),
        Err(EncodeError::NotFinite { .. })
    ));
    let spec = PacketSpec {
        qn: None,
        st: 31,
        cn: 2011,
        pw: "1",
        mn: "M",
        flag: Some(PacketFlag(4)),
        split: None,
        cp: &"x".repeat(1100),
    };
    assert!(matches!(spec.encode(), Err(EncodeError::TooLong { .. })));
    let spec = PacketSpec {
        mn: "a=b",
        cp: "",
        ..spec
    };
    assert!(matches!(
        spec.encode(),
        Err(EncodeError::Reserved { what: "MN", .. })
    ));
}
