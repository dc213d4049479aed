//! Real-time samples -> minute values for one stack.
//!
//! A minute value is the mean of the minute's valid samples (T values capped), flagged N, or T
//! when a capped sample contributed. A minute without enough valid samples carries the flag seen
//! most often among its samples (so a stopped unit yields F minutes, a calibration C minutes) and
//! the mean of those samples' values. Samples of the open minute may come in any order; a sample
//! of an earlier minute is refused (late data is not re-aggregated).

use crate::hj212::DataFlag;

use super::columns::{SampleColumns, Strided};
use super::error::CemsError;
use super::flags::{FlagCounts, Reading};
use super::snapshot::{Reader, Writer};
use super::stack::{MinuteRecord, StackConfig};

/// Sums of one variable over the open minute.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Acc {
    valid_sum: f64,
    valid_n: u32,
    capped: bool,
    /// Per flag (N F M S D C T B order): count and sum of finite values.
    count: [u32; 8],
    sum: [f64; 8],
}

impl Acc {
    #[inline]
    fn add(&mut self, r: Option<Reading>, upper: Option<f64>) {
        let Some(r) = r else { return };
        let i = r.flag.index();
        self.count[i] += 1;
        // Not finite: counted for its flag, never summed nor valid (one test for both).
        if !r.value.is_finite() {
            return;
        }
        self.sum[i] += r.value;
        if let Some(v) = r.valid_value(upper) {
            self.valid_sum += v;
            self.valid_n += 1;
            self.capped |= r.flag == DataFlag::OverRange;
        }
    }

    /// [`Self::add`] of each reading of a run (values with their flag bytes), in order. A run
    /// of finite N readings, the common case, is summed in one pass without the per-reading
    /// flag lookups: the sums take the same values in the same order, so the result is
    /// identical. Any other run is added reading by reading, from the sums as they were.
    /// Values are multiplied by `scale` first.
    #[inline]
    fn add_run(&mut self, run: Strided<'_>, scale: f64, upper: Option<f64>) {
        let normal = DataFlag::Normal;
        let i = normal.index();
        let (mut sum, mut valid_sum, mut n) = (self.sum[i], self.valid_sum, 0u32);
        let mut plain = true;
        // A plain indexed loop: every reading of every minute goes through it. Under
        // callgrind, a minute's run of 6 samples x 3 variables cost 540 instructions this
        // way and 666 with `(0..len).step_by(stride)` over the indices.
        let (values, flags) = (run.values, &run.flags[..run.values.len()]);
        let mut j = 0;
        while j < values.len() {
            let v = values[j] * scale;
            plain &= (flags[j] == normal as u8) & v.is_finite();
            sum += v;
            valid_sum += v;
            n += 1;
            j += run.stride;
        }
        if plain {
            self.sum[i] = sum;
            self.valid_sum = valid_sum;
            self.count[i] += n;
            self.valid_n += n;
        } else {
            for (v, f) in run.readings() {
                self.add(Reading::from_code(v * scale, f), upper);
            }
        }
    }

    #[inline]
    fn finish(&self, min_valid: u32) -> Option<Reading> {
        if self.valid_n >= min_valid && self.valid_n > 0 {
            let flag = if self.capped {
                DataFlag::OverRange
            } else {
                DataFlag::Normal
            };
            return Some(Reading::new(self.valid_sum / f64::from(self.valid_n), flag));
        }
        self.finish_invalid()
    }

    /// The label and value of a minute without enough valid samples (out of line: rare).
    #[cold]
    #[inline(never)]
    fn finish_invalid(&self) -> Option<Reading> {
        let mut counts = FlagCounts::default();
        for (c, n) in counts.by_flag.iter_mut().zip(self.count) {
            *c = n.min(u32::from(u16::MAX)) as u16;
        }
        // Valid flags alone were not enough: the minute is invalid, so they cannot label it.
        counts.by_flag[DataFlag::Normal.index()] = 0;
        counts.by_flag[DataFlag::OverRange.index()] = 0;
        let flag = counts
            .dominant()
            .or_else(|| (self.count.iter().sum::<u32>() > 0).then_some(DataFlag::Fault))?;
        let i = flag.index();
        let value = if self.count[i] > 0 {
            self.sum[i] / f64::from(self.count[i])
        } else {
            f64::NAN
        };
        Some(Reading::new(value, flag))
    }
}

/// Incremental samples -> minutes for one stack.
#[derive(Clone, Debug)]
pub struct MinuteAggregator {
    config: StackConfig,
    min_valid_samples: u32,
    /// Minutes before this one are closed: their samples are late.
    closed_before: Option<i64>,
    /// The open minute. Its sums (`flow`, `channels`) stay allocated and are reset when it
    /// closes: a stack closes a minute every few samples.
    open: Option<i64>,
    flow: Acc,
    channels: Vec<Acc>,
}

/// One real-time sample of a stack at `t_ms` (Unix ms): flow and one reading per channel.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StackSample<'a> {
    pub t_ms: i64,
    pub flow: Option<Reading>,
    pub channels: &'a [Option<Reading>],
}

impl MinuteAggregator {
    /// `min_valid_samples`: valid samples a minute needs (1: any valid sample makes it valid).
    pub fn new(config: StackConfig, min_valid_samples: u32) -> Result<Self, CemsError> {
        config.validate()?;
        if min_valid_samples == 0 {
            return Err(CemsError::BadConfig("min_valid_samples must be at least 1"));
        }
        Ok(Self {
            min_valid_samples,
            closed_before: None,
            open: None,
            flow: Acc::default(),
            channels: vec![Acc::default(); config.channels.len()],
            config,
        })
    }

    /// Adds a sample; returns the minute it closes, if it starts a new one.
    pub fn push(&mut self, s: &StackSample<'_>) -> Result<Option<MinuteRecord>, CemsError> {
        let mut closed = MinuteRecord::default();
        Ok(self.push_into(s, &mut closed)?.then_some(closed))
    }

    /// [`Self::push`] writing the minute it closes into `closed` (whose channel list is reused):
    /// `true` when it did.
    #[inline]
    pub fn push_into(
        &mut self,
        s: &StackSample<'_>,
        closed: &mut MinuteRecord,
    ) -> Result<bool, CemsError> {
        if s.channels.len() != self.config.channels.len() {
            return Err(CemsError::ChannelCount {
                minute: s.t_ms.div_euclid(60_000),
                expected: self.config.channels.len(),
                got: s.channels.len(),
            });
        }
        let was_closed = self.open_at(s.t_ms, closed)?;
        self.flow.add(s.flow, self.config.flow_upper_limit);
        for ((acc, r), cfg) in self
            .channels
            .iter_mut()
            .zip(s.channels)
            .zip(&self.config.channels)
        {
            acc.add(*r, cfg.upper_limit);
        }
        Ok(was_closed)
    }

    /// Makes the minute of `t_ms` the open one, closing the open minute into `closed` if it is
    /// earlier (`true` when it did). A time before the open minute, or in a closed one, is late.
    #[inline]
    pub fn open_at(&mut self, t_ms: i64, closed: &mut MinuteRecord) -> Result<bool, CemsError> {
        let minute = t_ms.div_euclid(60_000);
        if let Some(open) = self.open.or(self.closed_before)
            && minute < open
        {
            return Err(CemsError::LateSample {
                t_ms,
                open_minute: open,
            });
        }
        let was_closed = match self.open {
            Some(open) if open < minute => self.take_into(closed),
            _ => false,
        };
        self.open.get_or_insert(minute);
        Ok(was_closed)
    }

    /// The open minute (Unix minute index), if any.
    #[inline]
    pub fn open_minute(&self) -> Option<i64> {
        self.open
    }

    /// What [`Self::push`] of each sample in `rows` would do, for samples the caller knows all
    /// belong to the open minute (so none closes a minute or is late), with the flow reading
    /// multiplied by `flow_scale` (a flow that is already dry standard).
    pub fn add_open_run(
        &mut self,
        samples: &SampleColumns<'_>,
        rows: std::ops::Range<usize>,
        flow_scale: f64,
    ) {
        debug_assert!(samples.channels() == self.channels.len());
        let flow = samples.flow_run(rows.clone());
        self.flow
            .add_run(flow, flow_scale, self.config.flow_upper_limit);
        for (c, (acc, cfg)) in self
            .channels
            .iter_mut()
            .zip(&self.config.channels)
            .enumerate()
        {
            acc.add_run(samples.channel(c, rows.clone()), 1.0, cfg.upper_limit);
        }
    }

    /// Closes the open minute if it ends at or before `t_ms` (watermark).
    pub fn close_until(&mut self, t_ms: i64) -> Option<MinuteRecord> {
        let mut closed = MinuteRecord::default();
        self.close_until_into(t_ms, &mut closed).then_some(closed)
    }

    /// [`Self::close_until`] writing into `closed`: `true` when a minute closed.
    pub fn close_until_into(&mut self, t_ms: i64, closed: &mut MinuteRecord) -> bool {
        match self.open {
            Some(open) if (open + 1) * 60_000 <= t_ms => self.take_into(closed),
            _ => false,
        }
    }

    fn take_into(&mut self, out: &mut MinuteRecord) -> bool {
        let Some(minute) = self.open.take() else {
            return false;
        };
        self.closed_before = Some(minute + 1);
        let min_valid = self.min_valid_samples;
        out.minute = minute;
        out.flow = self.flow.finish(min_valid);
        out.channels.resize(self.channels.len(), None);
        for (r, a) in out.channels.iter_mut().zip(&self.channels) {
            *r = a.finish(min_valid);
        }
        self.flow = Acc::default();
        self.channels.fill(Acc::default());
        true
    }

    pub fn snapshot(&self) -> Vec<u8> {
        let mut w = Writer::new(MINUTE_MAGIC);
        w.bytes(&self.config.fingerprint());
        w.u32(self.min_valid_samples);
        w.u8(u8::from(self.closed_before.is_some()));
        w.i64(self.closed_before.unwrap_or(0));
        match self.open {
            None => w.u8(0),
            Some(minute) => {
                w.u8(1);
                w.i64(minute);
                for a in std::iter::once(&self.flow).chain(&self.channels) {
                    w.f64(a.valid_sum);
                    w.u32(a.valid_n);
                    w.u8(u8::from(a.capped));
                    for i in 0..8 {
                        w.u32(a.count[i]);
                        w.f64(a.sum[i]);
                    }
                }
            }
        }
        w.finish()
    }

    pub fn restore(
        config: StackConfig,
        min_valid_samples: u32,
        bytes: &[u8],
    ) -> Result<Self, CemsError> {
        let mut me = Self::new(config, min_valid_samples)?;
        let mut r = Reader::new(bytes, MINUTE_MAGIC)?;
        r.fingerprint(&me.config.fingerprint(), "stack configuration")?;
        if r.u32()? != min_valid_samples {
            return Err(CemsError::IncompatibleSnapshot("min_valid_samples"));
        }
        let has_closed = r.u8()? != 0;
        let closed = r.i64()?;
        me.closed_before = has_closed.then_some(closed);
        me.open = match r.u8()? {
            0 => None,
            1 => {
                let minute = r.i64()?;
                let mut read = || -> Result<Acc, CemsError> {
                    let mut a = Acc {
                        valid_sum: r.f64()?,
                        valid_n: r.u32()?,
                        capped: r.u8()? != 0,
                        ..Acc::default()
                    };
                    for i in 0..8 {
                        a.count[i] = r.u32()?;
                        a.sum[i] = r.f64()?;
                    }
                    Ok(a)
                };
                me.flow = read()?;
                for a in &mut me.channels {
                    *a = read()?;
                }
                Some(minute)
            }
            _ => return Err(CemsError::CorruptSnapshot("open-minute tag")),
        };
        r.end()?;
        Ok(me)
    }
}

const MINUTE_MAGIC: &[u8; 8] = b"CSMINv01";
