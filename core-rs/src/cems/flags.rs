//! What each HJ 212 data flag means for emission integration.
//!
//! | flag | effect | counts as valid | operating (capture-rate denominator) |
//! |---|---|---|---|
//! | N normal | measured value | yes | yes |
//! | T over range | measured, value capped at the analyser's upper limit | yes | yes |
//! | F stopped | unit not operating: no emission, no substitution | no | **no** |
//! | C calibration | QA activity, value is a calibration gas, not flue gas | no | yes |
//! | M maintenance | QA activity | no | yes |
//! | D fault, S manual entry, B comms fault | missing data, substituted | no | yes |
//! | (no reading) | missing data, substituted | no | yes |
//!
//! S (manually set value) is not measured data under HJ 75 and is treated as missing; C and M are
//! also missing, but are told apart because Part 75 relaxes the hourly validity rule in hours
//! with QA or maintenance (`hour` module) and because calibration hours are a QA signal.

use crate::hj212::DataFlag;

/// The effect of a data flag (see the module table).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlagEffect {
    Valid,
    ValidCapped,
    NotOperating,
    Calibration,
    Maintenance,
    Invalid,
}

impl FlagEffect {
    #[inline]
    pub fn of(flag: DataFlag) -> Self {
        match flag {
            DataFlag::Normal => Self::Valid,
            DataFlag::OverRange => Self::ValidCapped,
            DataFlag::Stopped => Self::NotOperating,
            DataFlag::Calibration => Self::Calibration,
            DataFlag::Maintenance => Self::Maintenance,
            DataFlag::Fault | DataFlag::Manual | DataFlag::CommFault => Self::Invalid,
        }
    }

    #[inline]
    pub fn is_valid(self) -> bool {
        matches!(self, Self::Valid | Self::ValidCapped)
    }

    /// QA or maintenance activity (Part 75 two-reading rule).
    pub fn is_qa_activity(self) -> bool {
        matches!(self, Self::Calibration | Self::Maintenance)
    }
}

/// One value with its data flag.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Reading {
    pub value: f64,
    pub flag: DataFlag,
}

impl Reading {
    pub fn new(value: f64, flag: DataFlag) -> Self {
        Self { value, flag }
    }

    /// A normal (N) reading.
    pub fn normal(value: f64) -> Self {
        Self::new(value, DataFlag::Normal)
    }

    /// A reading sent as a value and a flag byte (see [`reading_flag`]); `None`: no reading.
    #[inline]
    pub fn from_code(value: f64, code: u8) -> Option<Self> {
        reading_flag(code).map(|f| Self::new(value, f))
    }

    /// Overwrites `row` with the readings of `values` and their flag `codes` (see
    /// [`Self::from_code`]): one row buffer is reused for every sample of a batch.
    #[inline]
    pub fn fill_from_codes(row: &mut [Option<Self>], values: &[f64], codes: &[u8]) {
        for ((r, &v), &f) in row.iter_mut().zip(values).zip(codes) {
            *r = Self::from_code(v, f);
        }
    }

    /// The value usable as measured data: `None` unless the flag is valid and the value finite;
    /// T values are capped at `upper_limit` when one is configured (the analyser cannot measure
    /// above it, so anything above is not a measurement).
    #[inline]
    pub fn valid_value(&self, upper_limit: Option<f64>) -> Option<f64> {
        if !self.value.is_finite() {
            return None;
        }
        // One match on the effect (called for every reading of every sample).
        match FlagEffect::of(self.flag) {
            FlagEffect::Valid => Some(self.value),
            FlagEffect::ValidCapped => Some(upper_limit.map_or(self.value, |l| self.value.min(l))),
            _ => None,
        }
    }
}

/// How many minutes (or hours) of a period carried each flag, and how many had no reading.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlagCounts {
    /// Indexed by [`DataFlag::index`] (order N F M S D C T B).
    pub by_flag: [u16; 8],
    pub missing: u16,
}

impl FlagCounts {
    pub fn get(&self, flag: DataFlag) -> u16 {
        self.by_flag[flag.index()]
    }

    pub(crate) fn add(&mut self, flag: Option<DataFlag>) {
        match flag {
            Some(f) => self.by_flag[f.index()] += 1,
            None => self.missing += 1,
        }
    }

    /// The flag seen most often (ties: the earlier flag in N F M S D C T B order), `None` when
    /// nothing was seen.
    pub fn dominant(&self) -> Option<DataFlag> {
        let (i, n) = self
            .by_flag
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(&a.0)))?;
        (*n > 0).then(|| DataFlag::ALL[i])
    }
}

/// Flag byte stored in state: 0 = no reading, else the flag's ASCII letter.
pub(crate) fn flag_code(flag: Option<DataFlag>) -> u8 {
    flag.map_or(0, |f| f as u8)
}

/// The inverse of [`flag_code`]; `None` for a byte that is no flag. Called for every reading
/// of every real-time sample, hence a table instead of a search of [`DataFlag::ALL`].
#[inline]
pub(crate) const fn flag_from_code(code: u8) -> Option<Option<DataFlag>> {
    FLAG_OF_CODE[code as usize]
}

/// The flag of a reading sent as a byte: 0 = no reading; a byte that is no flag is read as D
/// (fault): the analyser's state is unknown, so the value is not valid data.
#[inline]
pub fn reading_flag(code: u8) -> Option<DataFlag> {
    READING_FLAG[code as usize]
}

const READING_FLAG: [Option<DataFlag>; 256] = {
    let mut table = [None; 256];
    let mut code = 0;
    while code < table.len() {
        table[code] = match FLAG_OF_CODE[code] {
            Some(flag) => flag,
            None => Some(DataFlag::Fault),
        };
        code += 1;
    }
    table
};

const FLAG_OF_CODE: [Option<Option<DataFlag>>; 256] = {
    let mut table = [None; 256];
    table[0] = Some(None);
    let mut i = 0;
    while i < DataFlag::ALL.len() {
        let f = DataFlag::ALL[i];
        table[f as usize] = Some(Some(f));
        i += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_codes_round_trip_and_nothing_else_decodes() {
        for f in DataFlag::ALL {
            assert_eq!(flag_from_code(flag_code(Some(f))), Some(Some(f)));
        }
        assert_eq!(flag_from_code(0), Some(None));
        let letters: Vec<u8> = DataFlag::ALL.iter().map(|&f| f as u8).collect();
        for code in (1..=u8::MAX).filter(|c| !letters.contains(c)) {
            assert_eq!(flag_from_code(code), None, "{code}");
        }
    }
}
