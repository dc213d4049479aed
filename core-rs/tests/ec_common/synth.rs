//! Synthetic turbulence for property and robustness tests: first-order autoregressive series
//! with a shared vertical-wind driver, so that heat, gas and momentum fluxes are non-zero and of
//! realistic sign (upward heat and water, downward CO2 and momentum).

/// xorshift64*: deterministic, seedable, no dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(1e-300);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

/// Columns of one synthetic open-path period in the kernel's units (Ts K, CO2/H2O mmol m-3).
pub struct Synthetic {
    pub u: Vec<f32>,
    pub v: Vec<f32>,
    pub w: Vec<f32>,
    pub ts: Vec<f32>,
    pub co2: Vec<f32>,
    pub h2o: Vec<f32>,
}

/// `n` samples; the gases arrive `lag` samples after w (positive: later).
pub fn period(n: usize, seed: u64, lag: i64) -> Synthetic {
    let mut r = Rng::new(seed);
    let ar = |prev: f64, phi: f64, sd: f64, r: &mut Rng| {
        phi * prev + (1.0 - phi * phi).sqrt() * sd * r.normal()
    };
    let pad = 64usize;
    let total = n + 2 * pad;
    let (mut wd, mut ud, mut vd, mut td, mut cd, mut qd) = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    let mut w = Vec::with_capacity(total);
    let mut u = Vec::with_capacity(total);
    let mut v = Vec::with_capacity(total);
    let mut t = Vec::with_capacity(total);
    let mut c = Vec::with_capacity(total);
    let mut q = Vec::with_capacity(total);
    for _ in 0..total {
        wd = ar(wd, 0.9, 0.4, &mut r);
        ud = ar(ud, 0.95, 0.6, &mut r);
        vd = ar(vd, 0.95, 0.5, &mut r);
        td = ar(td, 0.9, 0.2, &mut r);
        cd = ar(cd, 0.9, 0.05, &mut r);
        qd = ar(qd, 0.9, 10.0, &mut r);
        w.push(wd);
        u.push(ud - 0.4 * wd);
        v.push(vd);
        t.push(td + 0.4 * wd);
        c.push(cd - 0.1 * wd);
        q.push(qd + 20.0 * wd);
    }
    let at = |x: &[f64], i: usize| x[i];
    let mut out = Synthetic {
        u: Vec::with_capacity(n),
        v: Vec::with_capacity(n),
        w: Vec::with_capacity(n),
        ts: Vec::with_capacity(n),
        co2: Vec::with_capacity(n),
        h2o: Vec::with_capacity(n),
    };
    for i in pad..pad + n {
        let j = (i as i64 - lag) as usize;
        out.u.push((3.0 + at(&u, i)) as f32);
        out.v.push((1.0 + at(&v, i)) as f32);
        out.w.push((0.05 + at(&w, i)) as f32);
        out.ts.push((295.0 + at(&t, i)) as f32);
        out.co2.push((16.0 + at(&c, j)) as f32);
        out.h2o.push((500.0 + at(&q, j)) as f32);
    }
    out
}

impl Synthetic {
    pub fn raw(&self) -> carbonstream_core::ec::RawPeriod<'_> {
        carbonstream_core::ec::RawPeriod {
            u: &self.u,
            v: &self.v,
            w: &self.w,
            ts: &self.ts,
            co2: Some(&self.co2),
            h2o: Some(&self.h2o),
            ..Default::default()
        }
    }
}

/// Express settings for a synthetic period of `n` samples at 20 Hz (5 m above short grass).
pub fn config(n: usize) -> carbonstream_core::ec::EcConfig {
    use carbonstream_core::ec::{EcConfig, LagSetting, LagWindow, Sonic};
    let mut cfg = EcConfig {
        averaging_s: n as f64 / 20.0,
        sonic: Sonic::csat3(5.0, 0.0),
        ..EcConfig::default()
    };
    let window = LagSetting::Fixed(LagWindow {
        nominal_s: 0.0,
        min_s: -1.0,
        max_s: 1.0,
    });
    cfg.lag.co2 = window;
    cfg.lag.h2o = window;
    cfg
}
