//! Acceptance: CSAT3 + LI-7500 open path (Campbell TOA5, 15 min at 20 Hz) against EddyPro 7.0.9
//! Express. Settings come from the `instrument.metadata` EddyPro used, expected values from its
//! FLUXNET and full outputs. Run with `--nocapture` to see the comparison table.

mod ec_common;

use carbonstream_core::ec::{PeriodResult, process_period};
use ec_common::toa5::{FILES, columns, config};
use ec_common::*;
use std::collections::HashMap;

fn record<'a>(
    rows: &'a [HashMap<String, String>],
    key: &str,
    file: &str,
) -> &'a HashMap<String, String> {
    rows.iter()
        .find(|r| r[key] == file)
        .unwrap_or_else(|| panic!("{file} not in reference"))
}

fn run(file: &str) -> PeriodResult {
    process_period(&columns(file).raw(), &config()).unwrap()
}

#[test]
fn open_path_fluxes_match_eddypro_express() {
    let fluxnet = read_records("TOA5-open-path/eddypro_fluxnet.csv", 0, 0);
    let full = read_full_output("TOA5-open-path/eddypro_full_output.csv");
    let fs = config().sampling_hz;
    for file in FILES {
        let r = run(file);
        let fx = record(&fluxnet, "FILENAME_HF", file);
        let fo = record(&full, "filename", file);
        let case = &file[19..32];
        println!("{case}: flags {:?}", r.flags);
        let f = r.fluxes;
        let fc = report(case, "FC", f.fc.unwrap(), num(fx, "FC"));
        let le = report(case, "LE", f.le.unwrap(), num(fx, "LE"));
        let h = report(case, "H", f.h.unwrap(), num(fx, "H"));
        let ustar = report(case, "USTAR", r.turbulence.ustar.unwrap(), num(fx, "USTAR"));
        // Context for the report (not acceptance criteria).
        report(case, "TAU", f.tau.unwrap(), num(fx, "TAU"));
        report(case, "ET", f.et.unwrap(), num(fx, "ET"));
        report(case, "FH2O", f.fh2o.unwrap(), num(fx, "FH2O"));
        report(
            case,
            "MO_LENGTH",
            r.turbulence.mo_length.unwrap(),
            num(fx, "MO_LENGTH"),
        );
        report(case, "ZL", r.turbulence.zl.unwrap(), num(fx, "ZL"));
        report(case, "WS", r.wind.ws, num(fx, "WS"));
        report(case, "WS_MAX", r.wind.ws_max, num(fx, "WS_MAX"));
        report(case, "WD", r.wind.wd, num(fx, "WD"));
        report(case, "WD_SIGMA", r.wind.wd_sigma, num(fx, "WD_SIGMA"));
        let rot = r.rotation.unwrap();
        report(case, "ROT_YAW", rot.yaw_deg, num(fx, "ROT_YAW"));
        report(
            case,
            "ROT_PITCH",
            rot.pitch_deg.unwrap(),
            num(fx, "ROT_PITCH"),
        );
        let cv = r.covariances.unwrap();
        report(case, "W_T_SONIC_COV", cv.w_ts, num(fx, "W_T_SONIC_COV"));
        report(
            case,
            "W_CO2_COV",
            cv.w_co2.unwrap(),
            num(fx, "W_CO2_MEAS_COV"),
        );
        report(
            case,
            "W_H2O_COV",
            cv.w_h2o.unwrap(),
            num(fx, "W_H2O_MEAS_COV"),
        );
        report(case, "W_U_COV", cv.w_u, num(fx, "W_U_COV"));
        let u = r.uncorrected;
        report(case, "H_UNCORR", u.h.unwrap(), num(fx, "H_UNCORR"));
        report(case, "LE_UNCORR", u.le.unwrap(), num(fx, "LE_UNCORR"));
        report(case, "FC_UNCORR", u.fc.unwrap(), num(fx, "FC_UNCORR"));
        report(
            case,
            "USTAR_UNCORR",
            r.turbulence.ustar_uncorrected.unwrap(),
            num(fx, "USTAR_UNCORR"),
        );
        let s = r.spectral.unwrap();
        report(case, "TAU_SCF", s.tau, num(fx, "TAU_SCF"));
        report(case, "H_SCF", s.h, num(fx, "H_SCF"));
        report(case, "FC_SCF", s.co2, num(fx, "FC_SCF"));
        report(case, "LE_SCF", s.h2o, num(fx, "LE_SCF"));
        let air = r.air.unwrap();
        report(case, "TA_EP", air.ta_k - 273.15, num(fx, "TA_EP"));
        report(case, "AIR_DENSITY", air.rho, num(fx, "AIR_DENSITY"));
        report(case, "AIR_CP", air.cp, num(fx, "AIR_CP"));
        report(case, "RH_EP", air.rh_percent, num(fx, "RH_EP"));
        report(
            case,
            "CO2",
            r.means.co2.unwrap().mole_fraction,
            num(fx, "CO2"),
        );
        report(
            case,
            "H2O",
            r.means.h2o.unwrap().mole_fraction,
            num(fx, "H2O"),
        );
        let fp = r.footprint.unwrap();
        report(case, "FETCH_MAX", fp.peak, num(fx, "FETCH_MAX"));
        report(case, "FETCH_70", fp.x70, num(fx, "FETCH_70"));
        report(case, "FETCH_90", fp.x90, num(fx, "FETCH_90"));
        let q = r.quality;
        report(
            case,
            "TAU_SS dev",
            q.tau.unwrap().steady_state_deviation,
            num(fx, "TAU_SS"),
        );
        report(
            case,
            "H_SS dev",
            q.h.unwrap().steady_state_deviation,
            num(fx, "H_SS"),
        );
        report(
            case,
            "FC_SS dev",
            q.fc.unwrap().steady_state_deviation,
            num(fx, "FC_SS"),
        );
        report(
            case,
            "FH2O_SS dev",
            q.h2o.unwrap().steady_state_deviation,
            num(fx, "FH2O_SS"),
        );
        report(case, "U_ITC dev", q.itc_u.unwrap(), num(fx, "U_ITC"));
        report(case, "W_ITC dev", q.itc_w.unwrap(), num(fx, "W_ITC"));
        report(
            case,
            "T_SONIC_ITC dev",
            q.itc_ts.unwrap(),
            num(fx, "T_SONIC_ITC"),
        );
        println!(
            "{case} spikes u/v/w/ts/co2/h2o ours {:?} eddypro {:?}",
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

        assert!(
            fc < 0.01 && le < 0.01 && h < 0.01,
            "{case}: FC/LE/H beyond 1 %"
        );
        assert!(ustar < 0.005, "{case}: USTAR beyond 0.5 %");

        // Time lags within one sample, and not the default.
        for (ours, key, default_key) in [
            (r.lags.co2.unwrap(), "co2_time_lag", "co2_def_timelag"),
            (r.lags.h2o.unwrap(), "h2o_time_lag", "h2o_def_timelag"),
        ] {
            let theirs = (num(fo, key) * fs).round() as i64;
            println!(
                "{case} {key}: ours {} eddypro {theirs} samples",
                ours.samples
            );
            assert!((ours.samples - theirs).abs() <= 1, "{case} {key}");
            assert_eq!(ours.default_used, num(fo, default_key) == 1.0);
        }

        // Mauder & Foken 2004 flags.
        for (ours, key) in [
            (q.tau, "TAU_SSITC_TEST"),
            (q.h, "H_SSITC_TEST"),
            (q.h2o, "LE_SSITC_TEST"),
            (q.fc, "FC_SSITC_TEST"),
            (q.h2o, "FH2O_SSITC_TEST"),
        ] {
            assert_eq!(ours.unwrap().flag as f64, num(fx, key), "{case} {key}");
        }
    }
}
