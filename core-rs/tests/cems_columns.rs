//! `StackPipeline::push_columns` reads samples in place and adds runs of the open minute without
//! a row of readings each. It must be indistinguishable from one `push_sample` per sample: same
//! outputs, same errors for the same samples, same state (snapshot bytes), for any mix of
//! flags, missing readings, unknown flag bytes, non-finite values, capped values, late samples,
//! repeated packets and call boundaries.

use carbonstream_core::cems::{
    CemsError, ChannelConfig, ChannelSpec, FlowSource, PipelineConfig, PipelineOutput, Policy,
    Reading, SampleColumns, StackPipeline,
};
use proptest::prelude::*;
use proptest::test_runner::Config;

const T0_MS: i64 = 1_704_038_400_000;
const CHANNELS: usize = 2;

fn config(flow_source: FlowSource) -> PipelineConfig {
    let mut c = PipelineConfig::new(
        Policy::hj75(),
        flow_source,
        vec![
            ChannelSpec::mass(ChannelConfig::mg_per_m3().with_upper_limit(40.0)),
            ChannelSpec::auxiliary(),
        ],
    );
    c.flatline_minutes = 4;
    c.repeat_packets = 3;
    c.min_valid_samples = 2;
    if matches!(flow_source, FlowSource::Actual { .. }) {
        // The auxiliary channel is the flue gas temperature the conversion needs.
        c.conditions.temperature = Some(1);
    }
    c
}

#[derive(Clone, Debug)]
struct Sample {
    t_ms: i64,
    flow: f64,
    flow_flag: u8,
    values: [f64; CHANNELS],
    flags: [u8; CHANNELS],
    fingerprint: u64,
}

/// Mostly N; the other flags, no reading (0) and a byte that is no flag.
fn flag() -> impl Strategy<Value = u8> {
    prop_oneof![
        8 => Just(b'N'),
        1 => prop::sample::select(vec![b'T', b'F', b'C', b'M', b'D', b'S', b'B', 0, b'x']),
    ]
}

fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        12 => 0.0..60.0f64,
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
    ]
}

/// Times mostly moving forward a few seconds (several samples per minute), sometimes jumping
/// back (late samples) or minutes ahead.
fn samples() -> impl Strategy<Value = Vec<Sample>> {
    let step = prop_oneof![
        10 => 0i64..25_000,
        1 => -150_000i64..0,
        1 => 60_000i64..600_000,
    ];
    let sample = (
        step,
        value(),
        flag(),
        [value(), value()],
        [flag(), flag()],
        prop_oneof![3 => Just(0u64), 1 => 1u64..3],
    );
    prop::collection::vec(sample, 1..400).prop_map(|raw| {
        let mut t = T0_MS;
        raw.into_iter()
            .map(|(step, flow, flow_flag, values, flags, fingerprint)| {
                t += step;
                Sample {
                    t_ms: t,
                    flow,
                    flow_flag,
                    values,
                    flags,
                    fingerprint,
                }
            })
            .collect()
    })
}

/// One `push_sample` per sample: the reference.
fn per_sample(p: &mut StackPipeline, s: &[Sample], out: &mut PipelineOutput) -> Vec<String> {
    let mut errors = Vec::new();
    for (i, x) in s.iter().enumerate() {
        let row: Vec<Option<Reading>> = (0..CHANNELS)
            .map(|c| Reading::from_code(x.values[c], x.flags[c]))
            .collect();
        let flow = Reading::from_code(x.flow, x.flow_flag);
        let fp = (x.fingerprint != 0).then_some(x.fingerprint);
        if let Err(e) = p.push_sample(x.t_ms, flow, &row, fp, out) {
            errors.push(format!("{i}: {e}"));
        }
    }
    errors
}

fn columns(p: &mut StackPipeline, s: &[Sample], out: &mut PipelineOutput) -> Vec<String> {
    let t: Vec<i64> = s.iter().map(|x| x.t_ms).collect();
    let flow: Vec<f64> = s.iter().map(|x| x.flow).collect();
    let flow_flag: Vec<u8> = s.iter().map(|x| x.flow_flag).collect();
    let values: Vec<f64> = s.iter().flat_map(|x| x.values).collect();
    let flags: Vec<u8> = s.iter().flat_map(|x| x.flags).collect();
    let fp: Vec<u64> = s.iter().map(|x| x.fingerprint).collect();
    let cols = SampleColumns::new(&t, &flow, &flow_flag, &values, &flags, &fp, CHANNELS).unwrap();
    let mut errors = Vec::new();
    p.push_columns(&cols, out, |i, e| errors.push(format!("{i}: {e}")));
    errors
}

/// Both ways over the same samples, in two calls split at `split`, then a watermark.
fn compare(flow_source: FlowSource, s: &[Sample], split: usize) {
    let split = split.min(s.len());
    let (mut a, mut b) = (
        StackPipeline::new(config(flow_source)).unwrap(),
        StackPipeline::new(config(flow_source)).unwrap(),
    );
    let (mut out_a, mut out_b) = (PipelineOutput::default(), PipelineOutput::default());
    for part in [&s[..split], &s[split..]] {
        // Errors are numbered within the call in both.
        let want = per_sample(&mut a, part, &mut out_a);
        let got = columns(&mut b, part, &mut out_b);
        assert_eq!(got, want);
        // Mid-stream too: the open minute's sums are in the snapshot.
        assert_eq!(b.snapshot(), a.snapshot());
    }
    let end = s.iter().map(|x| x.t_ms).max().unwrap() + 60_000;
    let (ra, rb) = (
        a.close_until(end, &mut out_a),
        b.close_until(end, &mut out_b),
    );
    assert_eq!(ra, rb);
    // Debug prints every f64 exactly (shortest round trip), NaN as NaN.
    assert_eq!(format!("{out_b:?}"), format!("{out_a:?}"));
    assert_eq!(b.snapshot(), a.snapshot());
}

proptest! {
    #![proptest_config(Config { failure_persistence: None, ..Config::with_cases(256) })]

    #[test]
    fn columns_equal_one_push_per_sample(s in samples(), split in 0usize..400) {
        compare(FlowSource::DryStandard { scale: 3600.0 }, &s, split);
    }

    /// A flow that needs conversion always takes the per-sample path; still the same.
    #[test]
    fn columns_equal_per_sample_with_a_converted_flow(s in samples(), split in 0usize..400) {
        let source = FlowSource::Actual { scale: 1.0, atmospheric_pa: 101_325.0 };
        compare(source, &s, split);
    }
}

#[test]
fn columns_of_different_lengths_are_refused_by_name() {
    let t = [T0_MS, T0_MS + 1_000];
    let err =
        SampleColumns::new(&t, &[1.0], &[b'N'; 2], &[0.0; 4], &[b'N'; 4], &[0; 2], 2).unwrap_err();
    assert_eq!(
        err,
        CemsError::LengthMismatch {
            what: "flow vs t_ms",
            a: 1,
            b: 2
        }
    );
    let err = SampleColumns::new(&t, &[1.0; 2], &[b'N'; 2], &[0.0; 3], &[b'N'; 4], &[0; 2], 2)
        .unwrap_err();
    assert!(
        err.to_string().contains("values vs t_ms x channels"),
        "{err}"
    );
}
