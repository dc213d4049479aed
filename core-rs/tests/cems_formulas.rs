//! Every formula with a hand-computed value, the worked examples of reference/cems/README.md,
//! the accounting defaults from their components, and the HJ 212 hourly packet's consistency.

use carbonstream_core::cems::accounting::{
    self, CO2_PER_C, DEFAULT_AGREEMENT_THRESHOLD, FuelSpec, FuelUse,
};
use carbonstream_core::cems::conditions::{self, molar_mass};
use carbonstream_core::cems::mass::{self, CO2_DENSITY_KG_M3};
use carbonstream_core::cems::part75::{self, Part75Fuel};
use carbonstream_core::cems::{CemsError, ConcentrationUnit, flow};
use carbonstream_core::hj212::{Suffix, decode_frame};

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

macro_rules! assert_close {
    ($a:expr, $b:expr, $tol:expr) => {{
        let (a, b) = ($a, $b);
        assert!(
            close(a, b, $tol),
            "{} = {a}, expected {b} +/- {}",
            stringify!($a),
            $tol
        );
    }};
}

#[test]
fn f18_measured_to_standard_conditions() {
    // At 0 degC and 101325 Pa nothing changes; at 273 degC the gas is twice as dilute.
    assert_close!(
        conditions::to_standard_conditions(100.0, 101_325.0, 0.0, 0.0).unwrap(),
        100.0,
        1e-12
    );
    assert_close!(
        conditions::to_standard_conditions(100.0, 101_325.0, 0.0, 273.0).unwrap(),
        200.0,
        1e-12
    );
    // 98 kPa absolute, 150 degC: 100 x 101325/98000 x 423/273.
    assert_close!(
        conditions::to_standard_conditions(100.0, 100_000.0, -2_000.0, 150.0).unwrap(),
        160.202_119_309,
        1e-6
    );
    // The printed formula uses 273, not 273.15.
    assert_eq!(conditions::FORMULA_T0_K, 273.0);
    assert!(matches!(
        conditions::to_standard_conditions(1.0, 1_000.0, -2_000.0, 20.0),
        Err(CemsError::OutOfRange { .. })
    ));
}

#[test]
fn f19_wet_dry_and_f20_ppm() {
    assert_close!(conditions::wet_to_dry(90.0, 0.1).unwrap(), 100.0, 1e-12);
    assert_close!(conditions::dry_to_wet(100.0, 0.1).unwrap(), 90.0, 1e-12);
    let e = conditions::wet_to_dry(1.0, 1.0).unwrap_err();
    assert!(e.to_string().contains("moisture"), "{e}");
    // 100 ppm SO2: 64.06/22.4 x 100 = 285.98 mg/m3; with M = 64, 285.714.
    assert_close!(conditions::ppm_to_mg_m3(100.0, 64.0), 285.714_285_714, 1e-6);
    assert_close!(
        conditions::ppm_to_mg_m3(100.0, molar_mass::SO2),
        285.982_142_857,
        1e-6
    );
    assert_close!(
        conditions::mg_m3_to_ppm(285.982_142_857, molar_mass::SO2),
        100.0,
        1e-6
    );
}

#[test]
fn f26_to_f28_excess_air_and_reference_o2() {
    assert_close!(conditions::excess_air_coefficient(6.0).unwrap(), 1.4, 1e-12);
    // 100 mg/m3 at 9 % O2, reported at 6 %: 100 x 15/12.
    assert_close!(
        conditions::reference_o2_concentration(100.0, 9.0, 6.0).unwrap(),
        125.0,
        1e-12
    );
    assert!(conditions::reference_o2_concentration(100.0, 21.0, 6.0).is_err());
    assert!(conditions::excess_air_coefficient(22.0).is_err());
}

#[test]
fn f29_to_f31_velocity_and_flow() {
    assert_close!(flow::calibrated_velocity(10.0, 1.1), 11.0, 1e-12);
    // K_v = mean reference / mean CEMS = 12/10.
    assert_close!(
        flow::velocity_field_coefficient(&[11.0, 12.0, 13.0], &[9.0, 10.0, 11.0]).unwrap(),
        1.2,
        1e-12
    );
    assert!(matches!(
        flow::velocity_field_coefficient(&[1.0], &[]),
        Err(CemsError::LengthMismatch { .. })
    ));
    // 2 m2 at 10 m/s: 72,000 m3/h.
    assert_close!(flow::actual_flow_m3_h(2.0, 10.0), 72_000.0, 1e-9);
    // At 127 degC, 101325 Pa, 10 % moisture: 72000 x 273/400 x 0.9 = 44,226 m3/h.
    let q = flow::dry_standard_flow_m3_h(72_000.0, 127.0, 101_325.0, 0.0, 0.1).unwrap();
    assert_close!(q, 44_226.0, 1e-9);
    // [33]: 50 mg/m3 in that flow: 2.2113 kg/h.
    assert_close!(mass::mass_rate_kg_h(50.0, q), 2.2113, 1e-12);
}

#[test]
fn co2_from_volume_percent_worked_example() {
    assert_close!(CO2_DENSITY_KG_M3, 1.9635, 5e-5);
    // 12 % CO2 at 1.0e6 m3/h dry standard -> 235.6 t/h.
    let kg_h = mass::co2_rate_from_percent_kg_h(12.0, 1.0e6);
    assert_close!(kg_h, 235_620.594, 1e-3);
    assert_close!((kg_h / 1_000.0 * 10.0).round() / 10.0, 235.6, 1e-12);
    // 1 % CO2 = 19,635 mg/m3, and the unit conversion agrees with the direct formula.
    assert_close!(ConcentrationUnit::CO2_PERCENT.to_mg_m3(1.0), 19_635.0, 1.0);
    assert_close!(
        mass::mass_rate_kg_h(ConcentrationUnit::CO2_PERCENT.to_mg_m3(12.0), 1.0e6),
        kg_h,
        1e-6
    );
    let ppm = ConcentrationUnit::Ppm {
        molar_mass_g_mol: 64.0,
    };
    assert_close!(ppm.to_mg_m3(22.4), 64.0, 1e-12);
    assert_close!(ConcentrationUnit::MgPerM3.kg_per_h_factor(), 1e-6, 1e-20);
}

#[test]
fn part75_f11_and_f2_worked_example() {
    // 10.8 % CO2 wet at 5.0e7 scfh -> 5.7e-7 x 10.8 x 5.0e7 = 307.8 short ton/h.
    assert_close!(part75::co2_rate_f11(10.8, 5.0e7), 307.8, 1e-9);
    // Dry 12 % with 10 % moisture is the same 10.8 % wet.
    assert_close!(part75::co2_rate_f2(12.0, 5.0e7, 10.0).unwrap(), 307.8, 1e-9);
    assert!(part75::co2_rate_f2(12.0, 5.0e7, 100.0).is_err());
}

#[test]
fn part75_f31_moisture_and_f14a_co2_from_o2() {
    assert_close!(part75::moisture_from_o2_f31(6.0, 5.4).unwrap(), 10.0, 1e-9);
    assert!(part75::moisture_from_o2_f31(5.0, 6.0).is_err());
    let gas = Part75Fuel::NaturalGas.factors();
    assert_close!(part75::co2_from_o2_f14a(3.0, gas), 10.226_380_061, 1e-8);
    let coal = Part75Fuel::BituminousCoal.factors();
    assert_close!(part75::co2_from_o2_f14a(6.0, coal), 13.121_202_337, 1e-8);
    // No O2 consumed, no CO2.
    assert_close!(part75::co2_from_o2_f14a(20.9, coal), 0.0, 1e-12);
}

#[test]
fn part75_fuel_factor_table() {
    let t = |f: Part75Fuel| {
        let x = f.factors();
        (x.f_dscf_per_mmbtu, x.fc_scf_per_mmbtu)
    };
    assert_eq!(t(Part75Fuel::NaturalGas), (8_710.0, 1_040.0));
    assert_eq!(t(Part75Fuel::BituminousCoal), (9_780.0, 1_800.0));
    assert_eq!(t(Part75Fuel::SubbituminousCoal), (9_780.0, 1_800.0));
    assert_eq!(t(Part75Fuel::Lignite), (9_860.0, 1_910.0));
    assert_eq!(t(Part75Fuel::Anthracite), (10_100.0, 1_970.0));
    assert_eq!(t(Part75Fuel::Oil), (9_190.0, 1_420.0));
}

#[test]
fn part75_heat_input_f15_to_f18_and_their_consistency() {
    let gas = Part75Fuel::NaturalGas.factors();
    // 1e6 scfh wet, 3 % O2 wet, 10 % H2O: 1e6/8710 x (0.209 x 90 - 3)/20.9.
    let f15 = part75::heat_input_f15(1.0e6, 3.0, 10.0, gas).unwrap();
    assert_close!(f15, 86.849_521_256, 1e-6);
    // The same gas on a dry basis (3/0.9 % O2 dry) gives the same heat input through F-17.
    let f17 = part75::heat_input_f17(1.0e6, 3.0 / 0.9, 10.0, gas).unwrap();
    assert_close!(f17, f15, 1e-9);
    // 9 % CO2 wet: 1e6/1040 x 0.09; 10 % dry with 10 % moisture is the same through F-18.
    let f16 = part75::heat_input_f16(1.0e6, 9.0, gas);
    assert_close!(f16, 86.538_461_538, 1e-6);
    assert_close!(
        part75::heat_input_f18(1.0e6, 10.0, 10.0, gas).unwrap(),
        f16,
        1e-9
    );
}

#[test]
fn accounting_defaults_follow_from_their_components() {
    // 389.31 GJ/1e4 Nm3 x 15.3 tC/TJ x 99 % x 44/12 = 2.1622 kg CO2/Nm3.
    let ng = FuelSpec::NATURAL_GAS.co2_t_per_unit() * 1_000.0;
    assert_close!(ng, 2.1622, 5e-5);
    assert_close!(
        ng,
        389.31 / 1e4 * 15.3e-3 * 0.99 * 44.0 / 12.0 * 1_000.0,
        1e-12
    );
    // 20.908 GJ/t x 26.37 tC/TJ x 94 % x 44/12 = 1.9003 t CO2/t.
    let coal = FuelSpec::RAW_COAL.co2_t_per_unit();
    assert_close!(coal, 1.9003, 5e-5);
    assert_close!(FuelSpec::FUEL_OIL.co2_t_per_unit(), 3.170_461, 1e-6);
    assert_eq!(CO2_PER_C, 44.0 / 12.0);
    // Two meters over a period: 1e6 Nm3 gas and 1000 t coal.
    let total = accounting::accounting_co2_t(&[
        FuelUse {
            quantity: 1.0e6,
            fuel: FuelSpec::NATURAL_GAS,
        },
        FuelUse {
            quantity: 1_000.0,
            fuel: FuelSpec::RAW_COAL,
        },
    ])
    .unwrap();
    assert_close!(total, 2_162.188_809 + 1_900.298_849, 1e-5);
    let bad = FuelSpec {
        oxidation: 1.5,
        ..FuelSpec::RAW_COAL
    };
    assert!(
        accounting::accounting_co2_t(&[FuelUse {
            quantity: 1.0,
            fuel: bad
        }])
        .is_err()
    );
}

#[test]
fn monitoring_vs_accounting_ten_percent_band() {
    let t = DEFAULT_AGREEMENT_THRESHOLD;
    let c = accounting::compare(1_080.0, 1_000.0, t).unwrap();
    assert_close!(c.relative_error, 0.08, 1e-12);
    assert!(!c.flagged);
    // Exactly at the band edge agrees; beyond it is flagged, either side.
    assert!(!accounting::compare(1_100.0, 1_000.0, t).unwrap().flagged);
    assert!(accounting::compare(1_100.1, 1_000.0, t).unwrap().flagged);
    assert!(accounting::compare(899.9, 1_000.0, t).unwrap().flagged);
    assert!(!accounting::compare(900.0, 1_000.0, t).unwrap().flagged);
    // A configurable threshold.
    assert!(accounting::compare(1_060.0, 1_000.0, 0.05).unwrap().flagged);
    assert!(accounting::compare(1.0, 0.0, t).is_err());
}

#[test]
fn hj212_hourly_reference_packet_is_self_consistent_through_the_formulas() {
    let frame = "##0612QN=20240123101501421;ST=31;CN=2061;PW=123456;MN=81733553216103;Flag=4;CP=&&DataTime=20240122170000;a00000-Cou=19191.973,a00000-Min=5.051,a00000-Avg=5.331,a00000-Max=5.617,a00000-Flag=N;a01011-Min=6.686,a01011-Avg=7.029,a01011-Max=7.425,a01011-Flag=N;a01013-Min=-0.041,a01013-Avg=-0.026,a01013-Max=0.011,a01013-Flag=N;a01012-Min=8.074,a01012-Avg=8.524,a01012-Max=8.789,a01012-Flag=N;a24088-Cou=0.018,a24088-Min=0.665,a24088-Avg=0.933,a24088-Max=1.418,a24088-Flag=N;a05002-Cou=0.000,a05002-Min=0.000,a05002-Avg=0.000,a05002-Max=0.000,a05002-Flag=N;a01014-Min=0.828,a01014-Avg=1.040,a01014-Max=1.239,a01014-Flag=N&&0E40\r\n";
    let p = decode_frame(frame.as_bytes()).unwrap().parse().unwrap();
    let q_m3_h = p.number("a00000", Suffix::Avg).unwrap() * 3_600.0;
    // 5.331 m3/s x 3600 s = 19,192 m3 (the logger's Cou, 19,191.973, is from unrounded minutes).
    assert_eq!(q_m3_h.round(), 19_192.0);
    assert_close!(q_m3_h, p.number("a00000", Suffix::Cou).unwrap(), 1.0);
    // 0.933 mg/m3 x 19,192 m3 x 1e-6 = 0.018 kg.
    let kg = mass::mass_rate_kg_h(p.number("a24088", Suffix::Avg).unwrap(), q_m3_h);
    assert_close!(kg, 0.017_906, 1e-6);
    assert_close!(
        (kg * 1_000.0).round() / 1_000.0,
        p.number("a24088", Suffix::Cou).unwrap(),
        1e-12
    );
}
