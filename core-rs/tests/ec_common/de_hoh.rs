//! The DE-HoH (ICOS) case: settings from the EddyPro run's metadata, planar-fit matrices from
//! `planar_fit.txt`, in-situ spectral parameters from `spectral_assessment.txt`, raw columns.

use super::*;
use carbonstream_core::ec::{
    DiagRule, EcConfig, GasAnalyzer, GasPath, GasUnit, InSituLowPass, PlanarFitSector,
    PlanarFitSectors, RandomUncertainty, RawPeriod, Rotation, Separation, Site, Sonic,
    SpectralCorrection, Tube,
};
use std::collections::HashMap;

const RAW: &str = "DE-HoH/DE-HoH_EC_201907301200_v01.csv";

fn metadata() -> HashMap<String, String> {
    read_records("DE-HoH/eddypro_DE-HoH_metadata_example.csv", 0, 0).remove(0)
}

/// Sector matrices of `planar_fit.txt` ("Sector number k; angle: a - b ..." then three rows).
pub fn planar_fit() -> PlanarFitSectors {
    let text = std::fs::read_to_string(path("DE-HoH/planar_fit.txt")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut sectors = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let Some(rest) = l.trim().strip_prefix("Sector number") else {
            continue;
        };
        let angles = rest.split("angle:").nth(1).unwrap();
        let angles = angles.split("sector").next().unwrap();
        let (a, b) = angles.split_once('-').unwrap();
        let row = |k: usize| -> [f64; 3] {
            let v: Vec<f64> = lines[i + k]
                .split_whitespace()
                .map(|x| x.parse().unwrap())
                .collect();
            [v[0], v[1], v[2]]
        };
        sectors.push(PlanarFitSector {
            start_deg: a.trim().parse().unwrap(),
            end_deg: b.trim().parse().unwrap(),
            matrix: [row(1), row(2), row(3)],
            b0: f64::NAN,
        });
    }
    assert_eq!(sectors.len(), 4);
    PlanarFitSectors::new(sectors).unwrap()
}

/// The Ibrom et al. (2007) parameters of `spectral_assessment.txt`.
pub fn in_situ_low_pass() -> InSituLowPass {
    let text = std::fs::read_to_string(path("DE-HoH/spectral_assessment.txt")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let numbers = |l: &str| -> Vec<f64> {
        l.split(['=', ' '])
            .filter_map(|t| t.trim().parse::<f64>().ok())
            .collect()
    };
    let find = |prefix: &str| {
        lines
            .iter()
            .position(|l| l.trim_start().starts_with(prefix))
    };
    let co2_start = find("CO2").unwrap();
    // "July = Fn fc": the period is from July.
    let july = lines[co2_start..]
        .iter()
        .find(|l| l.trim_start().starts_with("July"))
        .unwrap();
    let co2_fc = numbers(july)[1];
    let exp_i = find("exp1").unwrap();
    let e = numbers(lines[exp_i + 1]);
    let unstable = numbers(lines[find("unstable").unwrap()]);
    let stable = numbers(lines[find("stable").unwrap()]);
    InSituLowPass {
        co2_fc_hz: co2_fc,
        h2o_fc_exp: [e[0], e[1], e[2]],
        ch4_fc_hz: None,
        unstable: (unstable[0], unstable[1]),
        stable: (stable[0], stable[1]),
    }
}

pub fn config() -> EcConfig {
    let m = metadata();
    let n = |k: &str| num(&m, k);
    assert_eq!(m["master_sonic_model"], "hs_50_1");
    assert_eq!(m["co2_irga_model"], "li7200_1");
    assert_eq!(m["co2_measure_type"], "mixing_ratio");
    EcConfig {
        site: Site {
            altitude_m: n("altitude"),
            latitude_deg: n("latitude"),
            canopy_height_m: n("canopy_height"),
            displacement_m: Some(n("displacement_height")),
            roughness_length_m: Some(n("roughness_length")),
        },
        sonic: Sonic {
            path_vertical_m: n("master_sonic_vpath_length"),
            path_horizontal_m: n("master_sonic_hpath_length"),
            response_time_s: n("master_sonic_tau"),
            ..Sonic::gill_hs50(n("master_sonic_height"), n("master_sonic_north_offset"))
        },
        gas_path: GasPath::Closed {
            analyzer: GasAnalyzer {
                path_length_m: n("co2_irga_vpath_length"),
                path_diameter_m: n("co2_irga_hpath_length"),
                response_time_s: n("co2_irga_tau"),
            },
            separation: Separation {
                northward_m: n("co2_irga_northward_separation"),
                eastward_m: n("co2_irga_eastward_separation"),
                vertical_m: n("co2_irga_vertical_separation"),
            },
            tube: Tube {
                length_m: n("co2_irga_tube_length"),
                inner_diameter_m: n("co2_irga_tube_diameter"),
                // m3 s-1 in the metadata
                flow_l_min: n("co2_irga_tube_flowrate") * 60_000.0,
                cell_volume_l: GasAnalyzer::LI7200_CELL_VOLUME_L,
            },
        },
        co2_unit: GasUnit::MixingRatio,
        h2o_unit: GasUnit::MixingRatio,
        sampling_hz: n("acquisition_frequency"),
        averaging_s: 60.0 * n("file_length"),
        sonic_diag: DiagRule::Ignore,
        gas_diag: DiagRule::LI7200,
        rotation: Rotation::PlanarFit(planar_fit()),
        spectral: SpectralCorrection::Ibrom2007(in_situ_low_pass()),
        random_uncertainty: RandomUncertainty::FinkelsteinSims2001 {
            max_correlation_s: 10.0,
        },
        ..EcConfig::default()
    }
}

pub struct Columns {
    pub cols: Vec<Vec<f32>>,
}

pub fn columns() -> Columns {
    let t = read_csv(RAW);
    let names = ["U", "V", "W", "T_SONIC", "CO2", "H2O", "SA_DIAG", "GA_DIAG"];
    Columns {
        cols: names.iter().map(|k| t.col(k).to_vec()).collect(),
    }
}

impl Columns {
    pub fn raw(&self) -> RawPeriod<'_> {
        let c = &self.cols;
        RawPeriod {
            u: &c[0],
            v: &c[1],
            w: &c[2],
            ts: &c[3],
            co2: Some(&c[4]),
            h2o: Some(&c[5]),
            diag_sonic: Some(&c[6]),
            diag_gas: Some(&c[7]),
            ..Default::default()
        }
    }
}
