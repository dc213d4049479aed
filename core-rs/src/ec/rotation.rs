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

/// Rotates every sample in place.
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

/// `north_offset_deg` is the direction of a wind along +x of the sonic (see [`super::Sonic`]).
pub fn wind_direction(u: &[f64], v: &[f64], north_offset_deg: f64) -> WindDirection {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports the feature `wind_direction_avx2` is compiled with.
            return unsafe { wind_direction_avx2(u, v, north_offset_deg) };
        }
    }
    wind_direction_impl(u, v, north_offset_deg)
}

/// A square root and a division per sample: worth four lanes.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn wind_direction_avx2(u: &[f64], v: &[f64], north_offset_deg: f64) -> WindDirection {
    wind_direction_impl(u, v, north_offset_deg)
}

#[inline(always)]
fn wind_direction_impl(u: &[f64], v: &[f64], north_offset_deg: f64) -> WindDirection {
    let (mut su, mut sv, mut cu, mut cv, mut n) = (0.0, 0.0, 0.0, 0.0, 0usize);
    for (&a, &b) in u.iter().zip(v) {
        su += a;
        sv += b;
        let s2 = a * a + b * b;
        if s2 > 0.0 {
            let inv = 1.0 / s2.sqrt();
            cu += a * inv;
            cv += b * inv;
            n += 1;
        }
    }
    let vector_deg = (north_offset_deg - sv.atan2(su).to_degrees()).rem_euclid(360.0);
    if n == 0 {
        return WindDirection {
            vector_deg,
            mean_deg: vector_deg,
            sigma_deg: 0.0,
        };
    }
    let (c, s) = (cu / n as f64, cv / n as f64);
    let mean_deg = (north_offset_deg - s.atan2(c).to_degrees()).rem_euclid(360.0);
    let eps = (1.0 - (c * c + s * s)).max(0.0).sqrt();
    let sigma = eps.min(1.0).asin() * (1.0 + (2.0 / 3f64.sqrt() - 1.0) * eps.powi(3));
    WindDirection {
        vector_deg,
        mean_deg,
        sigma_deg: sigma.to_degrees(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
