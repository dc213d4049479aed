//! What a stack measures: one flow and N concentration channels, and how they make mass.

use super::error::CemsError;
use super::flags::Reading;
use super::mass::ConcentrationUnit;
use super::part75::K_CO2_TON_PER_SCF_PCT;
use super::policy::Policy;

/// One concentration channel (a pollutant or CO2).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ChannelConfig {
    /// `k` in `mass rate = k * concentration * flow rate`: 1e-6 for mg/m3 x m3/h -> kg/h,
    /// 0.019635 for CO2 % x m3/h -> kg/h, 5.7e-7 for CO2 % x scfh -> short ton/h (F-11).
    pub mass_factor: f64,
    /// The analyser's upper measuring limit: T-flagged values are capped to it.
    pub upper_limit: Option<f64>,
}

impl ChannelConfig {
    /// mg/m3 with flow in m3/h: kg/h (\[33\]).
    pub fn mg_per_m3() -> Self {
        Self::from_unit(ConcentrationUnit::MgPerM3)
    }

    /// Concentration in `unit`, flow in m3/h, mass in kg.
    pub fn from_unit(unit: ConcentrationUnit) -> Self {
        Self {
            mass_factor: unit.kg_per_h_factor(),
            upper_limit: None,
        }
    }

    /// Part 75 CO2: wet % with wet flow in scfh, short tons (F-11).
    pub fn part75_co2_wet() -> Self {
        Self {
            mass_factor: K_CO2_TON_PER_SCF_PCT,
            upper_limit: None,
        }
    }

    pub fn with_upper_limit(self, limit: f64) -> Self {
        Self {
            upper_limit: Some(limit),
            ..self
        }
    }
}

/// A stack: its rules, its flow and its channels.
#[derive(Clone, Debug, PartialEq)]
pub struct StackConfig {
    pub policy: Policy,
    /// Upper measuring limit of the flow monitor (caps T values).
    pub flow_upper_limit: Option<f64>,
    pub channels: Vec<ChannelConfig>,
    /// Longest silence, in hours, filled with missing hours. A bigger jump is refused
    /// ([`CemsError::TimeJump`]): it is more likely a clock error than a year of missing data.
    pub max_fill_hours: u32,
}

impl StackConfig {
    pub fn new(policy: Policy, channels: Vec<ChannelConfig>) -> Self {
        Self {
            policy,
            flow_upper_limit: None,
            channels,
            max_fill_hours: 8_784,
        }
    }

    pub fn validate(&self) -> Result<(), CemsError> {
        self.policy.validate()?;
        if self.channels.len() > 64 {
            return Err(CemsError::BadConfig("at most 64 channels per stack"));
        }
        if self
            .channels
            .iter()
            .any(|c| !(c.mass_factor.is_finite() && c.mass_factor > 0.0))
        {
            return Err(CemsError::BadConfig(
                "mass_factor must be positive and finite",
            ));
        }
        Ok(())
    }

    /// Bytes identifying the configuration, for snapshot compatibility checks.
    pub(crate) fn fingerprint(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.policy.fingerprint(&mut out);
        let lim = |l: Option<f64>| l.unwrap_or(f64::NAN).to_le_bytes();
        out.extend_from_slice(&lim(self.flow_upper_limit));
        out.extend_from_slice(&self.max_fill_hours.to_le_bytes());
        out.extend_from_slice(&(self.channels.len() as u32).to_le_bytes());
        for c in &self.channels {
            out.extend_from_slice(&c.mass_factor.to_le_bytes());
            out.extend_from_slice(&lim(c.upper_limit));
        }
        out
    }
}

/// One minute of a stack: minute index (Unix minutes, `t_ms.div_euclid(60_000)`), the flow rate
/// (per hour: m3/h or scfh) and one reading per configured channel; `None` = no reading.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StackMinute<'a> {
    pub minute: i64,
    pub flow: Option<Reading>,
    pub channels: &'a [Option<Reading>],
}

/// An owned [`StackMinute`] (what the minute aggregator emits).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MinuteRecord {
    pub minute: i64,
    pub flow: Option<Reading>,
    pub channels: Vec<Option<Reading>>,
}

impl MinuteRecord {
    pub fn as_stack_minute(&self) -> StackMinute<'_> {
        StackMinute {
            minute: self.minute,
            flow: self.flow,
            channels: &self.channels,
        }
    }
}
