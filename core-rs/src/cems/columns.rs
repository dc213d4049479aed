//! Real-time samples of one stack as columns, the form they arrive in from the dataflow (one
//! array per field, channel values row-major). The pipeline reads them in place: building a row
//! of readings per sample cost more than aggregating it.

use super::error::CemsError;
use super::flags::Reading;

/// `n` samples of a stack with `channels` channels, lengths checked once.
#[derive(Clone, Copy, Debug)]
pub struct SampleColumns<'a> {
    t_ms: &'a [i64],
    flow: &'a [f64],
    flow_flag: &'a [u8],
    values: &'a [f64],
    flags: &'a [u8],
    fingerprint: &'a [u64],
    channels: usize,
}

impl<'a> SampleColumns<'a> {
    /// `values` and `flags` hold `channels` entries per sample; a flag byte is a flag letter (0:
    /// no reading, see [`super::flags::reading_flag`]); `fingerprint` 0 means none.
    pub fn new(
        t_ms: &'a [i64],
        flow: &'a [f64],
        flow_flag: &'a [u8],
        values: &'a [f64],
        flags: &'a [u8],
        fingerprint: &'a [u64],
        channels: usize,
    ) -> Result<Self, CemsError> {
        let n = t_ms.len();
        let check = |what: &'static str, got: usize, want: usize| {
            if got == want {
                Ok(())
            } else {
                Err(CemsError::LengthMismatch {
                    what,
                    a: got,
                    b: want,
                })
            }
        };
        check("flow vs t_ms", flow.len(), n)?;
        check("flow_flag vs t_ms", flow_flag.len(), n)?;
        check("fingerprint vs t_ms", fingerprint.len(), n)?;
        check("values vs t_ms x channels", values.len(), n * channels)?;
        check("flags vs t_ms x channels", flags.len(), n * channels)?;
        Ok(Self {
            t_ms,
            flow,
            flow_flag,
            values,
            flags,
            fingerprint,
            channels,
        })
    }

    pub fn len(&self) -> usize {
        self.t_ms.len()
    }

    pub fn is_empty(&self) -> bool {
        self.t_ms.is_empty()
    }

    pub fn channels(&self) -> usize {
        self.channels
    }

    #[inline]
    pub fn t_ms(&self, i: usize) -> i64 {
        self.t_ms[i]
    }

    /// The flow reading of sample `i`, as sent (before any conversion).
    #[inline]
    pub fn flow(&self, i: usize) -> Option<Reading> {
        Reading::from_code(self.flow[i], self.flow_flag[i])
    }

    /// The flow readings of samples `rows`.
    #[inline]
    pub fn flow_run(&self, rows: std::ops::Range<usize>) -> Strided<'a> {
        Strided {
            values: &self.flow[rows.clone()],
            flags: &self.flow_flag[rows],
            stride: 1,
        }
    }

    #[inline]
    pub fn fingerprint(&self, i: usize) -> Option<u64> {
        let fp = self.fingerprint[i];
        (fp != 0).then_some(fp)
    }

    /// Channel values and flag bytes of sample `i`.
    #[inline]
    pub fn row(&self, i: usize) -> (&'a [f64], &'a [u8]) {
        let at = i * self.channels..(i + 1) * self.channels;
        (&self.values[at.clone()], &self.flags[at])
    }

    /// Channel `c`'s readings of samples `rows`.
    #[inline]
    pub fn channel(&self, c: usize, rows: std::ops::Range<usize>) -> Strided<'a> {
        let at = rows.start * self.channels + c..rows.end * self.channels;
        Strided {
            values: &self.values[at.clone()],
            flags: &self.flags[at],
            stride: self.channels,
        }
    }

    /// The first sample at or after `start` whose time is not in `minute` (Unix minute index).
    #[inline]
    pub fn minute_run_end(&self, start: usize, minute: i64) -> usize {
        let (lo, hi) = (minute * 60_000, (minute + 1) * 60_000);
        self.t_ms[start..]
            .iter()
            .position(|&t| t < lo || t >= hi)
            .map_or(self.t_ms.len(), |k| start + k)
    }
}

/// One variable's readings of a run of samples: values and flag bytes at 0, `stride`,
/// 2 x `stride`, ... (a channel of row-major samples, or the flow column with stride 1).
#[derive(Clone, Copy, Debug)]
pub struct Strided<'a> {
    pub values: &'a [f64],
    pub flags: &'a [u8],
    pub stride: usize,
}

impl Strided<'_> {
    /// The readings in order: (value, flag byte).
    pub fn readings(&self) -> impl Iterator<Item = (f64, u8)> + '_ {
        let values = self.values.iter().step_by(self.stride).copied();
        values.zip(self.flags.iter().step_by(self.stride).copied())
    }
}
