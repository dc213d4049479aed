//! The regulatory rule set of a site, chosen per site: China (HJ 75-2017 / HJ 212 Appendix D) or
//! the USA (40 CFR Part 75). Every aggregation and substitution kernel takes a [`Policy`].

use super::error::CemsError;

/// Longest lookback any rule may use, in hours: the bound on per-variable history memory.
pub const MAX_LOOKBACK_HOURS: u32 = 2_160;
/// Longest Part 75 PMA window (one year of operating hours); stored as bits.
pub const MAX_PMA_WINDOW_HOURS: u32 = 8_784;

/// HJ 75-2017 rules. Defaults are the standard's values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hj75Rules {
    /// An hourly value is valid with at least this many valid minutes (45).
    pub min_valid_minutes: u8,
    /// A daily value is valid with at least this many valid hours (20).
    pub min_valid_hours: u8,
    /// Scale both thresholds by the time the unit operated (interpretation: an hour in which the
    /// unit ran 30 minutes needs ceil(45 x 30/60) = 23 valid minutes, not an impossible 45).
    /// `false` applies the thresholds literally.
    pub prorate_partial_operation: bool,
    /// Window of the valid-data capture rate `a`, clock hours (2160, a rolling quarter).
    pub capture_window_hours: u32,
    /// Lookbacks, in valid hours: short gap with a >= 90 % (180), long gap (720), a < 90 % (2160).
    pub lookback_short: u32,
    pub lookback_long: u32,
    pub lookback_low_capture: u32,
    /// Longest gap, in invalid operating hours, that counts as short (24).
    pub short_gap_hours: u32,
}

impl Default for Hj75Rules {
    fn default() -> Self {
        Self {
            min_valid_minutes: 45,
            min_valid_hours: 20,
            prorate_partial_operation: true,
            capture_window_hours: 2_160,
            lookback_short: 180,
            lookback_long: 720,
            lookback_low_capture: 2_160,
            short_gap_hours: 24,
        }
    }
}

/// 40 CFR Part 75 rules. Defaults are the regulation's values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Part75Rules {
    /// Lookback of the percentile and maximum tiers, in quality-assured operating hours (720).
    pub lookback_hours: u32,
    /// PMA window, in operating hours (8760).
    pub pma_window_hours: u32,
    /// Before this many quality-assured hours exist, every gap uses HB/HA (720).
    pub startup_qa_hours: u32,
    /// Gap limits of the HB/HA rule in the PMA >= 95 % (24) and 90-95 % (8) tiers.
    pub short_gap_tier1_hours: u32,
    pub short_gap_tier2_hours: u32,
}

impl Default for Part75Rules {
    fn default() -> Self {
        Self {
            lookback_hours: 720,
            pma_window_hours: 8_760,
            startup_qa_hours: 720,
            short_gap_tier1_hours: 24,
            short_gap_tier2_hours: 8,
        }
    }
}

/// The rule set of a site.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    Hj75(Hj75Rules),
    Part75(Part75Rules),
}

impl Policy {
    pub fn hj75() -> Self {
        Self::Hj75(Hj75Rules::default())
    }

    pub fn part75() -> Self {
        Self::Part75(Part75Rules::default())
    }

    pub fn validate(&self) -> Result<(), CemsError> {
        match self {
            Self::Hj75(r) => {
                if r.min_valid_minutes == 0 || r.min_valid_minutes > 60 {
                    return Err(CemsError::BadConfig("min_valid_minutes must be 1..=60"));
                }
                if r.min_valid_hours == 0 || r.min_valid_hours > 24 {
                    return Err(CemsError::BadConfig("min_valid_hours must be 1..=24"));
                }
                let lb = [r.lookback_short, r.lookback_long, r.lookback_low_capture];
                if lb.iter().any(|&h| h == 0 || h > MAX_LOOKBACK_HOURS)
                    || r.capture_window_hours == 0
                    || r.capture_window_hours > MAX_PMA_WINDOW_HOURS
                {
                    return Err(CemsError::BadConfig(
                        "HJ 75 lookbacks must be 1..=2160 h and the capture window 1..=8784 h",
                    ));
                }
            }
            Self::Part75(r) => {
                if r.lookback_hours == 0 || r.lookback_hours > MAX_LOOKBACK_HOURS {
                    return Err(CemsError::BadConfig("Part 75 lookback must be 1..=2160 h"));
                }
                if r.pma_window_hours == 0 || r.pma_window_hours > MAX_PMA_WINDOW_HOURS {
                    return Err(CemsError::BadConfig(
                        "Part 75 PMA window must be 1..=8784 h",
                    ));
                }
            }
        }
        Ok(())
    }

    /// Bytes identifying the rules, for snapshot compatibility checks.
    pub(crate) fn fingerprint(&self, out: &mut Vec<u8>) {
        match self {
            Self::Hj75(r) => {
                out.push(1);
                out.extend_from_slice(&[
                    r.min_valid_minutes,
                    r.min_valid_hours,
                    u8::from(r.prorate_partial_operation),
                ]);
                for v in [
                    r.capture_window_hours,
                    r.lookback_short,
                    r.lookback_long,
                    r.lookback_low_capture,
                    r.short_gap_hours,
                ] {
                    out.extend_from_slice(&v.to_le_bytes());
                }
            }
            Self::Part75(r) => {
                out.push(2);
                for v in [
                    r.lookback_hours,
                    r.pma_window_hours,
                    r.startup_qa_hours,
                    r.short_gap_tier1_hours,
                    r.short_gap_tier2_hours,
                ] {
                    out.extend_from_slice(&v.to_le_bytes());
                }
            }
        }
    }
}
