//! Interval consumption and emissions from cumulative meter registers.
//!
//! Meters report a cumulative register (kWh, Nm3, m3, GJ). Consumption in a grid period is the part
//! of each register increase that falls in that period, assuming a constant rate between two
//! consecutive readings (linear interpolation of the register at period boundaries, the usual
//! treatment of register reads in meter data management). Each increase is multiplied by the
//! emission factor valid at the later reading, so a factor change mid-period is honoured.
//!
//! The integrator is incremental: it keeps, per meter, the last accepted reading and the period
//! still open, so batches can arrive in any size. Every period touched by a batch is emitted with its
//! accumulated value so far; writing it to the same cell again is harmless (position-addressed).
//!
//! What is not consumption is never invented: a gap longer than `max_gap_ns`, a counter that falls
//! (reset or meter replacement) and the first reading of a meter start a new baseline, and the
//! periods they leave uncovered stay missing rather than zero.

use thiserror::Error;

use crate::batch::{FastMap, Groups, group_stable};
use crate::grid::Grid;

/// What happened to one reading. Values are stable: they cross into Python as `u8` codes.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadingStatus {
    /// Integrated: the increase since the previous reading was distributed over the periods between.
    Accepted = 0,
    /// Integrated across a register rollover (the counter wrapped at `rollover`).
    Wrapped = 1,
    /// First reading of this meter: only sets the baseline.
    Baseline = 2,
    /// More than `max_gap_ns` since the previous reading: new baseline, the gap stays missing.
    Gap = 3,
    /// The register fell without a plausible rollover (meter reset or replaced): new baseline.
    Reset = 4,
    /// Same timestamp and value as the previous reading: ignored.
    Duplicate = 5,
    /// Same timestamp as the previous reading but another value: rejected.
    Conflict = 6,
    /// Older than the meter's last accepted reading: rejected (late data is not re-integrated).
    OutOfOrder = 7,
    /// Not finite, or negative: rejected.
    Invalid = 8,
}

impl ReadingStatus {
    /// Rejected readings become dead letters; the others were used or harmlessly ignored.
    pub fn is_rejected(self) -> bool {
        matches!(
            self,
            ReadingStatus::Conflict | ReadingStatus::OutOfOrder | ReadingStatus::Invalid
        )
    }
}

#[derive(Debug, Error, PartialEq)]
pub enum CounterError {
    #[error(
        "input columns differ in length: stream {stream}, seq {seq}, time {time}, value {value}, \
         factor {factor}, status {status}"
    )]
    LengthMismatch {
        stream: usize,
        seq: usize,
        time: usize,
        value: usize,
        factor: usize,
        status: usize,
    },
    #[error("rollover must be a positive finite register size, got {0}")]
    BadRollover(f64),
    #[error("max_gap_ns must be positive, got {0}")]
    BadMaxGap(i64),
    #[error("state snapshot is corrupt: {0}")]
    CorruptSnapshot(&'static str),
    #[error("state snapshot was made for another grid or rules ({0}); it cannot be resumed here")]
    IncompatibleSnapshot(&'static str),
}

/// How a meter's register behaves.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CounterRules {
    /// Register size at which the counter wraps to zero (e.g. 100_000.0 for a 99999.9 display,
    /// 2^32 for a raw u32 register). `None`: the register never wraps; any fall is a reset.
    pub rollover: Option<f64>,
    /// Longest interval between readings that is still interpolated across.
    pub max_gap_ns: i64,
}

impl CounterRules {
    pub fn new(rollover: Option<f64>, max_gap_ns: i64) -> Result<Self, CounterError> {
        if let Some(r) = rollover
            && !(r.is_finite() && r > 0.0)
        {
            return Err(CounterError::BadRollover(r));
        }
        if max_gap_ns <= 0 {
            return Err(CounterError::BadMaxGap(max_gap_ns));
        }
        Ok(Self {
            rollover,
            max_gap_ns,
        })
    }
}

/// One batch of readings, column by column (all the same length).
#[derive(Clone, Copy, Debug)]
pub struct Rows<'a> {
    /// Registry row of the meter.
    pub stream: &'a [u32],
    /// Arrival sequence: rows with a lower value arrived earlier (see `integrate`).
    pub seq: &'a [u32],
    pub t_ns: &'a [i64],
    /// Cumulative register reading.
    pub value: &'a [f64],
    /// Emission factor valid at the reading (e.g. kg CO2 per register unit).
    pub factor: &'a [f64],
}

/// Values of one (meter, period) cell after a batch.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IntervalCells {
    pub stream: Vec<u32>,
    pub slot: Vec<i64>,
    /// Register increase attributed to the period, in the register's unit. NaN when nothing of the
    /// period is covered yet (a baseline reading alone says nothing about consumption).
    pub consumption: Vec<f64>,
    /// `consumption` times the emission factor (kg CO2 for factors in kg CO2 per unit).
    pub co2: Vec<f64>,
    /// Fraction of the period covered by integrated segments, 0..=1.
    pub coverage: Vec<f32>,
    /// Last register reading that fell inside the period, NaN when none did.
    pub reading: Vec<f64>,
    /// The period is closed: the meter has read past it, so this value is final. Otherwise it
    /// is the still-open period so far (it only grows). Alerts judge closed periods: a partial
    /// value depends on how readings happened to be batched, a final one does not.
    pub closed: Vec<bool>,
}

impl IntervalCells {
    fn push(&mut self, stream: u32, slot: i64, acc: &OpenPeriod, step_ns: i64, closed: bool) {
        let covered = acc.covered_ns > 0;
        self.closed.push(closed);
        self.stream.push(stream);
        self.slot.push(slot);
        self.consumption
            .push(if covered { acc.consumption } else { f64::NAN });
        self.co2.push(if covered { acc.co2 } else { f64::NAN });
        self.coverage
            .push((acc.covered_ns as f64 / step_ns as f64) as f32);
        self.reading.push(acc.reading);
    }

    pub fn len(&self) -> usize {
        self.stream.len()
    }

    pub fn is_empty(&self) -> bool {
        self.stream.is_empty()
    }
}

/// Accumulated values of the period a meter's last reading fell in.
#[derive(Clone, Copy, Debug, PartialEq)]
struct OpenPeriod {
    slot: i64,
    consumption: f64,
    co2: f64,
    covered_ns: i64,
    reading: f64,
}

impl OpenPeriod {
    fn empty(slot: i64) -> Self {
        Self {
            slot,
            consumption: 0.0,
            co2: 0.0,
            covered_ns: 0,
            reading: f64::NAN,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
struct MeterState {
    last_t: i64,
    last_v: f64,
    open: OpenPeriod,
}

/// Incremental counter integration for a set of meters sharing one grid and one set of rules.
#[derive(Clone, Debug)]
pub struct IntervalIntegrator {
    grid: Grid,
    rules: CounterRules,
    meters: FastMap<u32, MeterState>,
}

impl IntervalIntegrator {
    pub fn new(grid: Grid, rules: CounterRules) -> Self {
        Self {
            grid,
            rules,
            meters: FastMap::default(),
        }
    }

    pub fn grid(&self) -> Grid {
        self.grid
    }

    pub fn meter_count(&self) -> usize {
        self.meters.len()
    }

    /// Integrates a batch of readings. `seq` is each row's arrival sequence (e.g. the index of the
    /// journal record it came in): rows are processed per meter in (seq, time) order. Readings
    /// that arrived together are sorted by time, but a reading that arrived later is never sorted
    /// in front of earlier arrivals, so the result does not depend on how arrivals were grouped
    /// into calls: a replay after a crash decides exactly as the first run did.
    /// `status` receives one code per input row. `factor` is the emission factor per row.
    pub fn integrate(
        &mut self,
        rows: Rows<'_>,
        status: &mut [u8],
    ) -> Result<IntervalCells, CounterError> {
        let Rows {
            stream,
            seq,
            t_ns,
            value,
            factor,
        } = rows;
        let n = stream.len();
        if [
            seq.len(),
            t_ns.len(),
            value.len(),
            factor.len(),
            status.len(),
        ]
        .iter()
        .any(|&len| len != n)
        {
            return Err(CounterError::LengthMismatch {
                stream: n,
                seq: seq.len(),
                time: t_ns.len(),
                value: value.len(),
                factor: factor.len(),
                status: status.len(),
            });
        }
        let Groups { mut order, runs } = group_stable(stream);
        let mut cells = IntervalCells::default();
        for (meter, run) in runs {
            let rows = &mut order[run];
            // Usually already in (seq, time) order; the row index breaks ties so that equal
            // timestamps keep arrival order, which decides duplicate vs conflict.
            let key = |&i: &usize| (seq[i], t_ns[i], i);
            if !rows.is_sorted_by_key(key) {
                rows.sort_unstable_by_key(key);
            }
            let mut state = self.meters.get(&meter).copied();
            let mut open_touched = false;
            for &i in rows.iter() {
                let code = self.step(
                    meter,
                    &mut state,
                    &mut open_touched,
                    t_ns[i],
                    value[i],
                    factor[i],
                    &mut cells,
                );
                status[i] = code as u8;
            }
            if let Some(s) = state {
                if open_touched {
                    cells.push(meter, s.open.slot, &s.open, self.grid.step_ns(), false);
                }
                self.meters.insert(meter, s);
            }
        }
        Ok(cells)
    }

    /// Applies one reading to one meter's state; emits the periods it closes.
    #[allow(clippy::too_many_arguments)]
    fn step(
        &self,
        meter: u32,
        state: &mut Option<MeterState>,
        open_touched: &mut bool,
        t: i64,
        v: f64,
        factor: f64,
        cells: &mut IntervalCells,
    ) -> ReadingStatus {
        if !v.is_finite() || v < 0.0 {
            return ReadingStatus::Invalid;
        }
        let Some(s) = state.as_mut() else {
            let mut open = OpenPeriod::empty(self.grid.slot_of(t));
            open.reading = v;
            *state = Some(MeterState {
                last_t: t,
                last_v: v,
                open,
            });
            *open_touched = true;
            return ReadingStatus::Baseline;
        };
        if t == s.last_t {
            return if v == s.last_v {
                ReadingStatus::Duplicate
            } else {
                ReadingStatus::Conflict
            };
        }
        if t < s.last_t {
            return ReadingStatus::OutOfOrder;
        }
        let (status, delta) = if t - s.last_t > self.rules.max_gap_ns {
            (ReadingStatus::Gap, None)
        } else if v >= s.last_v {
            (ReadingStatus::Accepted, Some(v - s.last_v))
        } else {
            match self.rules.rollover {
                // A wrap is plausible only when the register was near its top: the increase it
                // implies must be less than half the register.
                Some(r) if s.last_v <= r && (v + r - s.last_v) < r / 2.0 => {
                    (ReadingStatus::Wrapped, Some(v + r - s.last_v))
                }
                _ => (ReadingStatus::Reset, None),
            }
        };
        if let Some(delta) = delta {
            self.distribute(meter, s, open_touched, t, delta, factor, cells);
        }
        let slot = self.grid.slot_of_near(t, s.open.slot);
        self.move_open_to(meter, s, open_touched, slot, cells);
        s.open.reading = v;
        *open_touched = true;
        s.last_t = t;
        s.last_v = v;
        status
    }

    /// Spreads `delta` uniformly in time over `[s.last_t, t)`, period by period.
    #[allow(clippy::too_many_arguments)]
    fn distribute(
        &self,
        meter: u32,
        s: &mut MeterState,
        open_touched: &mut bool,
        t: i64,
        delta: f64,
        factor: f64,
        cells: &mut IntervalCells,
    ) {
        let t0 = s.last_t;
        let span = (t - t0) as f64;
        // The last accepted reading is always in the open period.
        let mut slot = s.open.slot;
        let last_slot = self.grid.slot_of_near(t - 1, slot);
        while slot <= last_slot {
            self.move_open_to(meter, s, open_touched, slot, cells);
            let a = t0.max(self.grid.slot_start(slot));
            let b = t.min(self.grid.slot_start(slot + 1));
            let part = delta * ((b - a) as f64 / span);
            s.open.consumption += part;
            s.open.co2 += part * factor;
            s.open.covered_ns += b - a;
            *open_touched = true;
            slot += 1;
        }
    }

    /// Makes `slot` the open period, emitting the previous one if this batch changed it.
    fn move_open_to(
        &self,
        meter: u32,
        s: &mut MeterState,
        open_touched: &mut bool,
        slot: i64,
        cells: &mut IntervalCells,
    ) {
        if s.open.slot == slot {
            return;
        }
        if *open_touched {
            cells.push(meter, s.open.slot, &s.open, self.grid.step_ns(), true);
        }
        s.open = OpenPeriod::empty(slot);
        *open_touched = false;
    }

    /// Serialises the whole state (grid, rules, every meter) for a recovery snapshot.
    pub fn snapshot(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.meters.len() * RECORD_LEN);
        out.extend_from_slice(SNAPSHOT_MAGIC);
        out.extend_from_slice(&self.grid.origin_ns().to_le_bytes());
        out.extend_from_slice(&self.grid.step_ns().to_le_bytes());
        out.extend_from_slice(&self.rules.rollover.unwrap_or(0.0).to_le_bytes());
        out.extend_from_slice(&self.rules.max_gap_ns.to_le_bytes());
        out.extend_from_slice(&(self.meters.len() as u64).to_le_bytes());
        // Sorted so that equal states give equal bytes.
        let mut ids: Vec<&u32> = self.meters.keys().collect();
        ids.sort_unstable();
        for id in ids {
            let m = &self.meters[id];
            out.extend_from_slice(&id.to_le_bytes());
            out.extend_from_slice(&m.last_t.to_le_bytes());
            out.extend_from_slice(&m.last_v.to_le_bytes());
            out.extend_from_slice(&m.open.slot.to_le_bytes());
            out.extend_from_slice(&m.open.consumption.to_le_bytes());
            out.extend_from_slice(&m.open.co2.to_le_bytes());
            out.extend_from_slice(&m.open.covered_ns.to_le_bytes());
            out.extend_from_slice(&m.open.reading.to_le_bytes());
        }
        out
    }

    /// Rebuilds an integrator from `snapshot`, refusing one made for another grid or other rules:
    /// resuming open periods on a different grid would silently misplace consumption.
    pub fn restore(grid: Grid, rules: CounterRules, bytes: &[u8]) -> Result<Self, CounterError> {
        let mut r = Reader { bytes, pos: 0 };
        if r.take(SNAPSHOT_MAGIC.len())? != SNAPSHOT_MAGIC {
            return Err(CounterError::CorruptSnapshot("bad magic"));
        }
        if r.i64()? != grid.origin_ns() || r.i64()? != grid.step_ns() {
            return Err(CounterError::IncompatibleSnapshot("grid"));
        }
        let rollover = r.f64()?;
        if rollover != rules.rollover.unwrap_or(0.0) || r.i64()? != rules.max_gap_ns {
            return Err(CounterError::IncompatibleSnapshot("counter rules"));
        }
        let count = r.u64()? as usize;
        if r.remaining() != count * RECORD_LEN {
            return Err(CounterError::CorruptSnapshot(
                "length does not match meter count",
            ));
        }
        let mut meters = FastMap::with_capacity_and_hasher(count, Default::default());
        for _ in 0..count {
            let id = r.u32()?;
            let state = MeterState {
                last_t: r.i64()?,
                last_v: r.f64()?,
                open: OpenPeriod {
                    slot: r.i64()?,
                    consumption: r.f64()?,
                    co2: r.f64()?,
                    covered_ns: r.i64()?,
                    reading: r.f64()?,
                },
            };
            meters.insert(id, state);
        }
        Ok(Self {
            grid,
            rules,
            meters,
        })
    }
}

const SNAPSHOT_MAGIC: &[u8; 8] = b"CSMTRv01";
const HEADER_LEN: usize = 8 + 8 * 5;
const RECORD_LEN: usize = 4 + 8 * 7;

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CounterError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or(CounterError::CorruptSnapshot("truncated"))?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }
    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], CounterError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    fn u32(&mut self) -> Result<u32, CounterError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64, CounterError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    fn i64(&mut self) -> Result<i64, CounterError> {
        Ok(i64::from_le_bytes(self.array()?))
    }
    fn f64(&mut self) -> Result<f64, CounterError> {
        Ok(f64::from_le_bytes(self.array()?))
    }
}
