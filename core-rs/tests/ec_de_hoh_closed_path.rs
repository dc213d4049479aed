//! Acceptance: ICOS DE-HoH (Gill HS-50 + LI-7200 closed path, mixing ratios, 30 min at 20 Hz)
//! against the network's own EddyPro run with sector-wise planar fit. Site and instrument settings
//! come from the EddyPro metadata of that run, planar-fit matrices from `planar_fit.txt`, in-situ
//! spectral parameters from `spectral_assessment.txt`, expected values from the full output.

mod ec_common;

use carbonstream_core::ec::{
    DiagRule, EcConfig, GasAnalyzer, GasPath, GasUnit, InSituLowPass, LagSetting, PeriodResult,
    PlanarFitSector, PlanarFitSectors, RandomUncertainty, RawPeriod, Rotation, Separation, Site,
    Sonic, SpectralCorrection, Tube, process_period,
};
use ec_common::*;
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

fn run(cfg: &EcConfig) -> PeriodResult {
    process_period(&columns().raw(), cfg).unwrap()
}

#[test]
fn closed_path_planar_fit_matches_the_icos_eddypro_run() {
    let cfg = config();
    assert!(matches!(cfg.lag.co2, LagSetting::Auto));
    let r = run(&cfg);
    let fo = &read_full_output("DE-HoH/eddypro_DE-HoH_full_output_example.csv")[0];
    let c = "DE-HoH";
    println!("flags {:?}", r.flags);
    let mut within_1 = Vec::new();
    let t = r.turbulence;
    within_1.push(("u*", report(c, "u*", t.ustar.unwrap(), num(fo, "u*"))));
    within_1.push((
        "(z-d)/L",
        report(c, "(z-d)/L", t.zl.unwrap(), num(fo, "(z-d)/L")),
    ));
    let rot = r.rotation.unwrap();
    within_1.push(("yaw", report(c, "yaw", rot.yaw_deg, num(fo, "yaw"))));
    assert!(rot.pitch_deg.is_none() && num(fo, "pitch") == -9999.0);
    assert!(rot.roll_deg.is_none() && num(fo, "roll") == -9999.0);
    let w = r.wind;
    within_1.push(("u_rot", report(c, "u_rot", w.u_rot, num(fo, "u_rot"))));
    within_1.push(("w_rot", report(c, "w_rot", w.w_rot, num(fo, "w_rot"))));
    let cv = r.covariances.unwrap();
    within_1.push((
        "w/ts_cov",
        report(c, "w/ts_cov", cv.w_ts, num(fo, "w/ts_cov")),
    ));
    within_1.push((
        "w/co2_cov",
        report(c, "w/co2_cov", cv.w_co2.unwrap(), num(fo, "w/co2_cov")),
    ));
    within_1.push((
        "w/h2o_cov",
        report(c, "w/h2o_cov", cv.w_h2o.unwrap(), num(fo, "w/h2o_cov")),
    ));
    for (name, ours, key) in [
        ("u_var", cv.var_u, "u_var"),
        ("v_var", cv.var_v, "v_var"),
        ("w_var", cv.var_w, "w_var"),
        ("ts_var", cv.var_ts, "ts_var"),
        ("co2_var", cv.var_co2.unwrap(), "co2_var"),
        ("h2o_var", cv.var_h2o.unwrap(), "h2o_var"),
    ] {
        within_1.push((name, report(c, name, ours, num(fo, key))));
    }

    let f = r.fluxes;
    let within_5 = vec![
        ("Tau", report(c, "Tau", f.tau.unwrap(), num(fo, "Tau"))),
        ("H", report(c, "H", f.h.unwrap(), num(fo, "H"))),
        ("LE", report(c, "LE", f.le.unwrap(), num(fo, "LE"))),
        (
            "co2_flux",
            report(c, "co2_flux", f.fc.unwrap(), num(fo, "co2_flux")),
        ),
        (
            "h2o_flux",
            report(c, "h2o_flux", f.fh2o.unwrap(), num(fo, "h2o_flux")),
        ),
        ("ET", report(c, "ET", f.et.unwrap(), num(fo, "ET"))),
    ];

    // Context (not acceptance criteria).
    let u = r.uncorrected;
    report(c, "un_H", u.h.unwrap(), num(fo, "un_H"));
    report(c, "un_LE", u.le.unwrap(), num(fo, "un_LE"));
    report(c, "un_co2_flux", u.fc.unwrap(), num(fo, "un_co2_flux"));
    report(c, "un_h2o_flux", u.fh2o.unwrap(), num(fo, "un_h2o_flux"));
    report(c, "un_Tau", u.tau.unwrap(), num(fo, "un_Tau"));
    let s = r.spectral.unwrap();
    report(c, "Tau_scf", s.tau, num(fo, "Tau_scf"));
    report(c, "H_scf", s.h, num(fo, "H_scf"));
    report(c, "co2_scf", s.co2, num(fo, "co2_scf"));
    report(c, "h2o_scf", s.h2o, num(fo, "h2o_scf"));
    report(c, "L", t.mo_length.unwrap(), num(fo, "L"));
    report(c, "wind_speed", w.ws, num(fo, "wind_speed"));
    report(c, "max_wind_speed", w.ws_max, num(fo, "max_wind_speed"));
    report(c, "wind_dir", w.wd, num(fo, "wind_dir"));
    let air = r.air.unwrap();
    report(c, "air_temperature", air.ta_k, num(fo, "air_temperature"));
    report(c, "air_pressure", air.pa, num(fo, "air_pressure"));
    report(c, "air_density", air.rho, num(fo, "air_density"));
    report(c, "RH", air.rh_percent, num(fo, "RH"));
    report(
        c,
        "co2_mixing_ratio",
        r.means.co2.unwrap().mixing_ratio,
        num(fo, "co2_mixing_ratio"),
    );
    report(
        c,
        "h2o_mixing_ratio",
        r.means.h2o.unwrap().mixing_ratio,
        num(fo, "h2o_mixing_ratio"),
    );
    let ru = r.random_uncertainty;
    report(c, "rand_err_Tau", ru.tau.unwrap(), num(fo, "rand_err_Tau"));
    report(c, "rand_err_H", ru.h.unwrap(), num(fo, "rand_err_H"));
    report(c, "rand_err_LE", ru.le.unwrap(), num(fo, "rand_err_LE"));
    report(
        c,
        "rand_err_co2_flux",
        ru.fc.unwrap(),
        num(fo, "rand_err_co2_flux"),
    );
    report(
        c,
        "rand_err_h2o_flux",
        ru.fh2o.unwrap(),
        num(fo, "rand_err_h2o_flux"),
    );
    let fp = r.footprint.unwrap();
    report(c, "x_peak", fp.peak, num(fo, "x_peak"));
    report(c, "x_70%", fp.x70, num(fo, "x_70%"));
    report(c, "x_90%", fp.x90, num(fo, "x_90%"));
    println!(
        "spikes u/v/w/ts/co2/h2o ours {:?} eddypro {:?}",
        &r.spikes.0[..6],
        [
            "u_spikes",
            "v_spikes",
            "w_spikes",
            "ts_spikes",
            "co2_spikes",
            "h2o_spikes"
        ]
        .map(|k| num(fo, k) as usize)
    );
    let qd = &read_records("DE-HoH/eddypro_DE-HoH_qc_details_example.csv", 1, 1)[0];
    let q = r.quality;
    report(
        c,
        "dev(w/u) SS",
        q.tau.unwrap().steady_state_deviation,
        num(qd, "dev(w/u)"),
    );
    report(
        c,
        "dev(w/ts) SS",
        q.h.unwrap().steady_state_deviation,
        num(qd, "dev(w/ts)"),
    );
    report(
        c,
        "dev(w/co2) SS",
        q.fc.unwrap().steady_state_deviation,
        num(qd, "dev(w/co2)"),
    );
    report(
        c,
        "dev(w/h2o) SS",
        q.h2o.unwrap().steady_state_deviation,
        num(qd, "dev(w/h2o)"),
    );

    // Time lags: equal to the reference within one sample, none defaulted.
    let fs = cfg.sampling_hz;
    for (ours, key, def) in [
        (r.lags.co2.unwrap(), "co2_time_lag", "co2_def_timelag"),
        (r.lags.h2o.unwrap(), "h2o_time_lag", "h2o_def_timelag"),
    ] {
        let theirs = num(fo, key);
        println!("{key}: ours {} s eddypro {theirs} s", ours.seconds);
        assert!(
            (ours.samples - (theirs * fs).round() as i64).abs() <= 1,
            "{key}"
        );
        assert_eq!(ours.default_used, num(fo, def) == 1.0, "{def}");
    }
    for (ours, key) in [
        (q.tau, "qc_Tau"),
        (q.h, "qc_H"),
        (q.h2o, "qc_LE"),
        (q.fc, "qc_co2_flux"),
        (q.h2o, "qc_h2o_flux"),
    ] {
        assert_eq!(ours.unwrap().flag as f64, num(fo, key), "{key}");
    }
    for (name, r) in within_1 {
        assert!(r < 0.01, "{name} differs by {:.3} % (> 1 %)", 100.0 * r);
    }
    for (name, r) in within_5 {
        assert!(r < 0.05, "{name} differs by {:.3} % (> 5 %)", 100.0 * r);
    }
}
