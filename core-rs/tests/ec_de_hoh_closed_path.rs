//! Acceptance: ICOS DE-HoH (Gill HS-50 + LI-7200 closed path, mixing ratios, 30 min at 20 Hz)
//! against the network's own EddyPro run with sector-wise planar fit. Site and instrument settings
//! come from the EddyPro metadata of that run, planar-fit matrices from `planar_fit.txt`, in-situ
//! spectral parameters from `spectral_assessment.txt`, expected values from the full output.

mod ec_common;

use carbonstream_core::ec::{EcConfig, LagSetting, PeriodResult, process_period};
use ec_common::de_hoh::{columns, config};
use ec_common::*;

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
