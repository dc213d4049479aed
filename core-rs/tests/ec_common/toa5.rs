//! The TOA5 open-path case: settings from the `instrument.metadata` EddyPro used, raw columns
//! converted to the kernel's units.

use super::*;
use carbonstream_core::ec::{
    DiagRule, EcConfig, GasAnalyzer, GasPath, GasUnit, LagSetting, LagWindow, RawPeriod,
    Separation, Site, Sonic,
};
use std::collections::HashMap;

pub const FILES: [&str; 2] = [
    "TOA5_6843.ts_Above_2012_06_07_1245.dat",
    "TOA5_6843.ts_Above_2012_06_07_1300.dat",
];

/// EddyPro reads 0 as "not set" for displacement and roughness and then uses 0.67 h and 0.15 h.
fn set_or_default(v: f64) -> Option<f64> {
    (v > 0.0).then_some(v)
}

fn lag_window(meta: &HashMap<String, String>, col: usize) -> LagSetting {
    LagSetting::Fixed(LagWindow {
        nominal_s: ini_num(meta, &format!("col_{col}_nom_timelag")),
        min_s: ini_num(meta, &format!("col_{col}_min_timelag")),
        max_s: ini_num(meta, &format!("col_{col}_max_timelag")),
    })
}

/// The EddyPro project's settings expressed as an [`EcConfig`] (Express defaults otherwise).
pub fn config() -> EcConfig {
    let meta = read_ini("TOA5-open-path/instrument.metadata");
    assert_eq!(meta["instr_1_model"], "csat3_1");
    assert_eq!(meta["instr_2_model"], "li7500_1");
    assert_eq!(meta["col_6_unit_in"], "mg_m3");
    assert_eq!(meta["col_7_unit_in"], "g_m3");
    let mut cfg = EcConfig {
        site: Site {
            altitude_m: ini_num(&meta, "altitude"),
            latitude_deg: ini_num(&meta, "latitude"),
            canopy_height_m: ini_num(&meta, "canopy_height"),
            displacement_m: set_or_default(ini_num(&meta, "displacement_height")),
            roughness_length_m: set_or_default(ini_num(&meta, "roughness_length")),
        },
        sonic: Sonic::csat3(
            ini_num(&meta, "instr_1_height"),
            ini_num(&meta, "instr_1_north_offset"),
        ),
        gas_path: GasPath::Open {
            // EddyPro uses its built-in geometry for known models, not the file's placeholders.
            analyzer: GasAnalyzer::li7500(),
            separation: Separation {
                northward_m: ini_num(&meta, "instr_2_northward_separation"),
                eastward_m: ini_num(&meta, "instr_2_eastward_separation"),
                vertical_m: ini_num(&meta, "instr_2_vertical_separation"),
            },
        },
        co2_unit: GasUnit::MassDensityMgM3,
        h2o_unit: GasUnit::MassDensityGM3,
        sampling_hz: ini_num(&meta, "acquisition_frequency"),
        averaging_s: 60.0 * ini_num(&meta, "file_duration"),
        sonic_diag: DiagRule::CSAT3,
        ..EcConfig::default()
    };
    cfg.lag.co2 = lag_window(&meta, 6);
    cfg.lag.h2o = lag_window(&meta, 7);
    cfg
}

pub struct Columns {
    pub u: Vec<f32>,
    pub v: Vec<f32>,
    pub w: Vec<f32>,
    pub ts: Vec<f32>,
    pub co2: Vec<f32>,
    pub h2o: Vec<f32>,
    pub p: Vec<f32>,
    pub diag: Vec<f32>,
}

/// TOA5 columns in the kernel's units: Ts degC -> K, pressure kPa -> Pa.
pub fn columns(file: &str) -> Columns {
    let t = read_toa5(&format!("TOA5-open-path/{file}"));
    Columns {
        u: t.col("Ux").to_vec(),
        v: t.col("Uy").to_vec(),
        w: t.col("Uz").to_vec(),
        ts: t.col("Ts").iter().map(|x| x + 273.15).collect(),
        co2: t.col("co2").to_vec(),
        h2o: t.col("h2o").to_vec(),
        p: t.col("press").iter().map(|x| x * 1000.0).collect(),
        diag: t.col("diag_csat").to_vec(),
    }
}

impl Columns {
    pub fn raw(&self) -> RawPeriod<'_> {
        RawPeriod {
            u: &self.u,
            v: &self.v,
            w: &self.w,
            ts: &self.ts,
            co2: Some(&self.co2),
            h2o: Some(&self.h2o),
            pressure_pa: Some(&self.p),
            diag_sonic: Some(&self.diag),
            ..Default::default()
        }
    }
}
