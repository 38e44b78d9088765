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
//! added together in batches, and their weighted sum `Σ (d+1)·bucket_d` is taken in short
//! chains of buckets run side by side, so that it too is made of affine batches (see
//! [`Buckets::weighted_sum`](table)). Before this, every core combined all its buckets with
//! projective running sums, which for the quotient's 4,096 buckets was about a quarter of the
//! multiplication.

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
    use ark_ec::{AffineRepr, CurveGroup, PrimeGroup};
    use ark_ff::Zero;
    use rayon::prelude::*;

    use super::Coordinates;
    use crate::cpu::Ifma;
    use crate::lanes::ext::{self as ext8, Element, Ext8, ExtColumns};
    use crate::lanes::{FqModulus, Modulus, LANES, LIMBS};
    use crate::msm::{combine_buckets, invert_all, thread_ranges, Windows, TABLE_CHUNK};

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
        windows: Windows,
        len: usize,
        /// `points[i * windows.count + j]` is base `i` shifted to window `j`.
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
            let windows = Windows::new(window);
            let mut points = vec![Point::ZERO; bases.len() * windows.count];
            points
                .par_chunks_mut(TABLE_CHUNK * windows.count)
                .zip(bases.par_chunks(TABLE_CHUNK))
                .for_each(|(out, chunk)| {
                    // Multiples of points of prime order are never the identity.
                    let shifts = windows.shifts(chunk);
                    // SAFETY: the `Ifma` token shows the CPU has AVX-512F and AVX-512 IFMA.
                    unsafe { convert(&shifts, out) }
                });
            Some(Self {
                _ifma: ifma,
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
            let mut parts: Vec<Buckets<C, K>> = thread_ranges(n, self.windows.width)
                .into_par_iter()
                // SAFETY: a `Table` holds an `Ifma` token, so the CPU has AVX-512F and
                // AVX-512 IFMA.
                .map(|(start, end)| unsafe { self.accumulate(&scalars[start..end], start) })
                .collect();
            let Some(mut merged) = parts.pop() else {
                return Projective::zero();
            };
            // The threads' buckets are added together in batches, and their weighted sum is
            // taken in chains of batched additions.
            // SAFETY: as above.
            unsafe {
                for other in parts {
                    merged.absorb(other);
                }
                merged.drain();
            }
            let overflow = std::mem::take(&mut merged.overflow);
            // SAFETY: as above.
            unsafe { merged.weighted_sum() + weighted_overflow(&overflow) }
        }

        #[target_feature(enable = "avx512f,avx512ifma")]
        fn accumulate(&self, scalars: &[Fr], first: usize) -> Buckets<C, K> {
            let mut buckets = Buckets::<C, K>::new(self.windows.buckets());
            let mut digits: Vec<(usize, i64)> = Vec::with_capacity(self.windows.count);
            for (i, scalar) in scalars.iter().enumerate() {
                if scalar.is_zero() {
                    continue;
                }
                digits.clear();
                self.windows
                    .digits(scalar, |j, digit| digits.push((j, digit)));
                let row = (first + i) * self.windows.count;
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

    /// Buckets per chain of [`Buckets::weighted_sum`]: each step of the chains is one batch
    /// (one inversion), and the chains' results are joined with projective additions.
    const CHAIN: usize = 16;

    /// Chains below which the weighted sum stays on one core.
    const PARALLEL_CHAINS: usize = 64;

    /// `Σ (d+1)·overflow_d`: the points that found the waiting list full. Usually none;
    /// a few are multiplied one by one, many go through running sums.
    fn weighted_overflow<C: SWCurveConfig>(overflow: &[Projective<C>]) -> Projective<C> {
        let used = overflow.iter().filter(|p| !p.is_zero()).count();
        if used * CHAIN < overflow.len() {
            overflow
                .iter()
                .enumerate()
                .filter(|(_, p)| !p.is_zero())
                .map(|(d, p)| p.mul_bigint([d as u64 + 1]))
                .sum()
        } else {
            combine_buckets(&vec![Affine::identity(); overflow.len()], overflow)
        }
    }

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
            Self::with_capacity(count, (count / 2).clamp(16, 1024))
        }

        /// `count` buckets and batches of up to `capacity` additions.
        fn with_capacity(count: usize, capacity: usize) -> Self {
            let capacity = capacity.max(1).next_multiple_of(LANES);
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

        /// The buckets as arkworks points, the identity where a bucket is empty.
        #[target_feature(enable = "avx512f,avx512ifma")]
        fn affine_points(&self) -> Vec<Affine<C>> {
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
            affine
        }

        /// `Σ (d+1)·bucket_d` over the drained buckets (the overflow aside).
        ///
        /// Running sums from the top bucket down are one long chain of dependent additions,
        /// each a projective one. Instead the buckets are cut into chains of [`CHAIN`], all
        /// run side by side: at every step each chain adds its running sum `R` into its total
        /// `S` and its next bucket into `R`, and the step's additions form one affine batch.
        /// A chain starting at bucket `ℓ·CHAIN` ends with `S = Σ (d - ℓ·CHAIN + 1)·bucket_d`
        /// and `R` the plain sum of its buckets; the whole is `Σ S + CHAIN·Σ ℓ·R`, projective
        /// again but over a sixteenth as many points. Many chains are split over the cores.
        #[target_feature(enable = "avx512f,avx512ifma")]
        fn weighted_sum(&self) -> Projective<C> {
            let count = self.points.len();
            let length = CHAIN.min(count).max(1);
            let chains = count.div_ceil(length);
            let groups = if chains >= PARALLEL_CHAINS {
                rayon::current_num_threads().clamp(1, chains)
            } else {
                1
            };
            let per_group = chains.div_ceil(groups);
            (0..chains)
                .step_by(per_group)
                .collect::<Vec<usize>>()
                .into_par_iter()
                // The closure inherits this function's target features; the `Table` that
                // calls it holds an `Ifma` token.
                .map(|first| self.chains(first, (first + per_group).min(chains), length))
                .sum()
        }

        /// The part of [`Buckets::weighted_sum`] of chains `first..end`, each `length`
        /// buckets long (the last may be cut short by the end of the buckets).
        #[target_feature(enable = "avx512f,avx512ifma")]
        fn chains(&self, first: usize, end: usize, length: usize) -> Projective<C> {
            let count = end - first;
            // Slot `i` is chain `first + i`'s running sum, slot `count + i` its total.
            let mut sums = Buckets::<C, K>::with_capacity(2 * count, 2 * count);
            let step = |sums: &mut Buckets<C, K>, offset: Option<usize>| {
                for i in 0..count {
                    if sums.occupied[i] {
                        let running = sums.points[i];
                        sums.add(count + i, running);
                    }
                    let bucket = offset.map(|t| (first + i) * length + t);
                    if let Some(d) = bucket.filter(|d| *d < self.points.len()) {
                        if self.occupied[d] {
                            sums.add(i, self.points[d]);
                        }
                    }
                }
                sums.flush();
            };
            for t in (0..length).rev() {
                step(&mut sums, Some(t));
            }
            // The last running sums join the totals.
            step(&mut sums, None);
            let points = sums.affine_points();
            let (running, totals) = points.split_at(count);
            let mut total = Projective::<C>::zero();
            let mut plain = Projective::<C>::zero();
            let mut weighted = Projective::<C>::zero();
            for i in (0..count).rev() {
                total += totals[i];
                plain += running[i];
                weighted += plain;
            }
            // weighted = Σ (i+1)·R_i; chain `first + i` needs (first + i)·R_i.
            let ranks = weighted - plain + plain.mul_bigint([first as u64]);
            total + ranks.mul_bigint([length as u64])
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use ark_bn254::{g1::Config as G1Config, g2::Config as G2Config};
        use ark_ec::short_weierstrass::Projective;
        use ark_std::rand::SeedableRng;
        use ark_std::UniformRand;

        /// Random buckets with empty ones, a cancellation and a doubling inside a chain: the
        /// top bucket of the last chain and its opposite below it, and the top of the first
        /// chain repeated below it.
        fn buckets<C: SWCurveConfig>(
            n: usize,
            rng: &mut impl ark_std::rand::Rng,
        ) -> Vec<Affine<C>> {
            let mut points: Vec<Affine<C>> = (0..n)
                .map(|_| Projective::<C>::rand(rng).into_affine())
                .collect();
            points[0] = Affine::identity();
            if n >= 16 {
                points[n - 2] = -points[n - 1];
                points[14] = points[15];
                points[7] = Affine::identity();
            }
            points
        }

        fn check_weighted_sum<C: SWCurveConfig<ScalarField = Fr>, const K: usize>()
        where
            C::BaseField: Coordinates<K>,
        {
            if Ifma::detect().is_none() {
                return;
            }
            let mut rng = ark_std::rand::rngs::StdRng::seed_from_u64(21);
            for n in [8, 16, 40, 512, 1000, 4096] {
                let points = buckets::<C>(n, &mut rng);
                let expected = combine_buckets(&points, &vec![Projective::zero(); n]);
                let mut wide = Buckets::<C, K>::new(n);
                for (d, point) in points.iter().enumerate() {
                    if !point.is_zero() {
                        // SAFETY: detection found AVX-512F and AVX-512 IFMA.
                        wide.points[d] = unsafe { from_affine(point) };
                        wide.occupied[d] = true;
                    }
                }
                for threads in [1, 2, 3] {
                    let pool = rayon::ThreadPoolBuilder::new()
                        .num_threads(threads)
                        .build()
                        .unwrap();
                    // SAFETY: as above.
                    let sum = pool.install(|| unsafe { wide.weighted_sum() });
                    assert_eq!(sum, expected, "{n} buckets, {threads} threads");
                }
            }
        }

        #[test]
        fn chained_weighted_sums_equal_running_sums() {
            check_weighted_sum::<G1Config, 1>();
            check_weighted_sum::<G2Config, 2>();
        }

        #[test]
        fn overflow_weighted_one_by_one_or_by_running_sums_alike() {
            let mut rng = ark_std::rand::rngs::StdRng::seed_from_u64(22);
            let n = 512;
            for used in [0, 3, 31, 32, 200] {
                let mut overflow = vec![Projective::<G1Config>::zero(); n];
                for d in 0..used {
                    overflow[(d * 7 + 1) % n] = Projective::rand(&mut rng);
                }
                let expected = combine_buckets(&vec![Affine::identity(); n], &overflow);
                assert_eq!(weighted_overflow(&overflow), expected, "{used} used");
            }
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
