//! Properties of the EC kernel over random synthetic turbulence: rotation invariance, lag
//! recovery, spike removal.

mod ec_common;

use carbonstream_core::ec::despike::{DespikeParams, despike};
use carbonstream_core::ec::{EcConfig, Var, process_period};
use ec_common::synth::{self, Rng};
use proptest::prelude::*;

const N: usize = 6000; // 5 min at 20 Hz keeps each case fast

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * a.abs().max(b.abs()).max(1e-12)
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::with_cases(24) })]

    /// Turning the sonic about its vertical axis changes the raw u and v but not the physics:
    /// after double rotation every flux is the same.
    #[test]
    fn fluxes_do_not_depend_on_the_sonic_heading(seed in any::<u64>(), heading_deg in 0.0f64..360.0) {
        let data = synth::period(N, seed, 0);
        let mut turned = synth::period(N, seed, 0);
        let (s, c) = heading_deg.to_radians().sin_cos();
        for (u, v) in turned.u.iter_mut().zip(turned.v.iter_mut()) {
            let (a, b) = (*u as f64, *v as f64);
            *u = (c * a - s * b) as f32;
            *v = (s * a + c * b) as f32;
        }
        // Despiking judges each sensor axis on its own, so it is not rotation invariant by design.
        let cfg = EcConfig { despike: None, ..synth::config(N) };
        let a = process_period(&data.raw(), &cfg).unwrap();
        let b = process_period(&turned.raw(), &cfg).unwrap();
        let (fa, fb) = (a.fluxes, b.fluxes);
        // f32 storage of the turned components limits agreement to ~1e-6.
        let tol = 1e-4;
        prop_assert!(close(fa.h.unwrap(), fb.h.unwrap(), tol));
        prop_assert!(close(fa.le.unwrap(), fb.le.unwrap(), tol));
        prop_assert!(close(fa.fc.unwrap(), fb.fc.unwrap(), tol));
        prop_assert!(close(fa.tau.unwrap(), fb.tau.unwrap(), tol));
        prop_assert!(close(a.turbulence.ustar.unwrap(), b.turbulence.ustar.unwrap(), tol));
        prop_assert_eq!(a.lags.co2.unwrap().samples, b.lags.co2.unwrap().samples);
        let dyaw = (b.rotation.unwrap().yaw_deg - a.rotation.unwrap().yaw_deg - heading_deg).rem_euclid(360.0);
        prop_assert!(!(1e-3..=360.0 - 1e-3).contains(&dyaw), "yaw moved by {dyaw}");
    }

    /// A scalar delayed by a known number of samples is re-aligned by the lag search.
    #[test]
    fn an_injected_lag_is_recovered(seed in any::<u64>(), lag in -15i64..=15) {
        let data = synth::period(N, seed, lag);
        let r = process_period(&data.raw(), &synth::config(N)).unwrap();
        let co2 = r.lags.co2.unwrap();
        let h2o = r.lags.h2o.unwrap();
        prop_assert_eq!(co2.samples, lag);
        prop_assert_eq!(h2o.samples, lag);
        prop_assert!(!co2.default_used && !h2o.default_used);
        prop_assert!((co2.seconds - lag as f64 / 20.0).abs() < 1e-12);
    }

    /// Isolated spikes of 12 standard deviations are all found and replaced by values in the
    /// range of their neighbours; the rest of the series is untouched.
    #[test]
    fn injected_spikes_are_removed(seed in any::<u64>(), count in 1usize..20) {
        let mut rng = Rng::new(seed);
        let mut clean = vec![0.0f64; N];
        let mut prev = 0.0;
        for x in clean.iter_mut() {
            prev = 0.8 * prev + 0.6 * rng.normal();
            *x = 10.0 + prev;
        }
        let mut spiky = clean.clone();
        // Spikes at least 50 samples apart, away from the ends.
        let positions: Vec<usize> = (0..count).map(|k| 100 + k * (N - 200) / count).collect();
        for (k, &i) in positions.iter().enumerate() {
            spiky[i] += if k % 2 == 0 { 12.0 } else { -12.0 };
        }
        let params = DespikeParams {
            window: N / 6,
            step: 100,
            max_consecutive: 3,
            max_passes: 10,
            sigma: 3.5,
            threshold_increment: 0.1,
        };
        let replaced = despike(&mut spiky, &params, &mut Vec::new());
        prop_assert!(replaced >= count);
        for &i in &positions {
            let expected = 0.5 * (clean[i - 1] + clean[i + 1]);
            prop_assert!((spiky[i] - expected).abs() < 1e-9, "spike at {i} left as {}", spiky[i]);
        }
        // Only a handful of genuine extremes may go with them.
        let changed = spiky.iter().zip(&clean).filter(|(a, b)| a != b).count();
        prop_assert!(changed <= count + 10, "{changed} samples changed for {count} spikes");
    }

    /// The same through the whole pipeline: spikes on w are counted and do not leak into H.
    #[test]
    fn spikes_do_not_leak_into_the_fluxes(seed in any::<u64>(), count in 1usize..10) {
        let data = synth::period(N, seed, 0);
        let mut spiky = synth::period(N, seed, 0);
        for k in 0..count {
            let i = 200 + k * (N - 400) / count;
            spiky.w[i] += if k % 2 == 0 { 4.0 } else { -4.0 };
        }
        let cfg = synth::config(N);
        let a = process_period(&data.raw(), &cfg).unwrap();
        let b = process_period(&spiky.raw(), &cfg).unwrap();
        // A spike pushed beyond |w| = 5 m/s is removed by the absolute limits instead.
        prop_assert!(b.spikes.get(Var::W) + b.missing.get(Var::W) >= count);
        prop_assert!(close(a.fluxes.h.unwrap(), b.fluxes.h.unwrap(), 0.01));
    }
}
