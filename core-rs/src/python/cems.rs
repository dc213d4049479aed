//! `_core.cems`: bindings of `crate::cems`: the stack pipeline (batches of samples or minutes as
//! numpy arrays in, minutes/hours/resolved hours/days as numpy arrays out), the accounting
//! method and its comparison, and the factors that turn a concentration unit into mass.

use std::collections::HashMap;

use numpy::{
    IntoPyArray, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2,
    PyUntypedArrayMethods,
};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use super::boundary::compute;
use super::errors::input_error;
use crate::cems::accounting::{CO2_PER_C, DEFAULT_AGREEMENT_THRESHOLD};
use crate::cems::conditions::STANDARD_PRESSURE_PA;
use crate::cems::mass::CO2_DENSITY_KG_M3;
use crate::cems::part75::K_CO2_TON_PER_SCF_PCT;
use crate::cems::pipeline::{Q_CALIBRATION, Q_FLATLINE, Q_JUMP, Q_REPEATED, RULE_PENDING};
use crate::cems::{
    CemsError, ChannelConfig, ChannelSpec, ConcentrationUnit, ConditionChannels, FlowSource,
    FuelSpec, FuelUse, Hj75Rules, Part75Rules, PipelineConfig, PipelineOutput, Policy,
    QualityLimits, Reading, Rule, SampleColumns, StackPipeline as Core, accounting_co2_t, compare,
};

fn opt(v: f64) -> Option<f64> {
    (!v.is_nan()).then_some(v)
}

fn per_var(name: &str, v: Option<Vec<f64>>, n: usize, default: f64) -> PyResult<Vec<f64>> {
    match v {
        None => Ok(vec![default; n]),
        Some(v) if v.len() == n => Ok(v),
        Some(v) => Err(input_error(format!(
            "{name} has {} values; expected {n}",
            v.len()
        ))),
    }
}

fn apply_rules(policy: &mut Policy, rules: &HashMap<String, f64>) -> PyResult<()> {
    for (key, &value) in rules {
        let as_u32 = || -> PyResult<u32> {
            if value >= 0.0 && value.fract() == 0.0 && value <= f64::from(u32::MAX) {
                Ok(value as u32)
            } else {
                Err(input_error(format!(
                    "rule {key} = {value} is not a whole number >= 0"
                )))
            }
        };
        let as_u8 = || -> PyResult<u8> {
            u8::try_from(as_u32()?)
                .map_err(|_| input_error(format!("rule {key} = {value} exceeds 255")))
        };
        match (&mut *policy, key.as_str()) {
            (Policy::Hj75(r), "min_valid_minutes") => r.min_valid_minutes = as_u8()?,
            (Policy::Hj75(r), "min_valid_hours") => r.min_valid_hours = as_u8()?,
            (Policy::Hj75(r), "prorate_partial_operation") => {
                r.prorate_partial_operation = value != 0.0
            }
            (Policy::Hj75(r), "capture_window_hours") => r.capture_window_hours = as_u32()?,
            (Policy::Hj75(r), "lookback_short") => r.lookback_short = as_u32()?,
            (Policy::Hj75(r), "lookback_long") => r.lookback_long = as_u32()?,
            (Policy::Hj75(r), "lookback_low_capture") => r.lookback_low_capture = as_u32()?,
            (Policy::Hj75(r), "short_gap_hours") => r.short_gap_hours = as_u32()?,
            (Policy::Part75(r), "lookback_hours") => r.lookback_hours = as_u32()?,
            (Policy::Part75(r), "pma_window_hours") => r.pma_window_hours = as_u32()?,
            (Policy::Part75(r), "startup_qa_hours") => r.startup_qa_hours = as_u32()?,
            (Policy::Part75(r), "short_gap_tier1_hours") => r.short_gap_tier1_hours = as_u32()?,
            (Policy::Part75(r), "short_gap_tier2_hours") => r.short_gap_tier2_hours = as_u32()?,
            _ => {
                return Err(input_error(format!(
                    "rule {key:?} is not a setting of this policy"
                )));
            }
        }
    }
    Ok(())
}

/// The configuration of one stack's pipeline (see `cems::pipeline`). Channel lists are in the
/// order of the value columns given to the pipeline; per-variable lists start with the flow.
#[pyclass(module = "carbonstream._core.cems", frozen)]
#[derive(Clone)]
pub struct StackSpec {
    config: PipelineConfig,
}

#[pymethods]
impl StackSpec {
    #[new]
    #[pyo3(signature = (
        mass_factor,
        *,
        policy = "hj75",
        rules = None,
        upper_limit = None,
        max_potential = None,
        flow_source = "dry_standard",
        flow_scale = 3600.0,
        flow_upper_limit = None,
        atmospheric_kpa = STANDARD_PRESSURE_PA / 1000.0,
        area_m2 = f64::NAN,
        k_v = 1.0,
        conditions = (-1, -1, -1, -1),
        utc_offset_minutes = 480,
        min_valid_samples = 1,
        flatline_minutes = 30,
        repeat_packets = 5,
        flatline_tolerance = None,
        max_step_abs = None,
        max_step_rel = None,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        mass_factor: Vec<f64>,
        policy: &str,
        rules: Option<HashMap<String, f64>>,
        upper_limit: Option<Vec<f64>>,
        max_potential: Option<Vec<f64>>,
        flow_source: &str,
        flow_scale: f64,
        flow_upper_limit: Option<f64>,
        atmospheric_kpa: f64,
        area_m2: f64,
        k_v: f64,
        conditions: (i64, i64, i64, i64),
        utc_offset_minutes: i32,
        min_valid_samples: u32,
        flatline_minutes: u32,
        repeat_packets: u32,
        flatline_tolerance: Option<Vec<f64>>,
        max_step_abs: Option<Vec<f64>>,
        max_step_rel: Option<Vec<f64>>,
    ) -> PyResult<Self> {
        let mut policy = match policy {
            "hj75" => Policy::Hj75(Hj75Rules::default()),
            "part75" => Policy::Part75(Part75Rules::default()),
            other => {
                return Err(input_error(format!(
                    "policy {other:?} is not 'hj75' or 'part75'"
                )));
            }
        };
        apply_rules(&mut policy, &rules.unwrap_or_default())?;
        let n = mass_factor.len();
        let upper = per_var("upper_limit", upper_limit, n, f64::NAN)?;
        let mpv = per_var("max_potential", max_potential, n, f64::NAN)?;
        let tol = per_var("flatline_tolerance", flatline_tolerance, n + 1, 0.0)?;
        let step = per_var("max_step_abs", max_step_abs, n + 1, f64::NAN)?;
        let rel = per_var("max_step_rel", max_step_rel, n + 1, 0.5)?;
        let limits = |v: usize| QualityLimits {
            flatline_tolerance: opt(tol[v]),
            max_step_abs: opt(step[v]),
            max_step_rel: rel[v],
        };
        let channels = (0..n)
            .map(|c| {
                let emits = !mass_factor[c].is_nan();
                ChannelSpec {
                    channel: ChannelConfig {
                        mass_factor: if emits { mass_factor[c] } else { 1.0 },
                        upper_limit: opt(upper[c]),
                    },
                    emits_mass: emits,
                    max_potential: mpv[c],
                    quality: limits(c + 1),
                }
            })
            .collect();
        let atmospheric_pa = atmospheric_kpa * 1_000.0;
        let source = match flow_source {
            "dry_standard" => FlowSource::DryStandard { scale: flow_scale },
            "actual" => FlowSource::Actual {
                scale: flow_scale,
                atmospheric_pa,
            },
            "velocity" => FlowSource::Velocity {
                k_v,
                area_m2,
                atmospheric_pa,
            },
            other => {
                return Err(input_error(format!(
                    "flow_source {other:?} is not 'dry_standard', 'actual' or 'velocity'"
                )));
            }
        };
        let idx = |i: i64| -> PyResult<Option<usize>> {
            match i {
                -1 => Ok(None),
                i if i >= 0 && (i as usize) < n => Ok(Some(i as usize)),
                _ => Err(input_error(format!(
                    "condition channel {i} is not -1 or a channel index below {n}"
                ))),
            }
        };
        let mut config = PipelineConfig::new(policy, source, channels);
        config.conditions = ConditionChannels {
            temperature: idx(conditions.0)?,
            pressure: idx(conditions.1)?,
            moisture: idx(conditions.2)?,
            velocity: idx(conditions.3)?,
        };
        config.flow_upper_limit = flow_upper_limit;
        config.flow_quality = limits(0);
        config.utc_offset_minutes = utc_offset_minutes;
        config.min_valid_samples = min_valid_samples;
        config.flatline_minutes = flatline_minutes;
        config.repeat_packets = repeat_packets;
        config.validate()?;
        Ok(Self { config })
    }

    /// Number of channels (value columns).
    #[getter]
    fn channels(&self) -> usize {
        self.config.channels.len()
    }
}

/// Per-row status codes of the push methods.
const S_OK: u8 = 0;
const S_LATE: u8 = 1;
const S_DUPLICATE: u8 = 2;
const S_TIME_JUMP: u8 = 3;
const S_OTHER: u8 = 4;

fn status_of(e: &CemsError) -> u8 {
    match e {
        CemsError::LateSample { .. }
        | CemsError::LateMinute { .. }
        | CemsError::LateHour { .. } => S_LATE,
        CemsError::DuplicateMinute { .. } => S_DUPLICATE,
        CemsError::TimeJump { .. } => S_TIME_JUMP,
        _ => S_OTHER,
    }
}

/// Keys are interned: the dicts are built twice per stack per batch.
fn outputs<'py>(py: Python<'py>, o: PipelineOutput) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    // Minute columns are moved into numpy, not copied.
    let mc = o.minutes;
    let m = PyDict::new(py);
    m.set_item(intern!(py, "minute"), mc.minute.into_pyarray(py))?;
    m.set_item(intern!(py, "var"), mc.var.into_pyarray(py))?;
    m.set_item(intern!(py, "value"), mc.value.into_pyarray(py))?;
    m.set_item(intern!(py, "flag"), mc.flag.into_pyarray(py))?;
    m.set_item(intern!(py, "mass"), mc.mass.into_pyarray(py))?;
    m.set_item(intern!(py, "quality"), mc.quality.into_pyarray(py))?;
    d.set_item(intern!(py, "minutes"), m)?;

    let h = PyDict::new(py);
    let hs = &o.hours;
    h.set_item(
        intern!(py, "hour"),
        hs.iter()
            .map(|x| x.hour)
            .collect::<Vec<_>>()
            .into_pyarray(py),
    )?;
    h.set_item(
        intern!(py, "var"),
        hs.iter()
            .map(|x| x.var)
            .collect::<Vec<_>>()
            .into_pyarray(py),
    )?;
    h.set_item(
        intern!(py, "value"),
        hs.iter()
            .map(|x| x.value.value)
            .collect::<Vec<_>>()
            .into_pyarray(py),
    )?;
    h.set_item(
        intern!(py, "status"),
        hs.iter()
            .map(|x| x.value.status as u8)
            .collect::<Vec<_>>()
            .into_pyarray(py),
    )?;
    h.set_item(
        intern!(py, "valid_minutes"),
        hs.iter()
            .map(|x| x.value.valid_minutes)
            .collect::<Vec<_>>()
            .into_pyarray(py),
    )?;
    h.set_item(
        intern!(py, "operating_minutes"),
        hs.iter()
            .map(|x| x.operating_minutes)
            .collect::<Vec<_>>()
            .into_pyarray(py),
    )?;
    h.set_item(
        intern!(py, "flow_total"),
        hs.iter()
            .map(|x| x.flow_total)
            .collect::<Vec<_>>()
            .into_pyarray(py),
    )?;
    h.set_item(
        intern!(py, "measured_mass"),
        hs.iter()
            .map(|x| x.measured_mass)
            .collect::<Vec<_>>()
            .into_pyarray(py),
    )?;
    h.set_item(
        intern!(py, "mass_status"),
        hs.iter()
            .map(|x| x.mass_status as u8)
            .collect::<Vec<_>>()
            .into_pyarray(py),
    )?;
    h.set_item(
        intern!(py, "quality"),
        hs.iter()
            .map(|x| x.quality)
            .collect::<Vec<_>>()
            .into_pyarray(py),
    )?;
    // Minutes per flag (N F M S D C T B) and without a reading, per hour.
    let counts: Vec<u16> = hs
        .iter()
        .flat_map(|x| {
            let f = x.value.flags;
            f.by_flag.into_iter().chain(std::iter::once(f.missing))
        })
        .collect();
    let counts: Bound<'py, PyArray2<u16>> = counts.into_pyarray(py).reshape([hs.len(), 9])?;
    h.set_item(intern!(py, "flag_minutes"), counts)?;
    d.set_item(intern!(py, "hours"), h)?;

    let r = PyDict::new(py);
    let rs = &o.resolved;
    r.set_item(
        intern!(py, "hour"),
        rs.iter()
            .map(|x| x.hour)
            .collect::<Vec<_>>()
            .into_pyarray(py),
    )?;
    r.set_item(
        intern!(py, "var"),
        rs.iter()
            .map(|x| x.var)
            .collect::<Vec<_>>()
            .into_pyarray(py),
    )?;
    r.set_item(
        intern!(py, "mass"),
        rs.iter()
            .map(|x| x.mass)
            .collect::<Vec<_>>()
            .into_pyarray(py),
    )?;
    r.set_item(
        intern!(py, "rule"),
        rs.iter()
            .map(|x| x.rule as u8)
            .collect::<Vec<_>>()
            .into_pyarray(py),
    )?;
    r.set_item(
        intern!(py, "availability"),
        rs.iter()
            .map(|x| x.availability_pct)
            .collect::<Vec<_>>()
            .into_pyarray(py),
    )?;
    r.set_item(
        intern!(py, "gap_hours"),
        rs.iter()
            .map(|x| x.gap_hours)
            .collect::<Vec<_>>()
            .into_pyarray(py),
    )?;
    d.set_item(intern!(py, "resolved"), r)?;

    let y = PyDict::new(py);
    let ds = &o.days;
    y.set_item(
        intern!(py, "day"),
        ds.iter()
            .map(|x| x.record.day)
            .collect::<Vec<_>>()
            .into_pyarray(py),
    )?;
    y.set_item(
        intern!(py, "var"),
        ds.iter()
            .map(|x| x.var)
            .collect::<Vec<_>>()
            .into_pyarray(py),
    )?;
    y.set_item(
        intern!(py, "value"),
        ds.iter()
            .map(|x| x.value())
            .collect::<Vec<_>>()
            .into_pyarray(py),
    )?;
    y.set_item(
        intern!(py, "flow_total"),
        ds.iter()
            .map(|x| x.flow_total())
            .collect::<Vec<_>>()
            .into_pyarray(py),
    )?;
    y.set_item(
        intern!(py, "mass"),
        ds.iter()
            .map(|x| x.mass())
            .collect::<Vec<_>>()
            .into_pyarray(py),
    )?;
    y.set_item(
        intern!(py, "status"),
        ds.iter()
            .map(|x| x.record.status as u8)
            .collect::<Vec<_>>()
            .into_pyarray(py),
    )?;
    y.set_item(
        intern!(py, "measured_hours"),
        ds.iter()
            .map(|x| x.record.measured_hours)
            .collect::<Vec<_>>()
            .into_pyarray(py),
    )?;
    y.set_item(
        intern!(py, "substituted_hours"),
        ds.iter()
            .map(|x| x.record.substituted_hours)
            .collect::<Vec<_>>()
            .into_pyarray(py),
    )?;
    y.set_item(
        intern!(py, "not_operating_hours"),
        ds.iter()
            .map(|x| x.record.not_operating_hours)
            .collect::<Vec<_>>()
            .into_pyarray(py),
    )?;
    y.set_item(
        intern!(py, "missing_hours"),
        ds.iter()
            .map(|x| x.record.missing_hours)
            .collect::<Vec<_>>()
            .into_pyarray(py),
    )?;
    d.set_item(intern!(py, "days"), y)?;
    Ok(d)
}

/// Per-row statuses, messages of refused rows, and what the batch produced.
type PushResult<'py> = (
    Bound<'py, numpy::PyArray1<u8>>,
    HashMap<usize, String>,
    Bound<'py, PyDict>,
);

/// The pipeline of one stack (see `cems::pipeline`), fed numpy batches. Refused rows (late,
/// duplicate minute, time jump) get a non-zero status and a message; the rest of the batch is
/// used. State is deterministic: `snapshot()` bytes resume with `restore`.
#[pyclass(module = "carbonstream._core.cems")]
pub struct StackPipeline {
    inner: Core,
}

fn check_shapes(n: usize, c: usize, shapes: &[(&str, &[usize])]) -> PyResult<()> {
    for (name, shape) in shapes {
        let ok = match shape.len() {
            1 => shape[0] == n,
            2 => shape[0] == n && shape[1] == c,
            _ => false,
        };
        if !ok {
            return Err(input_error(format!(
                "{name} has shape {shape:?}; expected {n} rows{}",
                if shape.len() == 2 {
                    format!(" x {c} channels")
                } else {
                    String::new()
                }
            )));
        }
    }
    Ok(())
}

#[pymethods]
impl StackPipeline {
    #[new]
    fn new(spec: &StackSpec) -> PyResult<Self> {
        Ok(Self {
            inner: Core::new(spec.config.clone())?,
        })
    }

    /// Resumes from `snapshot()` bytes; StateError if they were made under another spec.
    #[staticmethod]
    fn restore(spec: &StackSpec, snapshot: &[u8]) -> PyResult<Self> {
        Ok(Self {
            inner: Core::restore(spec.config.clone(), snapshot)?,
        })
    }

    /// Real-time samples: `t_ms` (Unix ms), the flow reading as sent and its flag byte, channel
    /// values and flag bytes (rows x channels; flag 0 = no reading), packet fingerprints (0 =
    /// none).
    #[allow(clippy::too_many_arguments)]
    fn push_samples<'py>(
        &mut self,
        py: Python<'py>,
        t_ms: PyReadonlyArray1<'py, i64>,
        flow: PyReadonlyArray1<'py, f64>,
        flow_flag: PyReadonlyArray1<'py, u8>,
        values: PyReadonlyArray2<'py, f64>,
        flags: PyReadonlyArray2<'py, u8>,
        fingerprint: PyReadonlyArray1<'py, u64>,
    ) -> PyResult<PushResult<'py>> {
        let (n, c) = (t_ms.len(), self.inner.config().channels.len());
        check_shapes(
            n,
            c,
            &[
                ("flow", flow.shape()),
                ("flow_flag", flow_flag.shape()),
                ("values", values.shape()),
                ("flags", flags.shape()),
                ("fingerprint", fingerprint.shape()),
            ],
        )?;
        let t = t_ms.as_slice()?;
        let samples = SampleColumns::new(
            t,
            flow.as_slice()?,
            flow_flag.as_slice()?,
            values.as_slice()?,
            flags.as_slice()?,
            fingerprint.as_slice()?,
            c,
        )
        .map_err(|e| input_error(e.to_string()))?;
        let inner = &mut self.inner;
        let (status, messages, out) = compute(py, || {
            let mut out = PipelineOutput::default();
            // Every variable of every minute the batch spans (at most one per sample): the
            // minute columns are allocated once instead of growing by copies.
            if let (Some(&first), Some(&last)) = (t.first(), t.last()) {
                let span = (last.saturating_sub(first) / 60_000).saturating_add(2);
                let minutes = usize::try_from(span).map_or(n + 1, |m| m.min(n + 1));
                out.minutes.reserve(minutes * (c + 1));
            }
            let mut status = vec![S_OK; n];
            let mut messages = HashMap::new();
            inner.push_columns(&samples, &mut out, |i, e| {
                status[i] = status_of(&e);
                messages.insert(i, e.to_string());
            });
            Ok::<_, PyErr>((status, messages, out))
        })?;
        Ok((status.into_pyarray(py), messages, outputs(py, out)?))
    }

    /// Minute values (HJ 212 minute data): `minute` = Unix minute index; otherwise as
    /// `push_samples` without fingerprints.
    fn push_minutes<'py>(
        &mut self,
        py: Python<'py>,
        minute: PyReadonlyArray1<'py, i64>,
        flow: PyReadonlyArray1<'py, f64>,
        flow_flag: PyReadonlyArray1<'py, u8>,
        values: PyReadonlyArray2<'py, f64>,
        flags: PyReadonlyArray2<'py, u8>,
    ) -> PyResult<PushResult<'py>> {
        let (n, c) = (minute.len(), self.inner.config().channels.len());
        check_shapes(
            n,
            c,
            &[
                ("flow", flow.shape()),
                ("flow_flag", flow_flag.shape()),
                ("values", values.shape()),
                ("flags", flags.shape()),
            ],
        )?;
        let (t, q, qf, v, f) = (
            minute.as_slice()?,
            flow.as_slice()?,
            flow_flag.as_slice()?,
            values.as_slice()?,
            flags.as_slice()?,
        );
        let inner = &mut self.inner;
        let (status, messages, out) = compute(py, || {
            let mut out = PipelineOutput::default();
            let mut status = vec![S_OK; n];
            let mut messages = HashMap::new();
            let mut row = vec![None; c];
            for i in 0..n {
                Reading::fill_from_codes(&mut row, &v[i * c..(i + 1) * c], &f[i * c..(i + 1) * c]);
                if let Err(e) =
                    inner.push_minute(t[i], Reading::from_code(q[i], qf[i]), &row, &mut out)
                {
                    status[i] = status_of(&e);
                    messages.insert(i, e.to_string());
                }
            }
            Ok::<_, PyErr>((status, messages, out))
        })?;
        Ok((status.into_pyarray(py), messages, outputs(py, out)?))
    }

    /// Watermark: closes the minute and hours that end at or before `t_ms`.
    fn close_until<'py>(&mut self, py: Python<'py>, t_ms: i64) -> PyResult<Bound<'py, PyDict>> {
        let inner = &mut self.inner;
        let out = compute(py, || {
            let mut out = PipelineOutput::default();
            inner.close_until(t_ms, &mut out).map(|()| out)
        })?;
        outputs(py, out)
    }

    /// Running totals per mass channel: a list of dicts (var, cumulative, year_to_date,
    /// quarter, quarter_total, quarter_substituted, measured/substituted/not_operating hours,
    /// substituted_mass, pending_hours).
    fn totals<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyDict>>> {
        self.inner
            .totals()
            .into_iter()
            .map(|t| {
                let d = PyDict::new(py);
                d.set_item("var", t.var)?;
                d.set_item("cumulative", t.cumulative)?;
                d.set_item("year_to_date", t.year_to_date)?;
                d.set_item(
                    "quarter",
                    t.quarter.map(|q| format!("{}-Q{}", q.year, q.quarter)),
                )?;
                d.set_item("quarter_total", t.quarter.map(|q| q.total))?;
                d.set_item("quarter_substituted", t.quarter.map(|q| q.substituted))?;
                d.set_item("measured_hours", t.measured_hours)?;
                d.set_item("substituted_hours", t.substituted_hours)?;
                d.set_item("not_operating_hours", t.not_operating_hours)?;
                d.set_item("substituted_mass", t.substituted_mass)?;
                d.set_item("pending_hours", t.pending_hours)?;
                Ok(d)
            })
            .collect()
    }

    #[getter]
    fn held_hours(&self) -> usize {
        self.inner.held_hours()
    }

    fn snapshot<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.snapshot())
    }
}

/// `k` of `mass rate [kg/h] = k x value x flow [m3/h]` for a concentration unit: 'mg/m3',
/// '%' (volume %, with `density_kg_m3`, default CO2), 'ppm' (with `molar_mass_g_mol`,
/// formula [20]), or 'part75_co2' (wet % with scfh: short tons, F-11).
#[pyfunction]
#[pyo3(signature = (unit, molar_mass_g_mol = None, density_kg_m3 = None))]
fn mass_factor(
    unit: &str,
    molar_mass_g_mol: Option<f64>,
    density_kg_m3: Option<f64>,
) -> PyResult<f64> {
    let u = match unit {
        "mg/m3" => ConcentrationUnit::MgPerM3,
        "%" => ConcentrationUnit::VolumePercent {
            density_kg_m3: density_kg_m3.unwrap_or(CO2_DENSITY_KG_M3),
        },
        "ppm" => ConcentrationUnit::Ppm {
            molar_mass_g_mol: molar_mass_g_mol
                .ok_or_else(|| input_error("unit 'ppm' needs molar_mass_g_mol".into()))?,
        },
        "part75_co2" => return Ok(K_CO2_TON_PER_SCF_PCT),
        other => {
            return Err(input_error(format!(
                "concentration unit {other:?} is not 'mg/m3', '%', 'ppm' or 'part75_co2'"
            )));
        }
    };
    let k = u.kg_per_h_factor();
    if !(k.is_finite() && k > 0.0) {
        return Err(input_error(format!("{unit} gives a mass factor of {k}")));
    }
    Ok(k)
}

/// t CO2 per unit of fuel: NCV (GJ/unit) x carbon content (tC/TJ) x oxidation x 44/12.
#[pyfunction]
fn fuel_co2_t_per_unit(
    ncv_gj_per_unit: f64,
    carbon_t_per_tj: f64,
    oxidation: f64,
) -> PyResult<f64> {
    let fuel = FuelSpec {
        ncv_gj_per_unit,
        carbon_t_per_tj,
        oxidation,
    };
    fuel.validate()?;
    Ok(fuel.co2_t_per_unit())
}

/// Accounting-method CO2 (t) of fuel uses: `(quantity, ncv, carbon content, oxidation)` each.
#[pyfunction(name = "accounting_co2_t")]
fn accounting_co2_t_py(uses: Vec<(f64, f64, f64, f64)>) -> PyResult<f64> {
    let uses: Vec<FuelUse> = uses
        .into_iter()
        .map(|(quantity, ncv, c, ox)| FuelUse {
            quantity,
            fuel: FuelSpec {
                ncv_gj_per_unit: ncv,
                carbon_t_per_tj: c,
                oxidation: ox,
            },
        })
        .collect();
    Ok(accounting_co2_t(&uses)?)
}

/// Monitoring vs accounting over one period: `(relative_error, flagged)`.
#[pyfunction(name = "compare")]
#[pyo3(signature = (monitored_t, accounted_t, threshold = DEFAULT_AGREEMENT_THRESHOLD))]
fn compare_py(monitored_t: f64, accounted_t: f64, threshold: f64) -> PyResult<(f64, bool)> {
    let c = compare(monitored_t, accounted_t, threshold)?;
    Ok((c.relative_error, c.flagged))
}

fn rule_names() -> Vec<(u8, &'static str)> {
    [
        (Rule::Measured, "measured"),
        (Rule::NotOperating, "not_operating"),
        (Rule::Hj75ShortGap, "hj75_short_gap"),
        (Rule::Hj75LongGap, "hj75_long_gap"),
        (Rule::Hj75LowCapture, "hj75_low_capture"),
        (Rule::Hj75BelowMinimumCapture, "hj75_below_minimum_capture"),
        (Rule::NoHistory, "no_history"),
        (Rule::Part75Startup, "part75_startup"),
        (Rule::Part75HourBeforeAfter, "part75_hour_before_after"),
        (Rule::Part75Percentile90, "part75_percentile_90"),
        (Rule::Part75Percentile95, "part75_percentile_95"),
        (Rule::Part75LookbackMax, "part75_lookback_max"),
        (Rule::Part75MaxPotential, "part75_max_potential"),
    ]
    .into_iter()
    .map(|(r, name)| (r as u8, name))
    .chain(std::iter::once((RULE_PENDING, "pending")))
    .collect()
}

pub fn register(parent: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = parent.py();
    let m = PyModule::new(py, "cems")?;
    m.add_class::<StackSpec>()?;
    m.add_class::<StackPipeline>()?;
    m.add_function(wrap_pyfunction!(mass_factor, &m)?)?;
    m.add_function(wrap_pyfunction!(fuel_co2_t_per_unit, &m)?)?;
    m.add_function(wrap_pyfunction!(accounting_co2_t_py, &m)?)?;
    m.add_function(wrap_pyfunction!(compare_py, &m)?)?;
    m.add("RULES", rule_names().into_iter().collect::<HashMap<_, _>>())?;
    m.add("RULE_PENDING", RULE_PENDING)?;
    m.add("Q_FLATLINE", Q_FLATLINE)?;
    m.add("Q_JUMP", Q_JUMP)?;
    m.add("Q_CALIBRATION", Q_CALIBRATION)?;
    m.add("Q_REPEATED", Q_REPEATED)?;
    m.add("DEFAULT_AGREEMENT_THRESHOLD", DEFAULT_AGREEMENT_THRESHOLD)?;
    m.add("CO2_PER_C", CO2_PER_C)?;
    m.add("CO2_DENSITY_KG_M3", CO2_DENSITY_KG_M3)?;
    parent.add_submodule(&m)?;
    Ok(())
}
