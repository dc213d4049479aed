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

    #[inline]
    pub fn flow_column(&self) -> (&'a [f64], &'a [u8]) {
        (self.flow, self.flow_flag)
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

    /// Channel `c`'s values and flag bytes over samples `rows` (strided views).
    pub fn channel(
        &self,
        c: usize,
        rows: std::ops::Range<usize>,
    ) -> (
        impl Iterator<Item = f64> + Clone + 'a,
        impl Iterator<Item = u8> + Clone + 'a,
    ) {
        let at = rows.start * self.channels + c..rows.end * self.channels;
        let values = self.values[at.clone()]
            .iter()
            .step_by(self.channels)
            .copied();
        let flags = self.flags[at].iter().step_by(self.channels).copied();
        (values, flags)
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
