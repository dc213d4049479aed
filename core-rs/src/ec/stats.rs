//! Sums, means and dot products over contiguous f64 buffers.
//!
//! Everything in a period is a sum over tens of thousands of samples, many of them (the lag search,
//! the random-error correlation functions) repeated for dozens of offsets. The loops here keep
//! eight independent accumulators so the compiler can use SIMD lanes without being allowed to
//! reorder a single floating-point sum, and they take slices so bounds checks are hoisted.

/// Sum of `a[i] * b[i]` over the common length.
///
/// Dispatches at run time to an AVX2+FMA build of the same loop when the CPU has it (the crate
/// is compiled for baseline x86-64, which only has SSE2): the lag search and the random-error
/// correlation functions are hundreds of these per period.
#[inline]
pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU supports the features `dot_avx2_fma` is compiled with.
            return unsafe { dot_avx2_fma(a, b) };
        }
    }
    dot_portable(a, b)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn dot_avx2_fma(a: &[f64], b: &[f64]) -> f64 {
    use std::arch::x86_64::{
        __m256d, _mm256_add_pd, _mm256_fmadd_pd, _mm256_loadu_pd, _mm256_setzero_pd,
        _mm256_storeu_pd,
    };
    let n = a.len().min(b.len());
    let blocks = n / 16;
    let mut acc: [__m256d; 4] = [_mm256_setzero_pd(); 4];
    for blk in 0..blocks {
        for (k, acc_k) in acc.iter_mut().enumerate() {
            let i = blk * 16 + 4 * k;
            // SAFETY: i + 3 < 16 * blocks <= n, inside both slices; unaligned loads are allowed.
            let (x, y) = unsafe {
                (
                    _mm256_loadu_pd(a.as_ptr().add(i)),
                    _mm256_loadu_pd(b.as_ptr().add(i)),
                )
            };
            *acc_k = _mm256_fmadd_pd(x, y, *acc_k);
        }
    }
    let s = _mm256_add_pd(_mm256_add_pd(acc[0], acc[1]), _mm256_add_pd(acc[2], acc[3]));
    let mut lanes = [0.0f64; 4];
    // SAFETY: `lanes` holds exactly four f64.
    unsafe { _mm256_storeu_pd(lanes.as_mut_ptr(), s) };
    let mut total = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
    for i in 16 * blocks..n {
        total += a[i] * b[i];
    }
    total
}

/// Portable version: four independent accumulators, vectorisable without reassociating any
/// single sum.
#[inline(always)]
fn dot_portable(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f64; 4];
    let ca = a.chunks_exact(4);
    let cb = b.chunks_exact(4);
    let ra = ca.remainder();
    let rb = cb.remainder();
    for (x, y) in ca.zip(cb) {
        for k in 0..4 {
            acc[k] += x[k] * y[k];
        }
    }
    let mut tail = 0.0;
    for (x, y) in ra.iter().zip(rb) {
        tail += x * y;
    }
    (acc[0] + acc[2]) + (acc[1] + acc[3]) + tail
}

/// `out[k] = sum_i a[i] * b[i + lag]` over the overlap of the two series, for every
/// `lag = lo + k` (`out.len()` lags). Negative lags pair `a[i - lag]` with `b[i]`.
///
/// Evaluating lag after lag would stream both series from memory once per lag, and one dot
/// product keeps a single chain of dependent multiply-adds per register: the FMA latency, not
/// the arithmetic, sets its speed. Here the series are walked in blocks that stay in the L1 cache,
/// and within a block eight or more neighbouring lags are evaluated together: each vector of `a`
/// is loaded once and multiplied into independent accumulators (one per lag), which keeps both
/// FMA units busy. Each lag's sum is four lanes per block, blocks in sequence: the same accuracy as
/// [`dot`], rounded in a different order (results agree to ~1e-16 relative).
pub fn lagged_dots(a: &[f64], b: &[f64], lo: i64, out: &mut [f64]) {
    // Without centres nothing is copied, so the empty scratch never allocates.
    lagged_dots_centred(a, b, None, lo, out, &mut Vec::new());
}

/// [`lagged_dots`] of `a - ca` and `b - cb` for `centres = Some((ca, cb))`: each cache block is
/// centred into `scratch` (about 2 x 16 kB, in L1) just before the lags use it, which gives
/// exactly the products of stored centred copies without writing and re-reading whole series.
pub fn lagged_dots_centred(
    a: &[f64],
    b: &[f64],
    centres: Option<(f64, f64)>,
    lo: i64,
    out: &mut [f64],
    scratch: &mut Vec<f64>,
) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU supports the features `lagged_dots_avx2_fma` is compiled with.
            return unsafe { lagged_dots_avx2_fma(a, b, centres, lo, out, scratch) };
        }
    }
    lagged_dots_impl(a, b, centres, lo, out, scratch, PortableLags);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn lagged_dots_avx2_fma(
    a: &[f64],
    b: &[f64],
    centres: Option<(f64, f64)>,
    lo: i64,
    out: &mut [f64],
    scratch: &mut Vec<f64>,
) {
    lagged_dots_impl(a, b, centres, lo, out, scratch, Avx2FmaLags(()));
}

/// `out[g] += sum_i a[i] * b[i + g]` for `g < G`, `b.len() >= a.len() + G - 1`: the inner kernel
/// of [`lagged_dots`], as four-lane partial sums per lag combined as `(l0 + l2) + (l1 + l3)`,
/// then the samples after the last full vector in order.
trait LagKernel: Copy {
    fn dots<const G: usize>(self, a: &[f64], b: &[f64], out: &mut [f64]);
}

#[derive(Clone, Copy)]
struct PortableLags;

impl LagKernel for PortableLags {
    #[inline(always)]
    fn dots<const G: usize>(self, a: &[f64], b: &[f64], out: &mut [f64]) {
        let m = a.len();
        let body = m / 4 * 4;
        let mut acc = [[0.0f64; 4]; G];
        for i in (0..body).step_by(4) {
            for (g, acc_g) in acc.iter_mut().enumerate() {
                for l in 0..4 {
                    acc_g[l] += a[i + l] * b[i + g + l];
                }
            }
        }
        for (g, acc_g) in acc.iter().enumerate() {
            let mut s = (acc_g[0] + acc_g[2]) + (acc_g[1] + acc_g[3]);
            for i in body..m {
                s += a[i] * b[i + g];
            }
            out[g] += s;
        }
    }
}

/// AVX2 + FMA. Only [`lagged_dots_avx2_fma`] (entered after run-time detection) constructs it.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
struct Avx2FmaLags(());

#[cfg(target_arch = "x86_64")]
impl LagKernel for Avx2FmaLags {
    #[inline(always)]
    fn dots<const G: usize>(self, a: &[f64], b: &[f64], out: &mut [f64]) {
        // SAFETY: an `Avx2FmaLags` exists only after AVX2 and FMA were detected.
        unsafe { lag_dots_avx2_fma::<G>(a, b, out) }
    }
}

#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2,fma")]
fn lag_dots_avx2_fma<const G: usize>(a: &[f64], b: &[f64], out: &mut [f64]) {
    use std::arch::x86_64::{
        _mm_add_pd, _mm_add_sd, _mm_cvtsd_f64, _mm_unpackhi_pd, _mm256_castpd256_pd128,
        _mm256_extractf128_pd, _mm256_fmadd_pd, _mm256_loadu_pd, _mm256_setzero_pd,
    };
    let m = a.len();
    assert!(b.len() + 1 >= m + G && out.len() >= G);
    let body = m / 4 * 4;
    let mut acc = [_mm256_setzero_pd(); G];
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut i = 0;
    while i < body {
        // SAFETY: i + 3 < body <= a.len() and i + g + 3 < body + G - 1 <= b.len() (asserted).
        let x = unsafe { _mm256_loadu_pd(pa.add(i)) };
        for (g, acc_g) in acc.iter_mut().enumerate() {
            // SAFETY: as above.
            let y = unsafe { _mm256_loadu_pd(pb.add(i + g)) };
            *acc_g = _mm256_fmadd_pd(x, y, *acc_g);
        }
        i += 4;
    }
    for (g, acc_g) in acc.iter().enumerate() {
        let h = _mm_add_pd(
            _mm256_castpd256_pd128(*acc_g),
            _mm256_extractf128_pd::<1>(*acc_g),
        );
        let mut s = _mm_cvtsd_f64(_mm_add_sd(h, _mm_unpackhi_pd(h, h)));
        for i in body..m {
            s += a[i] * b[i + g];
        }
        out[g] += s;
    }
}

#[inline(always)]
fn lagged_dots_impl<K: LagKernel>(
    a: &[f64],
    b: &[f64],
    centres: Option<(f64, f64)>,
    lo: i64,
    out: &mut [f64],
    scratch: &mut Vec<f64>,
    k: K,
) {
    const BLOCK: usize = 2048;
    let n = a.len().min(b.len());
    out.fill(0.0);
    if out.is_empty() {
        return;
    }
    let hi = lo + out.len() as i64 - 1;
    let mut start = 0usize;
    while start < n {
        let end = (start + BLOCK).min(n);
        // The part of `b` any lag of this block pairs with.
        let b0 = (start as i64 + lo).clamp(0, n as i64) as usize;
        let b1 = (end as i64 + hi).clamp(0, n as i64) as usize;
        let (blk_a, win_b) = match centres {
            None => (&a[start..end], &b[b0..b1.max(b0)]),
            Some((ca, cb)) => {
                scratch.clear();
                scratch.extend(a[start..end].iter().map(|v| v - ca));
                scratch.extend(b[b0..b1.max(b0)].iter().map(|v| v - cb));
                scratch.split_at(end - start)
            }
        };
        let blk = Block {
            a: blk_a,
            start,
            b: win_b,
            b0,
            n,
        };
        // Groups of eight lags, the last one taking whatever is left (up to 15: its accumulators
        // and the register of `a` still fit the 16 vector registers). A small leftover group
        // would run few, latency-bound chains and cost as much as a full one.
        let mut first = 0usize;
        while first < out.len() {
            let left = out.len() - first;
            let g = if left >= 16 { 8 } else { left };
            let lag0 = lo + first as i64;
            let group = &mut out[first..first + g];
            match g {
                1 => lag_group::<1, K>(&blk, lag0, group, k),
                2 => lag_group::<2, K>(&blk, lag0, group, k),
                3 => lag_group::<3, K>(&blk, lag0, group, k),
                4 => lag_group::<4, K>(&blk, lag0, group, k),
                5 => lag_group::<5, K>(&blk, lag0, group, k),
                6 => lag_group::<6, K>(&blk, lag0, group, k),
                7 => lag_group::<7, K>(&blk, lag0, group, k),
                8 => lag_group::<8, K>(&blk, lag0, group, k),
                9 => lag_group::<9, K>(&blk, lag0, group, k),
                10 => lag_group::<10, K>(&blk, lag0, group, k),
                11 => lag_group::<11, K>(&blk, lag0, group, k),
                12 => lag_group::<12, K>(&blk, lag0, group, k),
                13 => lag_group::<13, K>(&blk, lag0, group, k),
                14 => lag_group::<14, K>(&blk, lag0, group, k),
                _ => lag_group::<15, K>(&blk, lag0, group, k),
            }
            first += g;
        }
        start = end;
    }
}

/// One cache block of [`lagged_dots`]: `a` holds indices `start..start + a.len()` of the first
/// series, `b` indices `b0..b0 + b.len()` of the second (all the block's lags reach), of `n`.
struct Block<'a> {
    a: &'a [f64],
    start: usize,
    b: &'a [f64],
    b0: usize,
    n: usize,
}

/// Adds the block of the lags `lag0..lag0 + G` to `out`: the indices every lag of the group can
/// use go through the kernel, the few at the ends that only some lags reach are added one by one
/// (in index order, after the kernel's sum).
#[inline(always)]
fn lag_group<const G: usize, K: LagKernel>(blk: &Block, lag0: i64, out: &mut [f64], k: K) {
    let (start, end, n) = (
        blk.start as i64,
        (blk.start + blk.a.len()) as i64,
        blk.n as i64,
    );
    let (ia, ib) = (
        |i: i64| (i - start) as usize,
        |j: i64| (j - blk.b0 as i64) as usize,
    );
    // Indices i with 0 <= i + lag < n for every lag of the group.
    let c0 = start.max(-lag0);
    let c1 = end.min(n - lag0 - G as i64 + 1);
    let common = c1 > c0;
    if common {
        let j0 = ib(c0 + lag0);
        let len = (c1 - c0) as usize;
        k.dots::<G>(&blk.a[ia(c0)..ia(c1)], &blk.b[j0..j0 + len + G - 1], out);
    }
    for (g, o) in out.iter_mut().enumerate() {
        let lag = lag0 + g as i64;
        let (r0, r1) = (start.max(-lag), end.min(n - lag));
        let mut extra = |from: i64, to: i64| {
            for i in from..to {
                *o += blk.a[ia(i)] * blk.b[ib(i + lag)];
            }
        };
        if common {
            extra(r0, c0);
            extra(c1, r1);
        } else {
            extra(r0, r1);
        }
    }
}

/// `[sum x', sum w' x', sum x'^2]` over the common length, with `w' = w - cw` and `x' = x - cx`:
/// the raw second moments of a scalar with w. Callers run it per steady-state sub-period and per
/// scalar, so one call per array and sub-period gives the means, the covariances with w, the
/// variances and the steady-state sums (instead of one pass per covariance).
///
/// The centres let block-detrended fluctuations be formed on the fly from the series and its mean,
/// with exactly the values a stored `x - mean` would hold, and without writing them; for series
/// that are fluctuations already, pass 0 (subtracting 0 is exact).
///
/// Eight lanes per sum (two AVX2 registers) hide the add latency; products and sums are separate
/// operations (no FMA), and the portable code keeps the same lanes and reduction order, so both
/// paths give bit-identical results.
pub fn pair_sums(w: &[f64], cw: f64, x: &[f64], cx: f64) -> [f64; 3] {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports the feature `pair_sums_avx2` is compiled with.
            return unsafe { pair_sums_avx2(w, cw, x, cx) };
        }
    }
    pair_sums_portable(w, cw, x, cx)
}

/// `((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7))`: the order of the AVX2 reduction.
#[inline(always)]
fn reduce8(s: &[f64; 8]) -> f64 {
    let q = [s[0] + s[4], s[1] + s[5], s[2] + s[6], s[3] + s[7]];
    (q[0] + q[2]) + (q[1] + q[3])
}

#[inline(always)]
fn pair_sums_portable(w: &[f64], cw: f64, x: &[f64], cx: f64) -> [f64; 3] {
    let n = w.len().min(x.len());
    let (w, x) = (&w[..n], &x[..n]);
    let body = n / 8 * 8;
    let (mut s, mut sw, mut sx) = ([0.0f64; 8], [0.0f64; 8], [0.0f64; 8]);
    for (wc, xc) in w[..body].chunks_exact(8).zip(x[..body].chunks_exact(8)) {
        for l in 0..8 {
            let (a, b) = (wc[l] - cw, xc[l] - cx);
            s[l] += b;
            sw[l] += a * b;
            sx[l] += b * b;
        }
    }
    let mut out = [reduce8(&s), reduce8(&sw), reduce8(&sx)];
    for i in body..n {
        let (a, b) = (w[i] - cw, x[i] - cx);
        out[0] += b;
        out[1] += a * b;
        out[2] += b * b;
    }
    out
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn pair_sums_avx2(w: &[f64], cw: f64, x: &[f64], cx: f64) -> [f64; 3] {
    use std::arch::x86_64::{
        __m256d, _mm_add_pd, _mm_add_sd, _mm_cvtsd_f64, _mm_unpackhi_pd, _mm256_add_pd,
        _mm256_castpd256_pd128, _mm256_extractf128_pd, _mm256_loadu_pd, _mm256_mul_pd,
        _mm256_set1_pd, _mm256_setzero_pd, _mm256_sub_pd,
    };
    #[inline]
    #[target_feature(enable = "avx2")]
    fn reduce(lo: __m256d, hi: __m256d) -> f64 {
        let q = _mm256_add_pd(lo, hi);
        let h = _mm_add_pd(_mm256_castpd256_pd128(q), _mm256_extractf128_pd::<1>(q));
        _mm_cvtsd_f64(_mm_add_sd(h, _mm_unpackhi_pd(h, h)))
    }
    let n = w.len().min(x.len());
    let (w, x) = (&w[..n], &x[..n]);
    let body = n / 8 * 8;
    let z = _mm256_setzero_pd();
    let (mut s_a, mut s_b, mut sw_a, mut sw_b, mut sx_a, mut sx_b) = (z, z, z, z, z, z);
    let (pw, px) = (w.as_ptr(), x.as_ptr());
    let (cwv, cxv) = (_mm256_set1_pd(cw), _mm256_set1_pd(cx));
    let mut i = 0;
    while i < body {
        // SAFETY: i + 8 <= body <= n, the length of both slices.
        let (wa, wb, xa, xb) = unsafe {
            (
                _mm256_loadu_pd(pw.add(i)),
                _mm256_loadu_pd(pw.add(i + 4)),
                _mm256_loadu_pd(px.add(i)),
                _mm256_loadu_pd(px.add(i + 4)),
            )
        };
        let (wa, wb) = (_mm256_sub_pd(wa, cwv), _mm256_sub_pd(wb, cwv));
        let (xa, xb) = (_mm256_sub_pd(xa, cxv), _mm256_sub_pd(xb, cxv));
        s_a = _mm256_add_pd(s_a, xa);
        s_b = _mm256_add_pd(s_b, xb);
        sw_a = _mm256_add_pd(sw_a, _mm256_mul_pd(wa, xa));
        sw_b = _mm256_add_pd(sw_b, _mm256_mul_pd(wb, xb));
        sx_a = _mm256_add_pd(sx_a, _mm256_mul_pd(xa, xa));
        sx_b = _mm256_add_pd(sx_b, _mm256_mul_pd(xb, xb));
        i += 8;
    }
    let mut out = [reduce(s_a, s_b), reduce(sw_a, sw_b), reduce(sx_a, sx_b)];
    for i in body..n {
        let (a, b) = (w[i] - cw, x[i] - cx);
        out[0] += b;
        out[1] += a * b;
        out[2] += b * b;
    }
    out
}

/// Sum of the elements.
///
/// Eight partial sums, combined as `((a0 + a4) + (a1 + a5)) + ((a2 + a6) + (a3 + a7))`, then the
/// remainder's own sum. Left to itself the compiler shuffles scalars to evaluate that; the AVX2
/// path holds the partial sums in two registers and reproduces the same order exactly, so both
/// paths give bit-identical results (and every mean of the pipeline is unchanged).
#[inline]
pub fn sum(a: &[f64]) -> f64 {
    // x - 0 is x exactly.
    sum_centred(a, 0.0)
}

/// [`sum`] of `a[i] - c`: exactly the sum of a stored centred copy, without writing it.
#[inline]
pub fn sum_centred(a: &[f64], c: f64) -> f64 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports the feature `sum_avx2` is compiled with.
            return unsafe { sum_avx2(a, c) };
        }
    }
    sum_portable(a, c)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn sum_avx2(a: &[f64], c: f64) -> f64 {
    use std::arch::x86_64::{
        _mm_add_sd, _mm_cvtsd_f64, _mm256_add_pd, _mm256_castpd256_pd128, _mm256_extractf128_pd,
        _mm256_hadd_pd, _mm256_loadu_pd, _mm256_set1_pd, _mm256_setzero_pd, _mm256_sub_pd,
    };
    let body = a.len() / 8 * 8;
    let (mut lo, mut hi) = (_mm256_setzero_pd(), _mm256_setzero_pd());
    let cv = _mm256_set1_pd(c);
    let p = a.as_ptr();
    let mut i = 0;
    while i < body {
        // SAFETY: i + 8 <= body <= a.len().
        let (x, y) = unsafe { (_mm256_loadu_pd(p.add(i)), _mm256_loadu_pd(p.add(i + 4))) };
        lo = _mm256_add_pd(lo, _mm256_sub_pd(x, cv));
        hi = _mm256_add_pd(hi, _mm256_sub_pd(y, cv));
        i += 8;
    }
    // q = (a0 + a4, a1 + a5, a2 + a6, a3 + a7); hadd gives (q0 + q1, _, q2 + q3, _).
    let h = _mm256_hadd_pd(_mm256_add_pd(lo, hi), _mm256_setzero_pd());
    let pairs = _mm_add_sd(_mm256_castpd256_pd128(h), _mm256_extractf128_pd::<1>(h));
    let tail: f64 = a[body..].iter().map(|v| v - c).sum();
    _mm_cvtsd_f64(pairs) + tail
}

#[inline(always)]
fn sum_portable(a: &[f64], c: f64) -> f64 {
    let mut acc = [0.0f64; 8];
    let chunks = a.chunks_exact(8);
    let r = chunks.remainder();
    for x in chunks {
        for k in 0..8 {
            acc[k] += x[k] - c;
        }
    }
    let tail: f64 = r.iter().map(|v| v - c).sum();
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

/// Arithmetic mean; NaN for an empty slice.
#[inline]
pub fn mean(a: &[f64]) -> f64 {
    if a.is_empty() {
        f64::NAN
    } else {
        sum(a) / a.len() as f64
    }
}

/// Covariance of two already-centred series (divides by N, as EddyPro does).
#[inline]
pub fn cov_centred(a: &[f64], b: &[f64]) -> f64 {
    if a.is_empty() {
        f64::NAN
    } else {
        dot(a, b) / a.len() as f64
    }
}

/// Third and fourth standardised moments of a centred series.
pub fn skewness_kurtosis(a: &[f64]) -> (f64, f64) {
    let n = a.len() as f64;
    let (mut m2, mut m3, mut m4) = (0.0, 0.0, 0.0);
    for &x in a {
        let x2 = x * x;
        m2 += x2;
        m3 += x2 * x;
        m4 += x2 * x2;
    }
    m2 /= n;
    m3 /= n;
    m4 /= n;
    if m2 > 0.0 {
        (m3 / m2.powf(1.5), m4 / (m2 * m2))
    } else {
        (f64::NAN, f64::NAN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lagged_dots_match_one_dot_per_lag() {
        let a: Vec<f64> = (0..5000).map(|i| (i as f64 * 0.37).sin()).collect();
        let b: Vec<f64> = (0..5000).map(|i| (i as f64 * 0.11).cos()).collect();
        let mut out = vec![0.0; 21];
        lagged_dots(&a, &b, -10, &mut out);
        for (k, got) in out.iter().enumerate() {
            let lag = k as i64 - 10;
            let l = lag.unsigned_abs() as usize;
            let want = if lag >= 0 {
                dot(&a[..5000 - l], &b[l..])
            } else {
                dot(&a[l..], &b[..5000 - l])
            };
            assert!((got - want).abs() < 1e-9, "lag {lag}");
        }
    }

    /// Every grouping of lags (8, 4, 1), lags beyond the series, short series and block edges, in
    /// both the vector and the portable code, against one plain sum per lag.
    #[test]
    fn lagged_dots_agree_with_naive_sums_in_both_paths() {
        for n in [0usize, 1, 5, 13, 2047, 2048, 2049, 5000] {
            let a: Vec<f64> = (0..n).map(|i| (i as f64 * 0.37).sin() + 0.1).collect();
            let b: Vec<f64> = (0..n).map(|i| (i as f64 * 0.11).cos() - 0.2).collect();
            for (lo, count) in [
                (-20i64, 41usize),
                (-3, 7),
                (0, 13),
                (5, 1),
                (-9000, 3),
                (n as i64 - 2, 5),
            ] {
                let naive: Vec<f64> = (0..count)
                    .map(|k| {
                        let lag = lo + k as i64;
                        (0..n as i64)
                            .filter(|&i| i + lag >= 0 && i + lag < n as i64)
                            .map(|i| a[i as usize] * b[(i + lag) as usize])
                            .sum()
                    })
                    .collect();
                let mut fast = vec![f64::NAN; count];
                lagged_dots(&a, &b, lo, &mut fast);
                let mut portable = vec![f64::NAN; count];
                lagged_dots_impl(
                    &a,
                    &b,
                    None,
                    lo,
                    &mut portable,
                    &mut Vec::new(),
                    PortableLags,
                );
                // Centred on the fly: exactly the products of stored centred copies.
                let (sa, sb): (Vec<f64>, Vec<f64>) =
                    a.iter().zip(&b).map(|(x, y)| (x + 0.7, y - 2.0)).unzip();
                let (ca, cb): (Vec<f64>, Vec<f64>) =
                    sa.iter().zip(&sb).map(|(x, y)| (x - 0.7, y - -2.0)).unzip();
                let mut stored = vec![f64::NAN; count];
                lagged_dots(&ca, &cb, lo, &mut stored);
                let mut centred = vec![f64::NAN; count];
                let mut scratch = Vec::new();
                lagged_dots_centred(&sa, &sb, Some((0.7, -2.0)), lo, &mut centred, &mut scratch);
                assert_eq!(centred, stored, "n {n} lo {lo}");
                for k in 0..count {
                    let tol = 1e-12 * n.max(1) as f64;
                    assert!((fast[k] - naive[k]).abs() <= tol, "n {n} lo {lo} k {k}");
                    assert!((portable[k] - naive[k]).abs() <= tol, "n {n} lo {lo} k {k}");
                }
            }
        }
    }

    #[test]
    fn pair_sums_agree_bit_for_bit_in_both_paths_and_with_naive_sums() {
        for n in 0..70 {
            let w: Vec<f64> = (0..n).map(|i| (i as f64 * 0.37).sin()).collect();
            let x: Vec<f64> = (0..n).map(|i| (i as f64 * 0.11).cos() - 0.3).collect();
            let fast = pair_sums(&w, 0.0, &x, 0.0);
            let portable = pair_sums_portable(&w, 0.0, &x, 0.0);
            assert_eq!(fast.map(f64::to_bits), portable.map(f64::to_bits), "n {n}");
            // Centres give exactly the sums of the stored differences.
            let ws: Vec<f64> = w.iter().map(|a| a + 3.0).collect();
            let xs: Vec<f64> = x.iter().map(|b| b - 7.5).collect();
            let stored_w: Vec<f64> = ws.iter().map(|a| a - 3.0).collect();
            let stored_x: Vec<f64> = xs.iter().map(|b| b - -7.5).collect();
            let centred = pair_sums(&ws, 3.0, &xs, -7.5);
            let stored = pair_sums(&stored_w, 0.0, &stored_x, 0.0);
            assert_eq!(centred.map(f64::to_bits), stored.map(f64::to_bits), "n {n}");
            let centred_portable = pair_sums_portable(&ws, 3.0, &xs, -7.5);
            assert_eq!(
                centred.map(f64::to_bits),
                centred_portable.map(f64::to_bits)
            );
            let naive = [
                x.iter().sum::<f64>(),
                w.iter().zip(&x).map(|(a, b)| a * b).sum::<f64>(),
                x.iter().map(|b| b * b).sum::<f64>(),
            ];
            for k in 0..3 {
                assert!((fast[k] - naive[k]).abs() < 1e-12, "n {n} sum {k}");
            }
        }
    }

    #[test]
    fn dot_and_sum_match_naive_loops_for_every_remainder() {
        for n in 0..40 {
            let a: Vec<f64> = (0..n).map(|i| (i as f64 * 0.37).sin()).collect();
            let b: Vec<f64> = (0..n).map(|i| (i as f64 * 0.11).cos()).collect();
            let naive: f64 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            assert!((dot(&a, &b) - naive).abs() < 1e-12);
            let s: f64 = a.iter().sum();
            assert!((sum(&a) - s).abs() < 1e-12);
            assert_eq!(sum(&a).to_bits(), sum_portable(&a, 0.0).to_bits());
            let stored: Vec<f64> = a.iter().map(|v| v - 0.3).collect();
            assert_eq!(sum_centred(&a, 0.3).to_bits(), sum(&stored).to_bits());
            assert_eq!(sum_portable(&a, 0.3).to_bits(), sum(&stored).to_bits());
        }
        assert!(mean(&[]).is_nan());
    }
}
