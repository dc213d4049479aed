//! Bad input never panics: malformed requests are errors naming what is wrong, poor data is a
//! flagged period whose affected fluxes are absent.

mod ec_common;

use carbonstream_core::ec::{
    EcConfig, EcError, GasPath, GasUnit, PeriodFlag, PlanarFitSector, PlanarFitSectors, RawPeriod,
    Rotation, Tube, Var, process_period,
};
use ec_common::synth;
use proptest::prelude::*;

const N: usize = 6000;

fn cfg() -> EcConfig {
    synth::config(N)
}

fn has_flag(flags: &[PeriodFlag], f: impl Fn(&PeriodFlag) -> bool) -> bool {
    flags.iter().any(f)
}

#[test]
fn empty_columns_are_an_error() {
    let raw = RawPeriod::default();
    assert_eq!(process_period(&raw, &cfg()), Err(EcError::Empty("u")));
}

#[test]
fn misaligned_columns_name_the_column() {
    let d = synth::period(N, 1, 0);
    let short = &d.w[..N - 1];
    let raw = RawPeriod {
        w: short,
        ..d.raw()
    };
    assert_eq!(
        process_period(&raw, &cfg()),
        Err(EcError::LengthMismatch {
            column: "w",
            len: N - 1,
            expected: N
        })
    );
    let co2 = &d.co2[..10];
    let raw = RawPeriod {
        co2: Some(co2),
        ..d.raw()
    };
    assert!(matches!(
        process_period(&raw, &cfg()),
        Err(EcError::LengthMismatch { column: "co2", .. })
    ));
}

#[test]
fn more_samples_than_the_period_holds_is_an_error() {
    let d = synth::period(N, 2, 0);
    let cfg = EcConfig {
        averaging_s: 60.0,
        ..cfg()
    };
    assert!(matches!(
        process_period(&d.raw(), &cfg),
        Err(EcError::TooManySamples {
            len: N,
            expected: 1200,
            ..
        })
    ));
}

#[test]
fn impossible_configuration_names_the_field() {
    let d = synth::period(N, 3, 0);
    for (cfg, field) in [
        (
            EcConfig {
                sampling_hz: -20.0,
                ..cfg()
            },
            "sampling_hz",
        ),
        (
            EcConfig {
                max_missing_fraction: 1.5,
                ..cfg()
            },
            "max_missing_fraction",
        ),
        (
            {
                let mut c = cfg();
                c.sonic.height_m = 0.01; // below the displacement height
                c.site.canopy_height_m = 1.0;
                c
            },
            "sonic.height_m",
        ),
    ] {
        match process_period(&d.raw(), &cfg) {
            Err(EcError::Config { field: f, .. }) => assert_eq!(f, field),
            other => panic!("expected a config error on {field}, got {other:?}"),
        }
    }
}

#[test]
fn closed_path_densities_are_refused() {
    let d = synth::period(N, 4, 0);
    let mut c = cfg();
    c.gas_path = GasPath::Closed {
        analyzer: carbonstream_core::ec::GasAnalyzer::li7200(),
        separation: Default::default(),
        tube: Tube {
            length_m: 1.0,
            inner_diameter_m: 0.0053,
            flow_l_min: 15.0,
            cell_volume_l: 0.016,
        },
    };
    c.co2_unit = GasUnit::MolarDensityMmolM3;
    assert!(matches!(
        process_period(&d.raw(), &c),
        Err(EcError::Config {
            field: "co2_unit",
            ..
        })
    ));
}

#[test]
fn all_nan_wind_gives_a_flagged_period_without_fluxes() {
    let d = synth::period(N, 5, 0);
    let nan = vec![f32::NAN; N];
    let raw = RawPeriod { w: &nan, ..d.raw() };
    let r = process_period(&raw, &cfg()).unwrap();
    assert!(r.is_unprocessed());
    assert!(has_flag(&r.flags, |f| matches!(
        f,
        PeriodFlag::TooManyMissing { var: Var::W, fraction } if *fraction == 1.0
    )));
    assert_eq!(r.missing.get(Var::W), N);
}

#[test]
fn more_than_ten_percent_missing_gas_drops_only_that_flux() {
    let mut d = synth::period(N, 6, 0);
    for x in d.co2.iter_mut().step_by(9) {
        *x = f32::NAN; // 11.1 %
    }
    let r = process_period(&d.raw(), &cfg()).unwrap();
    assert!(r.fluxes.fc.is_none() && r.quality.fc.is_none());
    assert!(r.fluxes.h.is_some() && r.fluxes.le.is_some() && r.fluxes.tau.is_some());
    assert!(has_flag(&r.flags, |f| matches!(
        f,
        PeriodFlag::TooManyMissing { var: Var::Co2, .. }
    )));
}

#[test]
fn up_to_ten_percent_missing_is_bridged_and_counted() {
    let mut d = synth::period(N, 7, 0);
    for x in d.ts.iter_mut().step_by(11) {
        *x = f32::NAN; // 9.1 %
    }
    d.u[17] = f32::INFINITY;
    let r = process_period(&d.raw(), &cfg()).unwrap();
    assert!(r.fluxes.h.is_some());
    assert_eq!(r.missing.get(Var::Ts), N.div_ceil(11));
    assert_eq!(r.missing.get(Var::U), 1);
    assert!((r.missing_fraction - N.div_ceil(11) as f64 / N as f64).abs() < 1e-12);
}

#[test]
fn a_short_period_counts_its_deficit_as_missing() {
    let d = synth::period(N, 8, 0);
    let cfg = EcConfig {
        averaging_s: (N as f64 / 20.0) * 1.2,
        ..cfg()
    };
    let r = process_period(&d.raw(), &cfg).unwrap();
    assert!(r.is_unprocessed());
    assert!(has_flag(&r.flags, |f| matches!(
        f,
        PeriodFlag::ShortPeriod { .. }
    )));
}

#[test]
fn frozen_sensors_are_flagged_not_used() {
    let d = synth::period(N, 9, 0);
    let flat = vec![300.0f32; N];
    let raw = RawPeriod {
        ts: &flat,
        ..d.raw()
    };
    let r = process_period(&raw, &cfg()).unwrap();
    assert!(r.is_unprocessed());
    assert!(has_flag(&r.flags, |f| *f
        == PeriodFlag::ConstantSignal { var: Var::Ts }));

    let flat_co2 = vec![16.0f32; N];
    let raw = RawPeriod {
        co2: Some(&flat_co2),
        ..d.raw()
    };
    let r = process_period(&raw, &cfg()).unwrap();
    assert!(r.fluxes.fc.is_none() && r.fluxes.h.is_some());
    assert!(has_flag(&r.flags, |f| *f
        == PeriodFlag::ConstantSignal { var: Var::Co2 }));
}

#[test]
fn bad_diagnostics_and_limits_count_as_missing() {
    let d = synth::period(N, 10, 0);
    // CSAT3 warning bits on 20 % of the samples.
    let diag: Vec<f32> = (0..N)
        .map(|i| if i % 5 == 0 { 61440.0 } else { 0.0 })
        .collect();
    let raw = RawPeriod {
        diag_sonic: Some(&diag),
        ..d.raw()
    };
    let r = process_period(&raw, &cfg()).unwrap();
    assert!(r.is_unprocessed());
    // Sonic temperature of 80 degC is outside the absolute limits.
    let mut hot = d.ts.clone();
    for x in hot.iter_mut().take(N / 5) {
        *x = 353.15;
    }
    let raw = RawPeriod {
        ts: &hot,
        ..d.raw()
    };
    let r = process_period(&raw, &cfg()).unwrap();
    assert!(r.is_unprocessed());
    assert_eq!(r.missing.get(Var::Ts), N / 5);
}

#[test]
fn missing_pressure_falls_back_to_the_standard_atmosphere() {
    let d = synth::period(N, 11, 0);
    let p = vec![f32::NAN; N];
    let raw = RawPeriod {
        pressure_pa: Some(&p),
        ..d.raw()
    };
    let r = process_period(&raw, &cfg()).unwrap();
    assert!(r.fluxes.fc.is_some());
    assert!(has_flag(&r.flags, |f| matches!(
        f,
        PeriodFlag::PressureFromAltitude { .. }
    )));
}

#[test]
fn wind_outside_every_planar_fit_sector_is_flagged() {
    let d = synth::period(N, 12, 0);
    let sector = PlanarFitSector::from_plane(0.0, 10.0, 0.0, 0.01, 0.0);
    let mut c = cfg();
    c.rotation = Rotation::PlanarFit(PlanarFitSectors::new(vec![sector]).unwrap());
    let r = process_period(&d.raw(), &c).unwrap();
    assert!(r.is_unprocessed());
    assert!(has_flag(&r.flags, |f| matches!(
        f,
        PeriodFlag::NoPlanarFitSector { .. }
    )));
}

#[test]
fn no_water_vapour_is_flagged_and_dry_air_assumed() {
    let d = synth::period(N, 13, 0);
    let raw = RawPeriod {
        h2o: None,
        ..d.raw()
    };
    let r = process_period(&raw, &cfg()).unwrap();
    assert!(r.fluxes.le.is_none() && r.fluxes.fc.is_some() && r.fluxes.h.is_some());
    assert!(has_flag(&r.flags, |f| *f == PeriodFlag::NoWaterVapour));
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::with_cases(32) })]

    /// Arbitrary garbage (NaN, infinities, huge values, any length) never panics.
    #[test]
    fn garbage_never_panics(
        values in prop::collection::vec(
            prop_oneof![
                Just(f32::NAN),
                Just(f32::INFINITY),
                Just(f32::NEG_INFINITY),
                Just(0.0f32),
                -1e30f32..1e30,
                -5.0f32..5.0,
                250.0f32..320.0,
            ],
            1..400,
        ),
        shift in 0usize..7,
    ) {
        let n = values.len();
        let col = |k: usize| -> Vec<f32> { (0..n).map(|i| values[(i + k * shift) % n]).collect() };
        let (u, v, w, ts, c, q) = (col(0), col(1), col(2), col(3), col(4), col(5));
        let raw = RawPeriod {
            u: &u, v: &v, w: &w, ts: &ts, co2: Some(&c), h2o: Some(&q),
            ..Default::default()
        };
        let cfg = EcConfig { averaging_s: 20.0, ..EcConfig::default() };
        let r = process_period(&raw, &cfg);
        prop_assert!(r.is_ok());
        let r = r.unwrap();
        // A flux that is present is a number: absence is None, never NaN.
        let f = r.fluxes;
        for x in [f.h, f.le, f.et, f.fc, f.fh2o, f.tau, r.turbulence.ustar].into_iter().flatten() {
            prop_assert!(x.is_finite(), "non-finite flux {x} with flags {:?}", r.flags);
        }
    }
}
