//! Counter arithmetic: one test per behaviour of reference/meters/README.md, plus conservation
//! properties over random reading sequences.

use carbonstream_core::grid::Grid;
use carbonstream_core::meters::{
    CounterError, CounterRules, IntervalCells, IntervalIntegrator, ReadingStatus, Rows,
};
use proptest::prelude::*;

const S: i64 = 1_000_000_000;
const MIN: i64 = 60 * S;

fn integrator(rollover: Option<f64>) -> IntervalIntegrator {
    IntervalIntegrator::new(
        Grid::new(0, MIN).unwrap(),
        CounterRules::new(rollover, 15 * MIN).unwrap(),
    )
}

/// Feeds (meter, t, value) rows with factor 0.5 and returns cells and statuses.
fn feed(
    it: &mut IntervalIntegrator,
    rows: &[(u32, i64, f64)],
) -> (IntervalCells, Vec<ReadingStatus>) {
    let stream: Vec<u32> = rows.iter().map(|r| r.0).collect();
    let t: Vec<i64> = rows.iter().map(|r| r.1).collect();
    let v: Vec<f64> = rows.iter().map(|r| r.2).collect();
    let f = vec![0.5; rows.len()];
    let seq = vec![0u32; rows.len()];
    let mut status = vec![255u8; rows.len()];
    let input = Rows {
        stream: &stream,
        seq: &seq,
        t_ns: &t,
        value: &v,
        factor: &f,
    };
    let cells = it.integrate(input, &mut status).unwrap();
    let status = status.into_iter().map(decode).collect();
    (cells, status)
}

fn decode(code: u8) -> ReadingStatus {
    use ReadingStatus::*;
    [
        Accepted, Wrapped, Baseline, Gap, Reset, Duplicate, Conflict, OutOfOrder, Invalid,
    ][code as usize]
}

/// The last emitted value of each (meter, slot), as the store would hold it after overwrites.
fn stored(cells: &[IntervalCells]) -> std::collections::BTreeMap<(u32, i64), (f64, f64, f32, f64)> {
    let mut m = std::collections::BTreeMap::new();
    for c in cells {
        for i in 0..c.len() {
            m.insert(
                (c.stream[i], c.slot[i]),
                (c.consumption[i], c.co2[i], c.coverage[i], c.reading[i]),
            );
        }
    }
    m
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * (1.0 + a.abs().max(b.abs()))
}

#[test]
fn splits_an_increase_across_periods_in_proportion_to_time() {
    let mut it = integrator(None);
    // 100.0 at 00:00:30, 103.0 at 00:02:00: 90 s of which 30 s fall in minute 0 and 60 s in minute 1.
    let (cells, status) = feed(&mut it, &[(7, 30 * S, 100.0), (7, 120 * S, 103.0)]);
    assert_eq!(
        status,
        vec![ReadingStatus::Baseline, ReadingStatus::Accepted]
    );
    let m = stored(&[cells]);
    let (c0, co2_0, cov0, r0) = m[&(7, 0)];
    assert!(close(c0, 1.0) && close(co2_0, 0.5) && close(cov0 as f64, 0.5) && r0 == 100.0);
    let (c1, _, cov1, r1) = m[&(7, 1)];
    assert!(close(c1, 2.0) && cov1 == 1.0 && r1.is_nan());
    // The reading at exactly 00:02:00 opens minute 2 with nothing covered yet.
    let (c2, _, cov2, r2) = m[&(7, 2)];
    assert!(c2.is_nan() && cov2 == 0.0 && r2 == 103.0);
}

#[test]
fn only_the_period_a_meter_is_still_in_is_open() {
    let mut it = integrator(None);
    let (cells, _) = feed(&mut it, &[(7, 30 * S, 1.0), (7, 150 * S, 2.0)]);
    // Minutes 0 and 1 are behind the last reading (closed), minute 2 is still open.
    let closed: Vec<(i64, bool)> = cells
        .slot
        .iter()
        .copied()
        .zip(cells.closed.iter().copied())
        .collect();
    assert_eq!(closed, vec![(0, true), (1, true), (2, false)]);
}

#[test]
fn open_period_accumulates_across_batches() {
    let mut it = integrator(None);
    let (a, _) = feed(&mut it, &[(1, 0, 10.0), (1, 20 * S, 11.0)]);
    let (b, _) = feed(&mut it, &[(1, 40 * S, 12.0)]);
    let (c, _) = feed(&mut it, &[(1, 60 * S, 13.0)]);
    let m = stored(&[a, b, c]);
    let (c0, _, cov0, r0) = m[&(1, 0)];
    assert!(close(c0, 3.0) && cov0 == 1.0 && r0 == 12.0);
}

#[test]
fn register_rollover_is_integrated() {
    let mut it = integrator(Some(100_000.0));
    let (cells, status) = feed(&mut it, &[(1, 0, 99_999.0), (1, 30 * S, 1.5)]);
    assert_eq!(status[1], ReadingStatus::Wrapped);
    assert!(close(stored(&[cells])[&(1, 0)].0, 2.5));
}

#[test]
fn a_fall_without_rollover_is_a_reset_not_negative_consumption() {
    let mut it = integrator(Some(100_000.0));
    // 5,000 -> 3: not near the top of the register, so a reset (or a new meter), not a wrap.
    let (cells, status) = feed(
        &mut it,
        &[(1, 0, 5_000.0), (1, 30 * S, 3.0), (1, 90 * S, 4.0)],
    );
    assert_eq!(status[1], ReadingStatus::Reset);
    let m = stored(&[cells]);
    // Nothing is integrated across the reset; after it, the register counts from the new baseline:
    // 1.0 over 00:00:30-00:01:30, half of it in minute 0 (covered only for those 30 s).
    let (c0, _, cov0, r0) = m[&(1, 0)];
    assert!(close(c0, 0.5) && close(cov0 as f64, 0.5) && r0 == 3.0);
    let total: f64 = m.values().filter(|v| !v.0.is_nan()).map(|v| v.0).sum();
    assert!(close(total, 1.0));
}

#[test]
fn meter_replacement_starts_from_the_new_register() {
    let mut it = integrator(None);
    let (a, _) = feed(&mut it, &[(4, 0, 8_123.0), (4, 60 * S, 8_124.0)]);
    // Replaced at 00:01:30 by a new meter reading 0.2.
    let (b, status) = feed(&mut it, &[(4, 90 * S, 0.2), (4, 150 * S, 0.8)]);
    assert_eq!(status, vec![ReadingStatus::Reset, ReadingStatus::Accepted]);
    let m = stored(&[a, b]);
    assert!(close(m[&(4, 0)].0, 1.0));
    assert!(close(m[&(4, 1)].0, 0.3) && close(m[&(4, 1)].2 as f64, 0.5));
    assert!(close(m[&(4, 2)].0, 0.3));
}

#[test]
fn duplicates_are_ignored_and_conflicts_rejected() {
    let mut it = integrator(None);
    let (_, status) = feed(
        &mut it,
        &[(1, 0, 1.0), (1, 0, 1.0), (1, 0, 2.0), (1, 10 * S, 1.5)],
    );
    assert_eq!(
        status,
        vec![
            ReadingStatus::Baseline,
            ReadingStatus::Duplicate,
            ReadingStatus::Conflict,
            ReadingStatus::Accepted
        ]
    );
    assert!(ReadingStatus::Conflict.is_rejected() && !ReadingStatus::Duplicate.is_rejected());
}

#[test]
fn out_of_order_within_a_batch_is_sorted_but_late_across_batches_is_rejected() {
    let mut it = integrator(None);
    let (cells, status) = feed(&mut it, &[(1, 30 * S, 2.0), (1, 0, 1.0)]);
    assert_eq!(
        status,
        vec![ReadingStatus::Accepted, ReadingStatus::Baseline]
    );
    assert!(close(stored(&[cells])[&(1, 0)].0, 1.0));
    let (cells, status) = feed(&mut it, &[(1, 20 * S, 1.5)]);
    assert_eq!(status, vec![ReadingStatus::OutOfOrder]);
    assert!(cells.is_empty());
}

#[test]
fn a_later_arrival_is_never_sorted_before_earlier_ones_in_the_same_call() {
    // Record 0 brings 00:00:00 and 00:00:30; record 1 (arrived later) brings a 00:00:20 reading.
    // Whether both records come in one call or two, the 00:00:20 reading is late.
    let mut it = integrator(None);
    let input = Rows {
        stream: &[1, 1, 1],
        seq: &[0, 0, 1],
        t_ns: &[0, 30 * S, 20 * S],
        value: &[1.0, 2.0, 1.5],
        factor: &[0.5; 3],
    };
    let mut status = [255u8; 3];
    it.integrate(input, &mut status).unwrap();
    let late = ReadingStatus::OutOfOrder as u8;
    assert_eq!(
        status,
        [
            ReadingStatus::Baseline as u8,
            ReadingStatus::Accepted as u8,
            late
        ]
    );
}

#[test]
fn a_gap_longer_than_max_gap_stays_missing() {
    let mut it = integrator(None);
    let (cells, status) = feed(
        &mut it,
        &[(1, 0, 1.0), (1, 20 * MIN, 50.0), (1, 21 * MIN, 51.0)],
    );
    assert_eq!(status[1], ReadingStatus::Gap);
    let m = stored(&[cells]);
    for slot in 1..20 {
        assert!(
            !m.contains_key(&(1, slot)),
            "slot {slot} must stay missing, not zero"
        );
    }
    assert!(close(m[&(1, 20)].0, 1.0));
}

#[test]
fn invalid_values_are_rejected_without_touching_state() {
    let mut it = integrator(None);
    let (_, status) = feed(
        &mut it,
        &[
            (1, 0, f64::NAN),
            (1, 1, -3.0),
            (1, 2, f64::INFINITY),
            (1, 3, 5.0),
        ],
    );
    assert_eq!(&status[..3], &[ReadingStatus::Invalid; 3]);
    assert_eq!(status[3], ReadingStatus::Baseline);
}

#[test]
fn length_mismatch_is_an_error() {
    let mut it = integrator(None);
    let input = Rows {
        stream: &[1, 2],
        seq: &[0, 0],
        t_ns: &[0],
        value: &[1.0, 2.0],
        factor: &[1.0, 1.0],
    };
    let err = it.integrate(input, &mut [0, 0]).unwrap_err();
    assert!(matches!(err, CounterError::LengthMismatch { .. }));
}

#[test]
fn rules_are_validated() {
    assert_eq!(
        CounterRules::new(Some(0.0), 1),
        Err(CounterError::BadRollover(0.0))
    );
    assert_eq!(CounterRules::new(None, 0), Err(CounterError::BadMaxGap(0)));
}

#[test]
fn snapshot_round_trip_resumes_identically() {
    let rows_a = [(1, 0, 1.0), (2, 5 * S, 7.0), (1, 50 * S, 2.0)];
    let rows_b = [(1, 70 * S, 2.5), (2, 65 * S, 8.0)];
    let mut straight = integrator(None);
    feed(&mut straight, &rows_a);
    let (expected, _) = feed(&mut straight, &rows_b);

    let mut first = integrator(None);
    feed(&mut first, &rows_a);
    let bytes = first.snapshot();
    assert_eq!(
        bytes,
        first.clone().snapshot(),
        "snapshots are deterministic"
    );
    let mut resumed = IntervalIntegrator::restore(
        Grid::new(0, MIN).unwrap(),
        CounterRules::new(None, 15 * MIN).unwrap(),
        &bytes,
    )
    .unwrap();
    let (got, _) = feed(&mut resumed, &rows_b);
    assert_eq!(format!("{got:?}"), format!("{expected:?}"));
}

#[test]
fn snapshot_for_another_grid_or_corrupt_is_refused() {
    let mut it = integrator(None);
    feed(&mut it, &[(1, 0, 1.0)]);
    let bytes = it.snapshot();
    let rules = CounterRules::new(None, 15 * MIN).unwrap();
    let other = Grid::new(0, 15 * MIN).unwrap();
    assert_eq!(
        IntervalIntegrator::restore(other, rules, &bytes).unwrap_err(),
        CounterError::IncompatibleSnapshot("grid")
    );
    let grid = Grid::new(0, MIN).unwrap();
    assert!(matches!(
        IntervalIntegrator::restore(grid, rules, &bytes[..bytes.len() - 1]),
        Err(CounterError::CorruptSnapshot(_))
    ));
}

proptest! {
    /// Without gaps or resets, the periods receive exactly the register increase, the CO2 is the
    /// factor times it, and every period between the first and last reading is fully covered.
    #[test]
    fn integration_conserves_the_register_increase(
        steps in prop::collection::vec((1i64..(10 * MIN), 0.0f64..50.0), 1..200),
        start in 0i64..(10 * MIN),
        split in 0usize..200,
    ) {
        let mut t = start;
        let mut v = 1_000.0;
        let mut rows = vec![(3u32, t, v)];
        for (dt, dv) in &steps {
            t += dt;
            v += dv;
            rows.push((3, t, v));
        }
        let cut = split.min(rows.len());
        let mut it = integrator(None);
        let (a, sa) = feed(&mut it, &rows[..cut]);
        let (b, sb) = feed(&mut it, &rows[cut..]);
        prop_assert!(sa.iter().chain(&sb).all(|s| !s.is_rejected()));
        let m = stored(&[a, b]);
        let total: f64 = m.values().filter(|c| !c.0.is_nan()).map(|c| c.0).sum();
        let co2: f64 = m.values().filter(|c| !c.1.is_nan()).map(|c| c.1).sum();
        prop_assert!(close(total, v - 1_000.0), "total {} vs {}", total, v - 1_000.0);
        prop_assert!(close(co2, 0.5 * (v - 1_000.0)));
        let first = start.div_euclid(MIN);
        let last = t.div_euclid(MIN);
        for slot in (first + 1)..last {
            prop_assert_eq!(m[&(3, slot)].2, 1.0);
        }
    }

    /// Batch boundaries never change the stored result.
    #[test]
    fn batching_does_not_change_the_result(
        rows in prop::collection::vec((0u32..4, 0i64..(30 * MIN), 0.0f64..1e6), 0..120),
        cut in 0usize..120,
    ) {
        let mut sorted = rows.clone();
        sorted.sort_by_key(|r| (r.0, r.1));
        let cut = cut.min(sorted.len());
        let mut one = integrator(Some(1e6));
        let (whole, _) = feed(&mut one, &sorted);
        let mut two = integrator(Some(1e6));
        let (a, _) = feed(&mut two, &sorted[..cut]);
        let (b, _) = feed(&mut two, &sorted[cut..]);
        prop_assert_eq!(format!("{:?}", stored(&[whole])), format!("{:?}", stored(&[a, b])));
        prop_assert_eq!(one.snapshot(), two.snapshot());
    }
}
