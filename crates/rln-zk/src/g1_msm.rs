//! G1 multi-scalar multiplication over fixed bases, with the field arithmetic of a batch of
//! affine additions done eight lanes at a time (AVX-512 IFMA, see [`crate::fq8`]).
//!
//! The method is the one of [`crate::msm`]: window shifts precomputed, one set of signed
//! buckets, affine bucket additions batched so that they share one inversion. What changes is
//! how a batch is computed: its additions are independent, so eight go through each vector
//! multiplication. Montgomery's trick runs as eight interleaved chains, one per lane, and the
//! eight lane products are inverted together with one field inversion.
//!
//! A batch where some addition has equal x-coordinates (a doubling, or a point and its
//! negation) has a zero product and no inverse. Such a batch is redone one addition at a time
//! with arkworks' complete formulas: rare for real keys, but the answer stays right for any
//! bases and scalars. Without IFMA, or with an identity point among the bases,
//! [`G1Msm`] is the portable [`FixedBaseMsm`].

use ark_bn254::{g1::Config as G1Config, Fr, G1Affine, G1Projective};

use crate::msm::FixedBaseMsm;

/// Precomputed window shifts of fixed G1 bases, summed with 8-lane arithmetic where the CPU
/// allows.
pub struct G1Msm {
    inner: Inner,
}

enum Inner {
    Portable(FixedBaseMsm<G1Config>),
    #[cfg(target_arch = "x86_64")]
    Wide(wide::Table),
}

impl std::fmt::Debug for G1Msm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("G1Msm")
            .field("wide", &self.is_wide())
            .finish_non_exhaustive()
    }
}

impl G1Msm {
    /// Precomputes the window shifts of `bases` for windows of `window` bits (4 to 16), for
    /// the 8-lane path when the CPU has AVX-512 IFMA.
    pub fn new(bases: &[G1Affine], window: usize) -> Self {
        #[cfg(target_arch = "x86_64")]
        if let Some(table) = wide::Table::new(bases, window) {
            return Self {
                inner: Inner::Wide(table),
            };
        }
        Self::portable(bases, window)
    }

    /// The portable path whatever the CPU: the reference the 8-lane path is tested against.
    pub fn portable(bases: &[G1Affine], window: usize) -> Self {
        Self {
            inner: Inner::Portable(FixedBaseMsm::new(bases, window)),
        }
    }

    /// Whether the 8-lane path is in use.
    pub fn is_wide(&self) -> bool {
        match self.inner {
            Inner::Portable(_) => false,
            #[cfg(target_arch = "x86_64")]
            Inner::Wide(_) => true,
        }
    }

    /// `Σ scalars[i] · base_i`. Extra scalars are ignored; missing ones count as zero.
    pub fn msm(&self, scalars: &[Fr]) -> G1Projective {
        match &self.inner {
            Inner::Portable(msm) => msm.msm(scalars),
            #[cfg(target_arch = "x86_64")]
            Inner::Wide(table) => table.msm(scalars),
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod wide {
    use ark_bn254::{Fq, Fr, G1Affine, G1Projective};
    use ark_ec::{AffineRepr, CurveGroup};
    use ark_ff::{batch_inversion, PrimeField, Zero};
    use rayon::prelude::*;

    use crate::fq8::{self, Columns, Fq8, Limbs, LANES};
    use crate::msm::{
        combine_buckets, for_each_digit, thread_ranges, window_shifts, SCALAR_BITS, TABLE_CHUNK,
    };

    /// An affine point other than the identity, coordinates below `2p` in [`fq8`]'s form.
    #[derive(Clone, Copy, Default)]
    struct Point {
        x: Limbs,
        y: Limbs,
    }

    impl Point {
        fn negate(&self) -> Self {
            Self {
                x: self.x,
                y: fq8::negate(&self.y),
            }
        }
    }

    #[target_feature(enable = "avx512f,avx512ifma")]
    fn to_affine(point: &Point) -> G1Affine {
        G1Affine::new_unchecked(
            fq8::one_to_arkworks(&point.x),
            fq8::one_to_arkworks(&point.y),
        )
    }

    #[target_feature(enable = "avx512f,avx512ifma")]
    fn from_affine(point: &G1Affine) -> Point {
        Point {
            x: fq8::one_from_arkworks(point.x),
            y: fq8::one_from_arkworks(point.y),
        }
    }

    /// `points` (no identity among them) in our form, eight at a time.
    #[target_feature(enable = "avx512f,avx512ifma")]
    fn convert(points: &[G1Affine], out: &mut [Point]) {
        for (from, to) in points.chunks(LANES).zip(out.chunks_mut(LANES)) {
            let xs: Vec<Fq> = from.iter().map(|p| p.x).collect();
            let ys: Vec<Fq> = from.iter().map(|p| p.y).collect();
            let (xs, ys) = (fq8::from_arkworks(&xs), fq8::from_arkworks(&ys));
            for (k, point) in to.iter_mut().enumerate() {
                *point = Point { x: xs[k], y: ys[k] };
            }
        }
    }

    pub(super) struct Table {
        window: usize,
        windows: usize,
        len: usize,
        /// `points[i * windows + j] = 2^(window·j) · base_i`.
        points: Vec<Point>,
    }

    impl Table {
        /// `None` without IFMA, or with an identity point among `bases` (it has no affine
        /// coordinates to store).
        pub(super) fn new(bases: &[G1Affine], window: usize) -> Option<Self> {
            if !fq8::available() || bases.iter().any(|b| b.is_zero()) {
                return None;
            }
            let window = window.clamp(4, 16);
            let windows = SCALAR_BITS.div_ceil(window);
            let mut points = vec![Point::default(); bases.len() * windows];
            points
                .par_chunks_mut(TABLE_CHUNK * windows)
                .zip(bases.par_chunks(TABLE_CHUNK))
                .for_each(|(out, chunk)| {
                    // Multiples of points of prime order are never the identity.
                    let shifts = window_shifts(chunk, window);
                    // SAFETY: `fq8::available()` said the CPU has the instructions.
                    unsafe { convert(&shifts, out) }
                });
            Some(Self {
                window,
                windows,
                len: bases.len(),
                points,
            })
        }

        pub(super) fn msm(&self, scalars: &[Fr]) -> G1Projective {
            let n = self.len.min(scalars.len());
            if n == 0 {
                return G1Projective::zero();
            }
            thread_ranges(n, self.window)
                .into_par_iter()
                // SAFETY: a `Table` exists only where `fq8::available()` said yes.
                .map(|(start, end)| unsafe { self.accumulate(&scalars[start..end], start) })
                .sum()
        }

        #[target_feature(enable = "avx512f,avx512ifma")]
        fn accumulate(&self, scalars: &[Fr], first: usize) -> G1Projective {
            let c = self.window;
            let mut buckets = Buckets::new(1 << (c - 1));
            let mut digits: Vec<(usize, i64)> = Vec::with_capacity(self.windows);
            for (i, scalar) in scalars.iter().enumerate() {
                if scalar.is_zero() {
                    continue;
                }
                digits.clear();
                for_each_digit(&scalar.into_bigint(), c, |j, digit| digits.push((j, digit)));
                let row = (first + i) * self.windows;
                for &(j, digit) in &digits {
                    let point = &self.points[row + j];
                    let bucket = digit.unsigned_abs() as usize - 1;
                    if digit > 0 {
                        buckets.add(bucket, *point);
                    } else {
                        buckets.add(bucket, point.negate());
                    }
                    if buckets.len == buckets.capacity {
                        buckets.flush();
                    }
                }
            }
            buckets.finish()
        }
    }

    /// Below this many additions, a final batch is not worth its inversion.
    const TAIL_BATCH: usize = 64;

    /// Affine buckets whose pending additions are laid out in columns for the vector unit.
    struct Buckets {
        points: Vec<Point>,
        occupied: Vec<bool>,
        busy: Vec<bool>,
        /// Points that found their bucket busy and the waiting list full.
        overflow: Vec<G1Projective>,
        waiting: Vec<(usize, Point)>,
        /// The batch: entry `k` adds `(x2, y2)` to bucket `targets[k]`, now `(x1, y1)`.
        targets: Vec<usize>,
        x1: Columns,
        y1: Columns,
        x2: Columns,
        y2: Columns,
        deltas: Vec<Fq8>,
        products: Vec<Fq8>,
        len: usize,
        capacity: usize,
    }

    impl Buckets {
        fn new(count: usize) -> Self {
            let capacity = (count / 4).clamp(16, 1024).next_multiple_of(LANES);
            Self {
                points: vec![Point::default(); count],
                occupied: vec![false; count],
                busy: vec![false; count],
                overflow: vec![G1Projective::zero(); count],
                waiting: Vec::new(),
                targets: Vec::with_capacity(capacity),
                x1: Columns::new(capacity),
                y1: Columns::new(capacity),
                x2: Columns::new(capacity),
                y2: Columns::new(capacity),
                deltas: Vec::with_capacity(capacity / LANES),
                products: Vec::with_capacity(capacity / LANES),
                len: 0,
                capacity,
            }
        }

        #[target_feature(enable = "avx512f,avx512ifma")]
        fn add(&mut self, bucket: usize, point: Point) {
            if self.busy[bucket] {
                if self.waiting.len() < self.capacity {
                    self.waiting.push((bucket, point));
                } else {
                    self.overflow[bucket] += to_affine(&point);
                }
            } else if !self.occupied[bucket] {
                self.points[bucket] = point;
                self.occupied[bucket] = true;
            } else {
                let k = self.len;
                let current = &self.points[bucket];
                self.x1.set(k, &current.x);
                self.y1.set(k, &current.y);
                self.x2.set(k, &point.x);
                self.y2.set(k, &point.y);
                self.targets.push(bucket);
                self.busy[bucket] = true;
                self.len += 1;
            }
        }

        #[target_feature(enable = "avx512f,avx512ifma")]
        fn flush(&mut self) {
            if self.len > 0 {
                if !self.add_batch() {
                    self.add_one_by_one();
                }
                for bucket in self.targets.drain(..) {
                    self.busy[bucket] = false;
                }
                self.len = 0;
            }
            // Points that waited for a bucket of this batch go into the next one.
            for (bucket, point) in std::mem::take(&mut self.waiting) {
                self.add(bucket, point);
            }
        }

        /// The batch with one inversion; `false` (buckets untouched) when some addition has
        /// equal x-coordinates.
        #[target_feature(enable = "avx512f,avx512ifma")]
        fn add_batch(&mut self) -> bool {
            let rows = self.len.div_ceil(LANES);
            // Padding lanes add (1, 0) to (0, 0): a non-zero difference, result unused.
            for k in self.len..rows * LANES {
                self.x1.set(k, &[0; 5]);
                self.y1.set(k, &[0; 5]);
                self.x2.set(k, &fq8::ONE);
                self.y2.set(k, &[0; 5]);
            }
            self.deltas.clear();
            self.products.clear();
            for row in 0..rows {
                let delta = self.x2.load(row).sub(self.x1.load(row));
                let product = match self.products.last() {
                    Some(previous) => previous.mul(delta),
                    None => delta,
                };
                self.deltas.push(delta);
                self.products.push(product);
            }
            let Some(last) = self.products.last() else {
                return true;
            };
            let mut lanes = Columns::new(LANES);
            lanes.store(0, *last);
            let limbs: Vec<Limbs> = (0..LANES).map(|k| lanes.get(k)).collect();
            let mut totals = fq8::to_arkworks(&limbs);
            if totals.iter().any(|t| t.is_zero()) {
                return false;
            }
            batch_inversion(&mut totals);
            for (k, inverse) in fq8::from_arkworks(&totals).iter().enumerate() {
                lanes.set(k, inverse);
            }
            // inverse = 1 / (delta_0 · … · delta_row), lane by lane.
            let mut inverse = lanes.load(0);
            for row in (0..rows).rev() {
                let delta_inverse = match row {
                    0 => inverse,
                    _ => {
                        let own = inverse.mul(self.products[row - 1]);
                        inverse = inverse.mul(self.deltas[row]);
                        own
                    }
                };
                let (x1, y1) = (self.x1.load(row), self.y1.load(row));
                let (x2, y2) = (self.x2.load(row), self.y2.load(row));
                let lambda = y2.sub(y1).mul(delta_inverse);
                let x3 = lambda.mul(lambda).sub_4p(x1.add(x2)).reduce_6p();
                let y3 = lambda.mul(x1.sub(x3)).sub(y1).reduce_4p();
                self.x1.store(row, x3);
                self.y1.store(row, y3);
            }
            for (k, bucket) in self.targets.iter().enumerate() {
                self.points[*bucket] = Point {
                    x: self.x1.get(k),
                    y: self.y1.get(k),
                };
            }
            true
        }

        /// The batch with arkworks' complete formulas, for doublings and cancellations.
        #[target_feature(enable = "avx512f,avx512ifma")]
        fn add_one_by_one(&mut self) {
            for (k, bucket) in self.targets.iter().enumerate() {
                let current = to_affine(&Point {
                    x: self.x1.get(k),
                    y: self.y1.get(k),
                });
                let point = to_affine(&Point {
                    x: self.x2.get(k),
                    y: self.y2.get(k),
                });
                let sum = (current + point).into_affine();
                if sum.is_zero() {
                    self.occupied[*bucket] = false;
                } else {
                    self.points[*bucket] = from_affine(&sum);
                }
            }
        }

        /// `Σ (d+1)·bucket_d`, by running sums from the top.
        #[target_feature(enable = "avx512f,avx512ifma")]
        fn finish(mut self) -> G1Projective {
            while self.len > 0 || !self.waiting.is_empty() {
                if self.len < TAIL_BATCH {
                    // What is left piles onto a few buckets (small scalars share digits):
                    // a batch per point would pay an inversion each.
                    for (bucket, point) in std::mem::take(&mut self.waiting) {
                        self.overflow[bucket] += to_affine(&point);
                    }
                }
                self.flush();
            }
            let mut affine = vec![G1Affine::identity(); self.points.len()];
            let mut index = 0;
            for group in self.points.chunks(LANES) {
                let xs: Vec<Limbs> = group.iter().map(|p| p.x).collect();
                let ys: Vec<Limbs> = group.iter().map(|p| p.y).collect();
                let (xs, ys) = (fq8::to_arkworks(&xs), fq8::to_arkworks(&ys));
                for k in 0..group.len() {
                    if self.occupied[index] {
                        affine[index] = G1Affine::new_unchecked(xs[k], ys[k]);
                    }
                    index += 1;
                }
            }
            combine_buckets(&affine, &self.overflow)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msm::tests::{pile_up, scalars};
    use ark_ec::{CurveGroup, VariableBaseMSM};
    use ark_ff::{One, UniformRand, Zero};
    use ark_std::rand::SeedableRng;

    #[test]
    fn equals_arkworks_and_the_portable_path() {
        let mut rng = ark_std::rand::rngs::StdRng::seed_from_u64(11);
        for (n, window) in [(1, 4), (7, 5), (300, 8), (2000, 13)] {
            let bases: Vec<G1Affine> = (0..n)
                .map(|_| G1Projective::rand(&mut rng).into_affine())
                .collect();
            let s = scalars(n, &mut rng);
            let expected = G1Projective::msm(&bases, &s).unwrap();
            let wide = G1Msm::new(&bases, window);
            assert_eq!(wide.msm(&s), expected, "n {n}");
            assert_eq!(G1Msm::portable(&bases, window).msm(&s), expected);
            assert_eq!(
                wide.msm(&s[..n / 2]),
                G1Projective::msm(&bases[..n / 2], &s[..n / 2]).unwrap()
            );
            // Random full-size scalars only: no batch falls back.
            let r: Vec<Fr> = (0..n).map(|_| Fr::rand(&mut rng)).collect();
            assert_eq!(wide.msm(&r), G1Projective::msm(&bases, &r).unwrap());
        }
        assert!(G1Msm::new(&[], 8).msm(&[Fr::one()]).is_zero());
    }

    #[test]
    fn doublings_cancellations_and_pile_ups() {
        // Equal points meet in a bucket (the batch falls back to complete formulas),
        // opposite ones cancel, and more points than a batch holds pile onto one bucket
        // (waiting list, then overflow).
        let (bases, s) = pile_up();
        for window in [4, 8, 13] {
            let wide = G1Msm::new(&bases, window);
            assert_eq!(wide.msm(&s), G1Projective::msm(&bases, &s).unwrap());
        }
        // An identity point among the bases: the portable path takes it.
        let mut with_zero = bases[..10].to_vec();
        with_zero[3] = G1Affine::identity();
        let msm = G1Msm::new(&with_zero, 6);
        assert!(!msm.is_wide());
        assert_eq!(
            msm.msm(&s[..10]),
            G1Projective::msm(&with_zero, &s[..10]).unwrap()
        );
    }

    #[test]
    fn the_wide_path_is_taken_where_the_cpu_has_ifma() {
        let mut rng = ark_std::rand::rngs::StdRng::seed_from_u64(13);
        let bases: Vec<G1Affine> = (0..8)
            .map(|_| G1Projective::rand(&mut rng).into_affine())
            .collect();
        #[cfg(target_arch = "x86_64")]
        assert_eq!(G1Msm::new(&bases, 4).is_wide(), crate::fq8::available());
        assert!(!G1Msm::portable(&bases, 4).is_wide());
    }
}
