//! Decode speed on the hourly (CN=2061) reference packet. Ignored by default; run with
//! `cargo test --release -p carbonstream-core --test hj212_speed -- --ignored --nocapture`.
//! Target: >= 200,000 packets/s per core (frame check + CRC + full parse of every field).

use std::hint::black_box;
use std::time::{Duration, Instant};

use carbonstream_core::hj212::{FrameDecoder, Suffix, decode_frame};

const V_HOURLY: &str = "##0612QN=20240123101501421;ST=31;CN=2061;PW=123456;MN=81733553216103;Flag=4;CP=&&DataTime=20240122170000;a00000-Cou=19191.973,a00000-Min=5.051,a00000-Avg=5.331,a00000-Max=5.617,a00000-Flag=N;a01011-Min=6.686,a01011-Avg=7.029,a01011-Max=7.425,a01011-Flag=N;a01013-Min=-0.041,a01013-Avg=-0.026,a01013-Max=0.011,a01013-Flag=N;a01012-Min=8.074,a01012-Avg=8.524,a01012-Max=8.789,a01012-Flag=N;a24088-Cou=0.018,a24088-Min=0.665,a24088-Avg=0.933,a24088-Max=1.418,a24088-Flag=N;a05002-Cou=0.000,a05002-Min=0.000,a05002-Avg=0.000,a05002-Max=0.000,a05002-Flag=N;a01014-Min=0.828,a01014-Avg=1.040,a01014-Max=1.239,a01014-Flag=N&&0E40\r\n";

fn rate(mut f: impl FnMut() -> usize) -> f64 {
    let mut best = 0.0f64;
    for _ in 0..5 {
        let start = Instant::now();
        let mut n = 0usize;
        while start.elapsed() < Duration::from_millis(400) {
            n += f();
        }
        best = best.max(n as f64 / start.elapsed().as_secs_f64());
    }
    best
}

#[test]
#[ignore = "timing; run in release with --ignored --nocapture"]
fn decode_speed_of_the_hourly_packet() {
    let bytes = V_HOURLY.as_bytes();
    let single = rate(|| {
        for _ in 0..1_000 {
            let f = decode_frame(black_box(bytes)).unwrap();
            let p = f.parse().unwrap();
            black_box(p.number("a24088", Suffix::Avg));
        }
        1_000
    });
    // The TCP path: 100 glued frames per 61 KB read, through the streaming decoder.
    let read: Vec<u8> = bytes.repeat(100);
    let mut d = FrameDecoder::new();
    let streamed = rate(|| {
        d.push(black_box(&read));
        let mut n = 0;
        while let Some(f) = d.next_frame() {
            let p = f.unwrap().parse().unwrap();
            black_box(p.fields.len());
            n += 1;
        }
        n
    });
    println!(
        "hourly packet decode+parse: {single:.0} packets/s single, {streamed:.0} packets/s streamed"
    );
    if !cfg!(debug_assertions) {
        assert!(single >= 200_000.0 && streamed >= 200_000.0);
    }
}
