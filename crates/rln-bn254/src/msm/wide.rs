//! Multi-scalar multiplication over fixed bases in G1 and G2, with the field arithmetic of a
//! batch of affine additions done eight lanes at a time (AVX-512 IFMA, see [`crate::lanes`]).
//!
//! The method is the one of [`crate::msm`]: window shifts precomputed, one set of signed
//! buckets, affine bucket additions batched so that they share one inversion. What changes is
//! how a batch is computed: its additions are independent, so eight go through each vector
//! multiplication. Montgomery's trick runs as eight interleaved chains, one per lane, and the
//! eight lane products are inverted together with one field inversion. G1's coordinates are
//! in `Fq`, G2's in `Fq2`; the code is the same for both, over [`Coordinates`].
//!
//! A batch where some addition has equal x-coordinates (a doubling, or a point and its
//! negation) has a zero product and no inverse. Such a batch is redone one addition at a time
//! with arkworks' complete formulas: rare for real keys, but the answer stays right for any
//! bases and scalars. Without an [`Ifma`] token, or with an identity point among the bases,
//! a [`WideMsm`] is the portable [`FixedBaseMsm`].
//!
//! Each core fills its own buckets from its share of the scalars. The cores' buckets are then
//! added together in batches, and the combination of the summed buckets (running sums,
//! serial within a range) is split into one range of buckets per core: a range starting at
//! bucket `lo` contributes its own weighted sum plus `lo` times its plain sum. Before this,
//! every core combined all its buckets, which for the quotient's 4,096 buckets was about a
//! quarter of the multiplication.

use ark_bn254::{g1::Config as G1Config, g2::Config as G2Config, Fq, Fq2, Fr};
use ark_ec::short_weierstrass::{Affine, Projective, SWCurveConfig};

use super::FixedBaseMsm;
use crate::cpu::Ifma;

/// A field whose elements have `K` components in the base field: `Fq` (`K = 1`) and `Fq2`
/// (`K = 2`), the coordinate fields of G1 and G2.
pub trait Coordinates<const K: usize>: ark_ff::Field {
    /// The components, constant term first.
    fn components(&self) -> [Fq; K];
    /// The element with these components.
    fn from_components(components: [Fq; K]) -> Self;
}

impl Coordinates<1> for Fq {
    fn components(&self) -> [Fq; 1] {
        [*self]
    }
    fn from_components(components: [Fq; 1]) -> Self {
        components[0]
    }
}

impl Coordinates<2> for Fq2 {
    fn components(&self) -> [Fq; 2] {
        [self.c0, self.c1]
    }
    fn from_components(components: [Fq; 2]) -> Self {
        Fq2::new(components[0], components[1])
    }
}

/// Precomputed window shifts of fixed bases on a curve whose coordinates have `K`
/// components, summed with 8-lane arithmetic where the CPU allows.
pub struct WideMsm<C: SWCurveConfig<ScalarField = Fr>, const K: usize>
where
    C::BaseField: Coordinates<K>,
{
    inner: Inner<C, K>,
}

/// Fixed-base multiplications in G1.
pub type G1Msm = WideMsm<G1Config, 1>;
/// Fixed-base multiplications in G2.
pub type G2Msm = WideMsm<G2Config, 2>;

enum Inner<C: SWCurveConfig<ScalarField = Fr>, const K: usize>
where
    C::BaseField: Coordinates<K>,
{
    Portable(FixedBaseMsm<C>),
    #[cfg(target_arch = "x86_64")]
    Wide(table::Table<C, K>),
}

impl<C: SWCurveConfig<ScalarField = Fr>, const K: usize> std::fmt::Debug for WideMsm<C, K>
where
    C::BaseField: Coordinates<K>,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WideMsm")
            .field("components", &K)
            .field("wide", &self.is_wide())
            .finish_non_exhaustive()
    }
}

impl<C: SWCurveConfig<ScalarField = Fr>, const K: usize> WideMsm<C, K>
where
    C::BaseField: Coordinates<K>,
{
    /// Precomputes the window shifts of `bases` for windows of `window` bits (4 to 16), for
    /// the 8-lane path where detection hands out an [`Ifma`] token.
    pub fn new(bases: &[Affine<C>], window: usize) -> Self {
        Self::with_lanes(bases, window, Ifma::detect())
    }

    /// As [`WideMsm::new`], on the 8-lane path exactly when `ifma` is given (and no base is
    /// the identity).
    pub fn with_lanes(bases: &[Affine<C>], window: usize, ifma: Option<Ifma>) -> Self {
        #[cfg(target_arch = "x86_64")]
        if let Some(table) = ifma.and_then(|ifma| table::Table::new(ifma, bases, window)) {
            return Self {
                inner: Inner::Wide(table),
            };
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = ifma;
        Self::portable(bases, window)
    }

    /// The portable path whatever the CPU: the reference the 8-lane path is tested against.
    pub fn portable(bases: &[Affine<C>], window: usize) -> Self {
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
    pub fn msm(&self, scalars: &[Fr]) -> Projective<C> {
        match &self.inner {
            Inner::Portable(msm) => msm.msm(scalars),
            #[cfg(target_arch = "x86_64")]
            Inner::Wide(table) => table.msm(scalars),
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod table {
    use ark_bn254::Fr;
    use ark_ec::short_weierstrass::{Affine, Projective, SWCurveConfig};
    use ark_ec::{AffineRepr, CurveGroup};
    use ark_ff::{PrimeField, Zero};
    use rayon::prelude::*;

    use super::Coordinates;
    use crate::cpu::Ifma;
    use crate::lanes::ext::{self as ext8, Element, Ext8, ExtColumns};
    use crate::lanes::{FqModulus, Modulus, LANES, LIMBS};
    use crate::msm::{
        combine_buckets_parallel, for_each_digit, invert_all, thread_ranges, window_shifts,
        SCALAR_BITS, TABLE_CHUNK,
    };

    /// An affine point other than the identity, coordinates in the form of [`ext8`].
    #[derive(Clone, Copy)]
    struct Point<const K: usize> {
        x: Element<K>,
        y: Element<K>,
    }

    impl<const K: usize> Point<K> {
        const ZERO: Self = Self {
            x: [[0; LIMBS]; K],
            y: [[0; LIMBS]; K],
        };

        fn negate(&self) -> Self {
            Self {
                x: self.x,
                y: ext8::negate(&self.y),
            }
        }
    }

    #[target_feature(enable = "avx512f,avx512ifma")]
    fn to_affine<C: SWCurveConfig, const K: usize>(point: &Point<K>) -> Affine<C>
    where
        C::BaseField: Coordinates<K>,
    {
        let x = ext8::to_arkworks::<C::BaseField, K>(std::slice::from_ref(&point.x))[0];
        let y = ext8::to_arkworks::<C::BaseField, K>(std::slice::from_ref(&point.y))[0];
        Affine::new_unchecked(x, y)
    }

    #[target_feature(enable = "avx512f,avx512ifma")]
    fn from_affine<C: SWCurveConfig, const K: usize>(point: &Affine<C>) -> Point<K>
    where
        C::BaseField: Coordinates<K>,
    {
        Point {
            x: ext8::from_arkworks(&[point.x])[0],
            y: ext8::from_arkworks(&[point.y])[0],
        }
    }

    /// `points` (no identity among them) in our form, eight at a time.
    #[target_feature(enable = "avx512f,avx512ifma")]
    fn convert<C: SWCurveConfig, const K: usize>(points: &[Affine<C>], out: &mut [Point<K>])
    where
        C::BaseField: Coordinates<K>,
    {
        for (from, to) in points.chunks(LANES).zip(out.chunks_mut(LANES)) {
            let xs: Vec<C::BaseField> = from.iter().map(|p| p.x).collect();
            let ys: Vec<C::BaseField> = from.iter().map(|p| p.y).collect();
            let (xs, ys) = (ext8::from_arkworks(&xs), ext8::from_arkworks(&ys));
            for (k, point) in to.iter_mut().enumerate() {
                *point = Point { x: xs[k], y: ys[k] };
            }
        }
    }

    pub(super) struct Table<C, const K: usize> {
        /// What makes the 8-lane methods sound to call.
        _ifma: Ifma,
        window: usize,
        windows: usize,
        len: usize,
        /// `points[i * windows + j] = 2^(window·j) · base_i`.
        points: Vec<Point<K>>,
        curve: std::marker::PhantomData<C>,
    }

    impl<C: SWCurveConfig<ScalarField = Fr>, const K: usize> Table<C, K>
    where
        C::BaseField: Coordinates<K>,
    {
        /// `None` with an identity point among `bases` (it has no affine coordinates to
        /// store). The token is kept: the table's methods run IFMA instructions on its word.
        pub(super) fn new(ifma: Ifma, bases: &[Affine<C>], window: usize) -> Option<Self> {
            if bases.iter().any(|b| b.is_zero()) {
                return None;
            }
            let window = window.clamp(4, 16);
            let windows = SCALAR_BITS.div_ceil(window);
            let mut points = vec![Point::ZERO; bases.len() * windows];
            points
                .par_chunks_mut(TABLE_CHUNK * windows)
                .zip(bases.par_chunks(TABLE_CHUNK))
                .for_each(|(out, chunk)| {
                    // Multiples of points of prime order are never the identity.
                    let shifts = window_shifts(chunk, window);
                    // SAFETY: the `Ifma` token shows the CPU has AVX-512F and AVX-512 IFMA.
                    unsafe { convert(&shifts, out) }
                });
            Some(Self {
                _ifma: ifma,
                window,
                windows,
                len: bases.len(),
                points,
                curve: std::marker::PhantomData,
            })
        }

        pub(super) fn msm(&self, scalars: &[Fr]) -> Projective<C> {
            let n = self.len.min(scalars.len());
            if n == 0 {
                return Projective::zero();
            }
            let mut parts: Vec<Buckets<C, K>> = thread_ranges(n, self.window)
                .into_par_iter()
                // SAFETY: a `Table` holds an `Ifma` token, so the CPU has AVX-512F and
                // AVX-512 IFMA.
                .map(|(start, end)| unsafe { self.accumulate(&scalars[start..end], start) })
                .collect();
            let Some(mut merged) = parts.pop() else {
                return Projective::zero();
            };
            // The threads' buckets are added together in batches (cheap), and the combined
            // buckets' weighted sum, the long serial part, is split over the cores.
            // SAFETY: as above.
            let (affine, overflow) = unsafe {
                for other in parts {
                    merged.absorb(other);
                }
                merged.settle()
            };
            combine_buckets_parallel(&affine, &overflow)
        }

        #[target_feature(enable = "avx512f,avx512ifma")]
        fn accumulate(&self, scalars: &[Fr], first: usize) -> Buckets<C, K> {
            let c = self.window;
            let mut buckets = Buckets::<C, K>::new(1 << (c - 1));
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
            buckets
        }
    }

    /// Below this many additions, a final batch is not worth its inversion.
    const TAIL_BATCH: usize = 64;

    /// Affine buckets whose pending additions are laid out in columns for the vector unit.
    struct Buckets<C: SWCurveConfig, const K: usize> {
        points: Vec<Point<K>>,
        occupied: Vec<bool>,
        busy: Vec<bool>,
        /// Points that found their bucket busy and the waiting list full.
        overflow: Vec<Projective<C>>,
        waiting: Vec<(usize, Point<K>)>,
        /// The batch: entry `k` adds `(x2, y2)` to bucket `targets[k]`, now `(x1, y1)`.
        targets: Vec<usize>,
        x1: ExtColumns<K>,
        y1: ExtColumns<K>,
        x2: ExtColumns<K>,
        y2: ExtColumns<K>,
        deltas: Vec<Ext8<K>>,
        products: Vec<Ext8<K>>,
        len: usize,
        capacity: usize,
    }

    impl<C: SWCurveConfig, const K: usize> Buckets<C, K>
    where
        C::BaseField: Coordinates<K>,
    {
        fn new(count: usize) -> Self {
            // A batch holds at most one addition per bucket; every batch pays one inversion.
            // Half the buckets was measured best: a quarter paid twice the inversions in the
            // small per-message queries, all of them overflowed the waiting list.
            let capacity = (count / 2).clamp(16, 1024).next_multiple_of(LANES);
            Self {
                points: vec![Point::ZERO; count],
                occupied: vec![false; count],
                busy: vec![false; count],
                overflow: vec![Projective::zero(); count],
                waiting: Vec::new(),
                targets: Vec::with_capacity(capacity),
                x1: ExtColumns::new(capacity),
                y1: ExtColumns::new(capacity),
                x2: ExtColumns::new(capacity),
                y2: ExtColumns::new(capacity),
                deltas: Vec::with_capacity(capacity / LANES),
                products: Vec::with_capacity(capacity / LANES),
                len: 0,
                capacity,
            }
        }

        #[target_feature(enable = "avx512f,avx512ifma")]
        fn add(&mut self, bucket: usize, point: Point<K>) {
            if self.busy[bucket] {
                if self.waiting.len() < self.capacity {
                    self.waiting.push((bucket, point));
                } else {
                    self.overflow[bucket] += to_affine::<C, K>(&point);
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
            let zero = [[0; LIMBS]; K];
            let mut one = zero;
            one[0] = FqModulus::ONE;
            for k in self.len..rows * LANES {
                self.x1.set(k, &zero);
                self.y1.set(k, &zero);
                self.x2.set(k, &one);
                self.y2.set(k, &zero);
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
            let mut lanes = ExtColumns::<K>::new(LANES);
            lanes.store(0, *last);
            let elements: Vec<Element<K>> = (0..LANES).map(|k| lanes.get(k)).collect();
            let mut totals = ext8::to_arkworks::<C::BaseField, K>(&elements);
            if totals.iter().any(|t| t.is_zero()) {
                return false;
            }
            invert_all(&mut totals);
            for (k, inverse) in ext8::from_arkworks(&totals).iter().enumerate() {
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
                let x3 = lambda.square().sub_4p(x1.add(x2)).reduce_6p();
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
                let current = to_affine::<C, K>(&Point {
                    x: self.x1.get(k),
                    y: self.y1.get(k),
                });
                let point = to_affine::<C, K>(&Point {
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

        /// Adds the buckets of `other` (of the same size) into these.
        #[target_feature(enable = "avx512f,avx512ifma")]
        fn absorb(&mut self, mut other: Self) {
            other.drain();
            for bucket in 0..self.points.len().min(other.points.len()) {
                if other.occupied[bucket] {
                    self.add(bucket, other.points[bucket]);
                    if self.len == self.capacity {
                        self.flush();
                    }
                }
                self.overflow[bucket] += other.overflow[bucket];
            }
        }

        /// Runs the pending additions and the waiting list down to none.
        #[target_feature(enable = "avx512f,avx512ifma")]
        fn drain(&mut self) {
            while self.len > 0 || !self.waiting.is_empty() {
                if self.len < TAIL_BATCH {
                    // What is left piles onto a few buckets (small scalars share digits):
                    // a batch per point would pay an inversion each.
                    for (bucket, point) in std::mem::take(&mut self.waiting) {
                        self.overflow[bucket] += to_affine::<C, K>(&point);
                    }
                }
                self.flush();
            }
        }

        /// The buckets as arkworks points, and the overflow beside them.
        #[target_feature(enable = "avx512f,avx512ifma")]
        fn settle(mut self) -> (Vec<Affine<C>>, Vec<Projective<C>>) {
            self.drain();
            let mut affine = vec![Affine::<C>::identity(); self.points.len()];
            let mut index = 0;
            for group in self.points.chunks(LANES) {
                let xs: Vec<Element<K>> = group.iter().map(|p| p.x).collect();
                let ys: Vec<Element<K>> = group.iter().map(|p| p.y).collect();
                let xs = ext8::to_arkworks::<C::BaseField, K>(&xs);
                let ys = ext8::to_arkworks::<C::BaseField, K>(&ys);
                for k in 0..group.len() {
                    if self.occupied[index] {
                        affine[index] = Affine::new_unchecked(xs[k], ys[k]);
                    }
                    index += 1;
                }
            }
            (affine, self.overflow)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::Ifma;
    use crate::msm::tests::{pile_up, scalars};
    use ark_ec::{CurveGroup, VariableBaseMSM};
    use ark_ff::{One, UniformRand, Zero};
    use ark_std::rand::SeedableRng;

    /// Both paths against arkworks on `n` random bases, with the mixed scalars (zeros, ±1,
    /// small) and with random full-size ones (no batch falls back then).
    fn check_against_arkworks<C: SWCurveConfig<ScalarField = Fr>, const K: usize>(
        sizes: &[(usize, usize)],
    ) where
        C::BaseField: Coordinates<K>,
    {
        let mut rng = ark_std::rand::rngs::StdRng::seed_from_u64(11);
        for &(n, window) in sizes {
            let bases: Vec<Affine<C>> = (0..n)
                .map(|_| Projective::<C>::rand(&mut rng).into_affine())
                .collect();
            let s = scalars(n, &mut rng);
            let expected = Projective::<C>::msm(&bases, &s).unwrap();
            let wide = WideMsm::<C, K>::new(&bases, window);
            assert_eq!(wide.msm(&s), expected, "n {n}, K {K}");
            assert_eq!(WideMsm::<C, K>::portable(&bases, window).msm(&s), expected);
            assert_eq!(
                wide.msm(&s[..n / 2]),
                Projective::<C>::msm(&bases[..n / 2], &s[..n / 2]).unwrap()
            );
            let r: Vec<Fr> = (0..n).map(|_| Fr::rand(&mut rng)).collect();
            assert_eq!(wide.msm(&r), Projective::<C>::msm(&bases, &r).unwrap());
        }
        assert!(WideMsm::<C, K>::new(&[], 8).msm(&[Fr::one()]).is_zero());
    }

    /// Equal points meet in a bucket (the batch falls back to complete formulas), opposite
    /// ones cancel, and more points than a batch holds pile onto one bucket (waiting list,
    /// then overflow). An identity point among the bases sends them to the portable path.
    fn check_pile_ups<C: SWCurveConfig<ScalarField = Fr>, const K: usize>()
    where
        C::BaseField: Coordinates<K>,
    {
        let (bases, s) = pile_up::<C>();
        for window in [4, 8, 13] {
            let wide = WideMsm::<C, K>::new(&bases, window);
            assert_eq!(wide.msm(&s), Projective::<C>::msm(&bases, &s).unwrap());
        }
        let mut with_zero = bases[..10].to_vec();
        with_zero[3] = Affine::<C>::identity();
        let msm = WideMsm::<C, K>::new(&with_zero, 6);
        assert!(!msm.is_wide());
        assert_eq!(
            msm.msm(&s[..10]),
            Projective::<C>::msm(&with_zero, &s[..10]).unwrap()
        );
    }

    #[test]
    fn g1_equals_arkworks_and_the_portable_path() {
        check_against_arkworks::<G1Config, 1>(&[(1, 4), (7, 5), (300, 8), (2000, 13)]);
    }

    #[test]
    fn g2_equals_arkworks_and_the_portable_path() {
        check_against_arkworks::<G2Config, 2>(&[(1, 4), (7, 5), (300, 8), (1000, 12)]);
    }

    #[test]
    fn doublings_cancellations_and_pile_ups() {
        check_pile_ups::<G1Config, 1>();
        check_pile_ups::<G2Config, 2>();
    }

    #[test]
    fn the_wide_path_is_taken_where_the_cpu_has_ifma() {
        let mut rng = ark_std::rand::rngs::StdRng::seed_from_u64(13);
        let g1: Vec<Affine<G1Config>> = (0..8)
            .map(|_| Projective::<G1Config>::rand(&mut rng).into_affine())
            .collect();
        let g2: Vec<Affine<G2Config>> = (0..8)
            .map(|_| Projective::<G2Config>::rand(&mut rng).into_affine())
            .collect();
        #[cfg(target_arch = "x86_64")]
        {
            assert_eq!(G1Msm::new(&g1, 4).is_wide(), Ifma::detect().is_some());
            assert_eq!(G2Msm::new(&g2, 4).is_wide(), Ifma::detect().is_some());
            assert!(!G1Msm::with_lanes(&g1, 4, None).is_wide());
        }
        assert!(!G1Msm::portable(&g1, 4).is_wide());
        assert!(!G2Msm::portable(&g2, 4).is_wide());
    }
}
