//! Tilt correction: the coordinate system in which w is the flux-carrying component.
//!
//! All three methods are one 3x3 matrix applied to every sample. The matrix is derived from the
//! period's mean wind and (for the triple rotation) its covariance matrix, which are rotated
//! analytically (C' = R C R^T), so the samples are read once to get the moments and written once
//! to rotate them.
//!
//! - Double rotation: yaw about z into the mean wind, then pitch about the new y so mean w = 0.
//! - Triple rotation: adds a roll about the new x that zeroes cov(v, w). Wilczak et al. (2001)
//!   show this is noisy; it is offered for completeness.
//! - Planar fit (Wilczak et al. 2001): a fixed, sector-wise tilt matrix P fitted over weeks, then
//!   a yaw into the mean wind. Mean w stays as it is: a vertical mean flow over sloping terrain is
//!   exactly what the method preserves.

use super::config::{PlanarFitSectors, Rotation};

pub type Mat3 = [[f64; 3]; 3];

const IDENTITY: Mat3 = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];

/// Means and covariance matrix (divided by N) of (u, v, w).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WindMoments {
    pub mean: [f64; 3],
    pub cov: Mat3,
}

/// Means of (u, v, w): all the double rotation and the planar fit need.
pub fn wind_means(u: &[f64], v: &[f64], w: &[f64]) -> [f64; 3] {
    [
        super::stats::mean(u),
        super::stats::mean(v),
        super::stats::mean(w),
    ]
}

/// Two passes (means, then centred products) for accuracy with a large mean wind.
pub fn wind_moments(u: &[f64], v: &[f64], w: &[f64]) -> WindMoments {
    let n = u.len() as f64;
    let mean = wind_means(u, v, w);
    let mut s = [0.0f64; 6];
    for ((&a, &b), &c) in u.iter().zip(v).zip(w) {
        let (a, b, c) = (a - mean[0], b - mean[1], c - mean[2]);
        s[0] += a * a;
        s[1] += a * b;
        s[2] += a * c;
        s[3] += b * b;
        s[4] += b * c;
        s[5] += c * c;
    }
    for x in &mut s {
        *x /= n;
    }
    WindMoments {
        mean,
        cov: [[s[0], s[1], s[2]], [s[1], s[3], s[4]], [s[2], s[4], s[5]]],
    }
}

/// The rotation chosen for a period and the angles EddyPro reports for it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TiltCorrection {
    pub matrix: Mat3,
    /// Degrees, 0..360: the horizontal angle between the sonic x axis and the mean wind.
    pub yaw_deg: f64,
    /// Degrees; `None` for planar fit (the tilt is in the sector matrix).
    pub pitch_deg: Option<f64>,
    /// Degrees; only triple rotation has one.
    pub roll_deg: Option<f64>,
    /// Planar-fit sector used (index into the configured sectors).
    pub sector: Option<usize>,
}

/// Why no rotation could be derived.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum TiltFailure {
    /// Planar fit, but the wind direction falls in no configured sector.
    NoSector { wind_dir_deg: f64 },
}

fn yaw_matrix(theta: f64) -> Mat3 {
    let (s, c) = theta.sin_cos();
    [[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]]
}

fn pitch_matrix(phi: f64) -> Mat3 {
    let (s, c) = phi.sin_cos();
    [[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]]
}

fn roll_matrix(psi: f64) -> Mat3 {
    let (s, c) = psi.sin_cos();
    [[1.0, 0.0, 0.0], [0.0, c, s], [0.0, -s, c]]
}

pub fn mat_mul(a: &Mat3, b: &Mat3) -> Mat3 {
    let mut r = [[0.0; 3]; 3];
    for i in 0..3 {
        for j in 0..3 {
            r[i][j] = (0..3).map(|k| a[i][k] * b[k][j]).sum();
        }
    }
    r
}

pub fn mat_vec(a: &Mat3, x: &[f64; 3]) -> [f64; 3] {
    [
        a[0][0] * x[0] + a[0][1] * x[1] + a[0][2] * x[2],
        a[1][0] * x[0] + a[1][1] * x[1] + a[1][2] * x[2],
        a[2][0] * x[0] + a[2][1] * x[1] + a[2][2] * x[2],
    ]
}

fn transpose(a: &Mat3) -> Mat3 {
    let mut t = [[0.0; 3]; 3];
    for i in 0..3 {
        for j in 0..3 {
            t[i][j] = a[j][i];
        }
    }
    t
}

/// Moments after rotating with `r`.
pub fn rotate_moments(m: &WindMoments, r: &Mat3) -> WindMoments {
    WindMoments {
        mean: mat_vec(r, &m.mean),
        cov: mat_mul(&mat_mul(r, &m.cov), &transpose(r)),
    }
}

fn degrees_0_360(rad: f64) -> f64 {
    rad.to_degrees().rem_euclid(360.0)
}

/// Derives the tilt correction of a period. `wind_dir_deg` (of the mean wind vector) selects the
/// planar-fit sector.
pub fn tilt_correction(
    method: &Rotation,
    m: &WindMoments,
    wind_dir_deg: f64,
) -> Result<TiltCorrection, TiltFailure> {
    match method {
        Rotation::Double | Rotation::Triple => {
            let yaw = m.mean[1].atan2(m.mean[0]);
            let r1 = yaw_matrix(yaw);
            let m1 = mat_vec(&r1, &m.mean);
            let pitch = m1[2].atan2(m1[0]);
            let r2 = mat_mul(&pitch_matrix(pitch), &r1);
            let mut out = TiltCorrection {
                matrix: r2,
                yaw_deg: degrees_0_360(yaw),
                pitch_deg: Some(pitch.to_degrees()),
                roll_deg: None,
                sector: None,
            };
            if matches!(method, Rotation::Triple) {
                let c = rotate_moments(m, &r2).cov;
                let roll = 0.5 * (2.0 * c[1][2]).atan2(c[1][1] - c[2][2]);
                out.matrix = mat_mul(&roll_matrix(roll), &r2);
                out.roll_deg = Some(roll.to_degrees());
            }
            Ok(out)
        }
        Rotation::PlanarFit(sectors) => planar_fit(sectors, m, wind_dir_deg),
    }
}

fn planar_fit(
    sectors: &PlanarFitSectors,
    m: &WindMoments,
    wind_dir_deg: f64,
) -> Result<TiltCorrection, TiltFailure> {
    let idx = sectors
        .sector_for(wind_dir_deg)
        .ok_or(TiltFailure::NoSector { wind_dir_deg })?;
    let p = sectors.sectors()[idx].matrix;
    let tilted = mat_vec(&p, &m.mean);
    let yaw = tilted[1].atan2(tilted[0]);
    Ok(TiltCorrection {
        matrix: mat_mul(&yaw_matrix(yaw), &p),
        yaw_deg: degrees_0_360(yaw),
        pitch_deg: None,
        roll_deg: None,
        sector: Some(idx),
    })
}

/// Rotates every sample in place. Always inlined so that the pipeline's AVX2 build
/// ([`super::process_period_with`]) rotates four samples per instruction.
#[inline(always)]
pub fn apply(u: &mut [f64], v: &mut [f64], w: &mut [f64], r: &Mat3) {
    if *r == IDENTITY {
        return;
    }
    for ((a, b), c) in u.iter_mut().zip(v.iter_mut()).zip(w.iter_mut()) {
        let x = [*a, *b, *c];
        *a = r[0][0] * x[0] + r[0][1] * x[1] + r[0][2] * x[2];
        *b = r[1][0] * x[0] + r[1][1] * x[1] + r[1][2] * x[2];
        *c = r[2][0] * x[0] + r[2][1] * x[1] + r[2][2] * x[2];
    }
}

/// Wind direction statistics from the unrotated horizontal components.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WindDirection {
    /// Direction of the mean wind vector, degrees from north (0..360).
    pub vector_deg: f64,
    /// Mean of the instantaneous directions (unit-vector average), as EddyPro reports WD.
    pub mean_deg: f64,
    /// Yamartino (1984) standard deviation of the direction, degrees.
    pub sigma_deg: f64,
}

/// What the period reports about the unrotated wind: means of (u, v, w) (the rotation is derived
/// from them), direction statistics and the largest instantaneous speed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WindStatistics {
    pub means: [f64; 3],
    pub direction: WindDirection,
    /// Largest |(u, v, w)| of the period, m s-1.
    pub max_speed: f64,
}

/// [`WindStatistics`] from one pass over the samples. `north_offset_deg` is the direction of a
/// wind along +x of the sonic (see [`super::Sonic`]).
///
/// The sums of u, v and w keep the lanes and order of [`super::stats::sum`], so the means are
/// exactly [`super::stats::mean`]'s. The sums of unit vectors use eight lanes as well (a square
/// root and a division per sample: four of them per instruction). The largest speed is the root
/// of the largest square (sqrt is monotonic and correctly rounded: the same value as the largest
/// root, for one root per period). Vector and portable paths give bit-identical results.
pub fn wind_statistics(u: &[f64], v: &[f64], w: &[f64], north_offset_deg: f64) -> WindStatistics {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports the feature `wind_sums_avx2` is compiled with.
            let sums = unsafe { wind_sums_avx2(u, v, w) };
            return wind_statistics_from(&sums, u.len(), north_offset_deg);
        }
    }
    wind_statistics_from(&wind_sums_portable(u, v, w), u.len(), north_offset_deg)
}

/// Sums of one pass: u, v, w, the unit vectors' components and how many samples had a
/// horizontal wind, and the largest squared speed.
#[derive(Clone, Copy, Debug, PartialEq)]
struct WindSums {
    u: f64,
    v: f64,
    w: f64,
    unit_u: f64,
    unit_v: f64,
    count: usize,
    max_square: f64,
}

/// `((a0 + a4) + (a1 + a5)) + ((a2 + a6) + (a3 + a7))`: [`super::stats::sum`]'s order.
#[inline(always)]
fn reduce8(a: &[f64; 8]) -> f64 {
    ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7]))
}

#[inline(always)]
fn wind_sums_portable(u: &[f64], v: &[f64], w: &[f64]) -> WindSums {
    let n = u.len().min(v.len()).min(w.len());
    let (u, v, w) = (&u[..n], &v[..n], &w[..n]);
    let body = n / 8 * 8;
    let (mut su, mut sv, mut sw) = ([0.0f64; 8], [0.0f64; 8], [0.0f64; 8]);
    let (mut cu, mut cv) = ([0.0f64; 8], [0.0f64; 8]);
    let (mut count, mut max_square) = (0usize, 0.0f64);
    for i in (0..body).step_by(8) {
        for l in 0..8 {
            let (a, b, c) = (u[i + l], v[i + l], w[i + l]);
            su[l] += a;
            sv[l] += b;
            sw[l] += c;
            let s2 = a * a + b * b;
            max_square = max_square.max(s2 + c * c);
            if s2 > 0.0 {
                let inv = 1.0 / s2.sqrt();
                cu[l] += a * inv;
                cv[l] += b * inv;
                count += 1;
            }
        }
    }
    let mut tail = [0.0f64; 5];
    for i in body..n {
        let (a, b, c) = (u[i], v[i], w[i]);
        tail[0] += a;
        tail[1] += b;
        tail[2] += c;
        let s2 = a * a + b * b;
        max_square = max_square.max(s2 + c * c);
        if s2 > 0.0 {
            let inv = 1.0 / s2.sqrt();
            tail[3] += a * inv;
            tail[4] += b * inv;
            count += 1;
        }
    }
    WindSums {
        u: reduce8(&su) + tail[0],
        v: reduce8(&sv) + tail[1],
        w: reduce8(&sw) + tail[2],
        unit_u: reduce8(&cu) + tail[3],
        unit_v: reduce8(&cv) + tail[4],
        count,
        max_square,
    }
}

/// [`wind_sums_portable`] with lanes 0-3 and 4-7 of every sum in two registers.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn wind_sums_avx2(u: &[f64], v: &[f64], w: &[f64]) -> WindSums {
    use std::arch::x86_64::{
        __m256d, _CMP_GT_OQ, _mm256_add_pd, _mm256_and_pd, _mm256_cmp_pd, _mm256_div_pd,
        _mm256_loadu_pd, _mm256_max_pd, _mm256_movemask_pd, _mm256_mul_pd, _mm256_set1_pd,
        _mm256_setzero_pd, _mm256_sqrt_pd, _mm256_storeu_pd,
    };
    #[inline]
    #[target_feature(enable = "avx2")]
    fn lanes(lo: __m256d, hi: __m256d) -> [f64; 8] {
        let mut out = [0.0f64; 8];
        // SAFETY: `out` holds eight f64, four per store.
        unsafe {
            _mm256_storeu_pd(out.as_mut_ptr(), lo);
            _mm256_storeu_pd(out.as_mut_ptr().add(4), hi);
        }
        out
    }
    let n = u.len().min(v.len()).min(w.len());
    let (u, v, w) = (&u[..n], &v[..n], &w[..n]);
    let body = n / 8 * 8;
    let z = _mm256_setzero_pd();
    let one = _mm256_set1_pd(1.0);
    let (mut su, mut sv, mut sw, mut cu, mut cv) = ([z; 2], [z; 2], [z; 2], [z; 2], [z; 2]);
    let mut max_sq = [z; 2];
    let mut count = 0usize;
    let mut i = 0;
    while i < body {
        for h in 0..2 {
            let j = i + 4 * h;
            // SAFETY: j + 4 <= body <= n, the length of all three slices.
            let (a, b, c) = unsafe {
                (
                    _mm256_loadu_pd(u.as_ptr().add(j)),
                    _mm256_loadu_pd(v.as_ptr().add(j)),
                    _mm256_loadu_pd(w.as_ptr().add(j)),
                )
            };
            su[h] = _mm256_add_pd(su[h], a);
            sv[h] = _mm256_add_pd(sv[h], b);
            sw[h] = _mm256_add_pd(sw[h], c);
            let s2 = _mm256_add_pd(_mm256_mul_pd(a, a), _mm256_mul_pd(b, b));
            max_sq[h] = _mm256_max_pd(max_sq[h], _mm256_add_pd(s2, _mm256_mul_pd(c, c)));
            let has_wind = _mm256_cmp_pd::<_CMP_GT_OQ>(s2, z);
            let inv = _mm256_div_pd(one, _mm256_sqrt_pd(s2));
            // Lanes without wind add +0.0 (their products are NaN or inf, masked out).
            cu[h] = _mm256_add_pd(cu[h], _mm256_and_pd(has_wind, _mm256_mul_pd(a, inv)));
            cv[h] = _mm256_add_pd(cv[h], _mm256_and_pd(has_wind, _mm256_mul_pd(b, inv)));
            count += _mm256_movemask_pd(has_wind).count_ones() as usize;
        }
        i += 8;
    }
    let mut max_square = lanes(max_sq[0], max_sq[1])
        .into_iter()
        .fold(0.0f64, f64::max);
    let mut tail = [0.0f64; 5];
    for i in body..n {
        let (a, b, c) = (u[i], v[i], w[i]);
        tail[0] += a;
        tail[1] += b;
        tail[2] += c;
        let s2 = a * a + b * b;
        max_square = max_square.max(s2 + c * c);
        if s2 > 0.0 {
            let inv = 1.0 / s2.sqrt();
            tail[3] += a * inv;
            tail[4] += b * inv;
            count += 1;
        }
    }
    let total = |x: [__m256d; 2], t: f64| reduce8(&lanes(x[0], x[1])) + t;
    WindSums {
        u: total(su, tail[0]),
        v: total(sv, tail[1]),
        w: total(sw, tail[2]),
        unit_u: total(cu, tail[3]),
        unit_v: total(cv, tail[4]),
        count,
        max_square,
    }
}

fn wind_statistics_from(s: &WindSums, n: usize, north_offset_deg: f64) -> WindStatistics {
    let nf = n as f64;
    let means = if n == 0 {
        [f64::NAN; 3]
    } else {
        [s.u / nf, s.v / nf, s.w / nf]
    };
    let vector_deg = (north_offset_deg - s.v.atan2(s.u).to_degrees()).rem_euclid(360.0);
    let direction = if s.count == 0 {
        WindDirection {
            vector_deg,
            mean_deg: vector_deg,
            sigma_deg: 0.0,
        }
    } else {
        let (c, sn) = (s.unit_u / s.count as f64, s.unit_v / s.count as f64);
        let mean_deg = (north_offset_deg - sn.atan2(c).to_degrees()).rem_euclid(360.0);
        let eps = (1.0 - (c * c + sn * sn)).max(0.0).sqrt();
        let sigma = eps.min(1.0).asin() * (1.0 + (2.0 / 3f64.sqrt() - 1.0) * eps.powi(3));
        WindDirection {
            vector_deg,
            mean_deg,
            sigma_deg: sigma.to_degrees(),
        }
    };
    WindStatistics {
        means,
        direction,
        max_speed: s.max_square.sqrt(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wind_statistics_agree_in_both_paths_and_with_direct_formulas() {
        for n in [0usize, 1, 7, 8, 9, 100, 1003] {
            let u: Vec<f64> = (0..n).map(|i| 2.0 + 3.0 * (i as f64 * 0.3).sin()).collect();
            let mut v: Vec<f64> = (0..n)
                .map(|i| -1.0 + 2.0 * (i as f64 * 0.17).cos())
                .collect();
            let w: Vec<f64> = (0..n).map(|i| 0.3 * (i as f64 * 0.23).sin()).collect();
            let mut u = u;
            // Calm samples have no direction.
            for i in (0..n).step_by(13) {
                u[i] = 0.0;
                v[i] = 0.0;
            }
            let portable = wind_sums_portable(&u, &v, &w);
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: AVX2 was detected.
                let fast = unsafe { wind_sums_avx2(&u, &v, &w) };
                assert_eq!(fast, portable, "n {n}");
            }
            let s = wind_statistics_from(&portable, n, 30.0);
            if n == 0 {
                assert!(s.means[0].is_nan());
                continue;
            }
            assert_eq!(s.means, wind_means(&u, &v, &w));
            let max = (0..n)
                .map(|i| (u[i] * u[i] + v[i] * v[i] + w[i] * w[i]).sqrt())
                .fold(0.0, f64::max);
            assert_eq!(s.max_speed, max);
            let (mut cu, mut cv, mut k) = (0.0, 0.0, 0);
            for i in 0..n {
                let r = u[i].hypot(v[i]);
                if r > 0.0 {
                    cu += u[i] / r;
                    cv += v[i] / r;
                    k += 1;
                }
            }
            let mean_deg = (30.0 - cv.atan2(cu).to_degrees()).rem_euclid(360.0);
            assert!((s.direction.mean_deg - mean_deg).abs() < 1e-9, "n {n}");
            let (c, sn) = (cu / k as f64, cv / k as f64);
            let eps = (1.0 - (c * c + sn * sn)).max(0.0).sqrt();
            let sigma = eps.asin() * (1.0 + (2.0 / 3f64.sqrt() - 1.0) * eps.powi(3));
            assert!(
                (s.direction.sigma_deg - sigma.to_degrees()).abs() < 1e-9,
                "n {n}"
            );
        }
    }

    #[test]
    fn double_rotation_zeroes_mean_v_and_w_and_triple_zeroes_cov_vw() {
        let n = 500;
        let u: Vec<f64> = (0..n).map(|i| 2.0 + (i as f64 * 0.3).sin()).collect();
        let v: Vec<f64> = (0..n).map(|i| -1.0 + (i as f64 * 0.17).cos()).collect();
        let w: Vec<f64> = (0..n)
            .map(|i| 0.2 + 0.3 * (i as f64 * 0.23).sin() + 0.1 * (i as f64 * 0.17).cos())
            .collect();
        let m = wind_moments(&u, &v, &w);
        for method in [Rotation::Double, Rotation::Triple] {
            let t = tilt_correction(&method, &m, 0.0).unwrap();
            let r = rotate_moments(&m, &t.matrix);
            assert!(r.mean[1].abs() < 1e-12 && r.mean[2].abs() < 1e-12);
            if method == Rotation::Triple {
                assert!(r.cov[1][2].abs() < 1e-12);
            }
        }
    }
}
