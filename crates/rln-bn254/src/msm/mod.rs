//! Multi-scalar multiplication over bases that never change (the proving key's queries),
//! with the window shifts precomputed.
//!
//! Pippenger's method splits each scalar into `m` windows of `c` bits and, window by window,
//! sorts the bases into `2^(c-1)` buckets (signed digits), sums each bucket and combines the
//! buckets; the windows are then joined by `c` doublings each. The combination costs about
//! `2^c` additions per window, which for a few thousand bases is a large share of the work.
//! With `2^(c·j)·P` stored for every base `P` and window `j`, every window sorts into the
//! same buckets: one combination in all, and a wider window. For the 8,192 bases of the
//! quotient query that is about 0.7× the additions of a fresh multiplication, at 20 stored
//! points per base (about 12 MB).
//!
//! [`FixedBaseMsm`] is the portable form; [`WideMsm`] runs the same method with the field
//! arithmetic of its batches eight lanes wide where an [`Ifma`](crate::cpu::Ifma) token
//! allows, and falls back to a `FixedBaseMsm` otherwise.

use ark_ec::short_weierstrass::{Affine, Projective, SWCurveConfig};
use ark_ec::{AdditiveGroup, AffineRepr, CurveGroup};
use ark_ff::{Field, PrimeField, Zero};
use rayon::prelude::*;

mod wide;

pub use wide::{Coordinates, G1Msm, G2Msm, WideMsm};

/// Bits of the scalar field's modulus, plus one for the carry of signed digits.
pub(crate) const SCALAR_BITS: usize = 255;

/// Bases whose window shifts are computed and normalised together: the projective
/// intermediates never exist for the whole table at once.
pub(crate) const TABLE_CHUNK: usize = 256;

/// How the 255 bits of a signed-digit scalar are cut into windows: `count` windows of
/// `width` bits, the lowest `narrow` of them one bit narrower so that the widths add up to
/// exactly 255.
///
/// Equal widths would leave the top window with only the leftover bits (for 13-bit windows,
/// 7 of them): every base's top digit then falls into one of a few dozen buckets, and the
/// additions that pile onto one bucket cannot share a batch. Balanced widths spread every
/// window over at least half the buckets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Windows {
    /// The widest window, in bits: digits have magnitudes up to `2^(width-1)`.
    pub(crate) width: usize,
    /// How many windows.
    pub(crate) count: usize,
    narrow: usize,
}

impl Windows {
    /// Windows at most `width` bits wide (clamped to 4 to 16), as few as 255 bits allow.
    pub(crate) fn new(width: usize) -> Self {
        let width = width.clamp(4, 16);
        let count = SCALAR_BITS.div_ceil(width);
        Self {
            width,
            count,
            // Fewer than `width` (≤ 16) and so fewer than `count` (≥ 16).
            narrow: count * width - SCALAR_BITS,
        }
    }

    fn width_of(&self, window: usize) -> usize {
        if window < self.narrow {
            self.width - 1
        } else {
            self.width
        }
    }

    /// Buckets the digits need: one per magnitude.
    pub(crate) fn buckets(&self) -> usize {
        1 << (self.width - 1)
    }

    /// Calls `f(window, digit)` for the non-zero signed digits of `scalar`, or of `-scalar`
    /// with every digit negated, whichever is below half the modulus. A small negative value
    /// `p - k` then costs the few digits of `k` instead of a full row of windows (the
    /// per-message wires of a circuit hold many such values, and their shared upper digits
    /// used to pile onto the same buckets).
    pub(crate) fn digits<F: PrimeField>(&self, scalar: &F, mut f: impl FnMut(usize, i64)) {
        let value = scalar.into_bigint();
        if value > F::MODULUS_MINUS_ONE_DIV_TWO {
            self.digits_of(&(-*scalar).into_bigint(), |j, digit| f(j, -digit));
        } else {
            self.digits_of(&value, f);
        }
    }

    /// `scalar = Σ digit·2^(offset of window)`, with the scalar below `2^254`.
    fn digits_of<B: AsRef<[u64]>>(&self, scalar: &B, f: impl FnMut(usize, i64)) {
        signed_digits(scalar, self.count, |j| self.width_of(j), f);
    }

    /// `2^(offset of window j)·base` for every base and window `j`, base by base.
    pub(crate) fn shifts<P: SWCurveConfig>(&self, bases: &[Affine<P>]) -> Vec<Affine<P>> {
        let projective: Vec<Projective<P>> = bases
            .iter()
            .flat_map(|base| {
                let mut point: Projective<P> = (*base).into();
                (0..self.count).map(move |j| {
                    let current = point;
                    for _ in 0..self.width_of(j) {
                        point.double_in_place();
                    }
                    current
                })
            })
            .collect();
        Projective::normalize_batch(&projective)
    }
}

/// Precomputed window shifts of a fixed list of bases.
#[derive(Clone)]
pub struct FixedBaseMsm<P: SWCurveConfig> {
    windows: Windows,
    len: usize,
    /// `table[i * windows.count + j]` is base `i` shifted to window `j`.
    table: Vec<Affine<P>>,
}

impl<P: SWCurveConfig> std::fmt::Debug for FixedBaseMsm<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FixedBaseMsm")
            .field("bases", &self.len)
            .field("windows", &self.windows)
            .finish_non_exhaustive()
    }
}

/// The window width that minimises `n·⌈255/c⌉ + 2^c` additions.
pub fn best_window(bases: usize) -> usize {
    (4..=16)
        .min_by_key(|c| bases * SCALAR_BITS.div_ceil(*c) + (1 << c))
        .unwrap_or(8)
}

impl<P: SWCurveConfig> FixedBaseMsm<P> {
    /// Precomputes the window shifts of `bases` for windows of `window` bits (4 to 16).
    pub fn new(bases: &[Affine<P>], window: usize) -> Self {
        let windows = Windows::new(window);
        let mut table = vec![Affine::<P>::identity(); bases.len() * windows.count];
        table
            .par_chunks_mut(TABLE_CHUNK * windows.count)
            .zip(bases.par_chunks(TABLE_CHUNK))
            .for_each(|(out, chunk)| out.copy_from_slice(&windows.shifts(chunk)));
        Self {
            windows,
            len: bases.len(),
            table,
        }
    }

    /// `Σ scalars[i] · base_i`. Extra scalars are ignored; missing ones count as zero.
    pub fn msm(&self, scalars: &[P::ScalarField]) -> Projective<P> {
        let n = self.len.min(scalars.len());
        if n == 0 {
            return Projective::zero();
        }
        thread_ranges(n, self.windows.width)
            .into_par_iter()
            .map(|(start, end)| self.accumulate(start, end, scalars))
            .sum()
    }

    fn accumulate(&self, start: usize, end: usize, scalars: &[P::ScalarField]) -> Projective<P> {
        let mut buckets = AffineBuckets::new(self.windows.buckets());
        for (i, scalar) in scalars.iter().enumerate().take(end).skip(start) {
            if scalar.is_zero() {
                continue;
            }
            let row = &self.table[i * self.windows.count..(i + 1) * self.windows.count];
            self.windows.digits(scalar, |j, digit| {
                if digit > 0 {
                    buckets.add(digit as usize - 1, row[j]);
                } else {
                    buckets.add((-digit) as usize - 1, -row[j]);
                }
                if buckets.batch.len() >= buckets.capacity {
                    buckets.flush();
                }
            });
        }
        buckets.finish()
    }
}

/// The ranges of bases that the threads sum separately: large enough that each range's own
/// bucket combination stays a small share of its work.
pub(crate) fn thread_ranges(n: usize, window: usize) -> Vec<(usize, usize)> {
    let threads = rayon::current_num_threads().max(1);
    let chunk = n.div_ceil(threads).max(1 << window.min(12)).max(1);
    (0..n)
        .step_by(chunk)
        .map(|start| (start, (start + chunk).min(n)))
        .collect()
}

/// Calls `f(window, digit)` for the non-zero signed digits of `scalar` in `c`-bit windows:
/// `scalar = Σ digit·2^(c·window)` with `-2^(c-1) < digit ≤ 2^(c-1)`. `c` is 1 to 63, and
/// the scalar below `2^254` (a canonical element of the scalar field).
pub fn for_each_digit<B: AsRef<[u64]>>(scalar: &B, c: usize, f: impl FnMut(usize, i64)) {
    signed_digits(scalar, SCALAR_BITS.div_ceil(c), |_| c, f);
}

/// Calls `f(window, digit)` for the non-zero signed digits of `scalar` in `count` windows,
/// window `j` being `width_of(j)` bits wide from the bottom up and its digit of magnitude at
/// most `2^(width-1)`. The windows cover at least 255 bits and the scalar is below `2^254`,
/// so the last carry is zero.
fn signed_digits<B: AsRef<[u64]>>(
    scalar: &B,
    count: usize,
    width_of: impl Fn(usize) -> usize,
    mut f: impl FnMut(usize, i64),
) {
    let limbs = scalar.as_ref();
    let mut bit = 0;
    let mut carry = 0u64;
    for j in 0..count {
        let width = width_of(j);
        let (limb, offset) = (bit / 64, bit % 64);
        let mut raw = limbs.get(limb).map_or(0, |l| l >> offset);
        if offset + width > 64 {
            if let Some(next) = limbs.get(limb + 1) {
                raw |= next << (64 - offset);
            }
        }
        let digit = (raw & ((1u64 << width) - 1)) + carry;
        if digit <= 1 << (width - 1) {
            carry = 0;
            if digit != 0 {
                f(j, digit as i64);
            }
        } else {
            // digit - 2^width, negative (or zero when the carry filled the window); one
            // carries into the next window.
            carry = 1;
            let magnitude = (1u64 << width) - digit;
            if magnitude != 0 {
                f(j, -(magnitude as i64));
            }
        }
        bit += width;
    }
    debug_assert_eq!(carry, 0, "255 bits hold every scalar with its carry");
}

/// Below this many additions, a final batch is not worth its inversion.
const TAIL_BATCH: usize = 64;

/// Buckets kept in affine form, added to in batches that share one field inversion
/// (Montgomery's trick): an affine addition then costs about six multiplications against
/// eleven for a mixed addition into a projective bucket. A bucket takes at most one addition
/// per batch; a point for a bucket already in the batch waits for the next one, and when
/// too many wait (scalars sharing digits, such as many ones), it goes into a projective
/// overflow bucket instead.
struct AffineBuckets<P: SWCurveConfig> {
    buckets: Vec<Affine<P>>,
    overflow: Vec<Projective<P>>,
    busy: Vec<bool>,
    batch: Vec<(usize, Affine<P>)>,
    denominators: Vec<P::BaseField>,
    waiting: Vec<(usize, Affine<P>)>,
    capacity: usize,
}

impl<P: SWCurveConfig> AffineBuckets<P> {
    fn new(count: usize) -> Self {
        let capacity = (count / 4).clamp(16, 1024);
        Self {
            buckets: vec![Affine::identity(); count],
            overflow: vec![Projective::zero(); count],
            busy: vec![false; count],
            batch: Vec::with_capacity(capacity),
            denominators: Vec::with_capacity(capacity),
            waiting: Vec::new(),
            capacity,
        }
    }

    fn add(&mut self, bucket: usize, point: Affine<P>) {
        if point.is_zero() {
            // The shifts of an identity base.
            return;
        }
        if self.busy[bucket] {
            if self.waiting.len() < self.capacity {
                self.waiting.push((bucket, point));
            } else {
                self.overflow[bucket] += &point;
            }
            return;
        }
        let current = self.buckets[bucket];
        if current.is_zero() {
            self.buckets[bucket] = point;
        } else if current.x == point.x {
            // Equal or opposite points: rare, done on the spot.
            self.buckets[bucket] = if current.y == point.y {
                current.into_group().double().into_affine()
            } else {
                Affine::identity()
            };
        } else {
            self.busy[bucket] = true;
            self.denominators.push(point.x - current.x);
            self.batch.push((bucket, point));
        }
    }

    fn flush(&mut self) {
        invert_all(&mut self.denominators);
        for ((bucket, point), inverse) in self.batch.drain(..).zip(self.denominators.drain(..)) {
            let current = self.buckets[bucket];
            let lambda = (point.y - current.y) * inverse;
            let x = lambda.square() - current.x - point.x;
            let y = lambda * (current.x - x) - current.y;
            self.buckets[bucket] = Affine::new_unchecked(x, y);
            self.busy[bucket] = false;
        }
        // Points that waited for a bucket of this batch go into the next one.
        let waiting = std::mem::take(&mut self.waiting);
        for (bucket, point) in waiting {
            self.add(bucket, point);
        }
    }

    /// `Σ (d+1)·bucket_d`, by running sums from the top.
    fn finish(mut self) -> Projective<P> {
        while !self.batch.is_empty() || !self.waiting.is_empty() {
            if self.batch.len() < TAIL_BATCH {
                // What is left piles onto a few buckets (small scalars share digits): a
                // batch per point would pay an inversion each.
                for (bucket, point) in std::mem::take(&mut self.waiting) {
                    self.overflow[bucket] += &point;
                }
            }
            self.flush();
        }
        combine_buckets(&self.buckets, &self.overflow)
    }
}

/// Replaces each of `values` by its inverse with one field inversion (Montgomery's trick), on
/// this thread. The callers already run one per core: arkworks' `batch_inversion` would split
/// a batch of eight across the cores again and pay an inversion per part. Zeros stay zero
/// (they are skipped), as in arkworks.
pub(crate) fn invert_all<F: Field>(values: &mut [F]) {
    let mut prefix = Vec::with_capacity(values.len());
    let mut product = F::one();
    for v in values.iter().filter(|v| !v.is_zero()) {
        prefix.push(product);
        product *= v;
    }
    let Some(mut inverse) = product.inverse() else {
        return;
    };
    for (v, before) in values
        .iter_mut()
        .filter(|v| !v.is_zero())
        .rev()
        .zip(prefix.into_iter().rev())
    {
        let own = inverse * before;
        inverse *= *v;
        *v = own;
    }
}

/// `Σ (d+1)·(bucket_d + overflow_d)`, by running sums from the top.
pub(crate) fn combine_buckets<P: SWCurveConfig>(
    buckets: &[Affine<P>],
    overflow: &[Projective<P>],
) -> Projective<P> {
    let mut running = Projective::<P>::zero();
    let mut total = Projective::<P>::zero();
    for (bucket, overflow) in buckets.iter().zip(overflow).rev() {
        running += bucket;
        running += overflow;
        total += running;
    }
    total
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use ark_bn254::{Fr, G1Affine, G1Projective, G2Affine, G2Projective};
    use ark_ec::VariableBaseMSM;
    use ark_ff::{BigInteger, One, UniformRand};
    use ark_std::rand::SeedableRng;

    /// Scalars with zeros, ±1, small values and random ones mixed in.
    pub(crate) fn scalars(n: usize, rng: &mut ark_std::rand::rngs::StdRng) -> Vec<Fr> {
        (0..n)
            .map(|i| match i % 7 {
                0 => Fr::zero(),
                1 => Fr::one(),
                2 => -Fr::one(),
                3 => Fr::from(1u64 << 12),
                4 => -Fr::from(3u64),
                _ => Fr::rand(rng),
            })
            .collect()
    }

    #[test]
    fn inverting_all_equals_arkworks_batch_inversion_with_zeros_kept() {
        let mut rng = ark_std::rand::rngs::StdRng::seed_from_u64(5);
        for n in [0usize, 1, 2, 8, 33] {
            let mut values: Vec<ark_bn254::Fq> =
                (0..n).map(|_| ark_bn254::Fq::rand(&mut rng)).collect();
            if n > 2 {
                values[1] = ark_bn254::Fq::zero();
            }
            let mut expected = values.clone();
            ark_ff::batch_inversion(&mut expected);
            invert_all(&mut values);
            assert_eq!(values, expected, "{n}");
        }
    }

    #[test]
    fn equals_arkworks_msm_on_g1_and_g2() {
        let mut rng = ark_std::rand::rngs::StdRng::seed_from_u64(7);
        // Signed digits of a 254-bit scalar need 255 bits of windows.
        assert_eq!(Fr::MODULUS.num_bits(), 254);
        for (n, window) in [(1, 4), (5, 8), (300, 8), (1000, 13), (64, 16)] {
            let bases: Vec<G1Affine> = (0..n)
                .map(|_| G1Projective::rand(&mut rng).into_affine())
                .collect();
            let s = scalars(n, &mut rng);
            let fixed = FixedBaseMsm::<ark_bn254::g1::Config>::new(&bases, window);
            assert_eq!(
                fixed.msm(&s),
                G1Projective::msm(&bases, &s).unwrap(),
                "n {n}"
            );
            // Fewer scalars than bases: the rest count as zero.
            assert_eq!(
                fixed.msm(&s[..n / 2]),
                G1Projective::msm(&bases[..n / 2], &s[..n / 2]).unwrap()
            );
        }
        let bases: Vec<G2Affine> = (0..50)
            .map(|_| G2Projective::rand(&mut rng).into_affine())
            .collect();
        let s = scalars(50, &mut rng);
        let fixed = FixedBaseMsm::<ark_bn254::g2::Config>::new(&bases, best_window(50));
        assert_eq!(fixed.msm(&s), G2Projective::msm(&bases, &s).unwrap());
        assert!(FixedBaseMsm::<ark_bn254::g2::Config>::new(&[], 8)
            .msm(&s)
            .is_zero());
    }

    /// 3,000 bases that are two points repeated, with scalars 1, −1 and 2: equal points
    /// meet in buckets, opposite ones cancel, and many pile onto one bucket.
    pub(crate) fn pile_up<C: SWCurveConfig>() -> (Vec<Affine<C>>, Vec<Fr>) {
        let mut rng = ark_std::rand::rngs::StdRng::seed_from_u64(9);
        let p = Projective::<C>::rand(&mut rng).into_affine();
        let q = Projective::<C>::rand(&mut rng).into_affine();
        let n = 3000;
        let bases: Vec<Affine<C>> = (0..n).map(|i| if i % 3 == 2 { q } else { p }).collect();
        let s: Vec<Fr> = (0..n)
            .map(|i| match i % 4 {
                0 => Fr::one(),
                1 => -Fr::one(),
                2 => Fr::from(2u64),
                _ => Fr::one(),
            })
            .collect();
        (bases, s)
    }

    #[test]
    fn repeated_and_opposite_points_in_one_bucket() {
        // Equal points meet in a bucket (doubling), opposite ones cancel, and more points
        // than a batch holds pile onto one bucket (overflow).
        let (bases, s) = pile_up::<ark_bn254::g1::Config>();
        for window in [4, 8, 13] {
            let fixed = FixedBaseMsm::<ark_bn254::g1::Config>::new(&bases, window);
            assert_eq!(fixed.msm(&s), G1Projective::msm(&bases, &s).unwrap());
        }
        // Identity bases contribute nothing.
        let mut with_zero = bases[..10].to_vec();
        with_zero[3] = G1Affine::identity();
        with_zero[7] = G1Affine::identity();
        let fixed = FixedBaseMsm::<ark_bn254::g1::Config>::new(&with_zero, 6);
        assert_eq!(
            fixed.msm(&s[..10]),
            G1Projective::msm(&with_zero, &s[..10]).unwrap()
        );
    }

    #[test]
    fn window_choice_grows_with_the_base_count() {
        assert!(best_window(500) < best_window(8192));
        assert!((12..=14).contains(&best_window(8192)));
    }

    /// `Σ digit·2^(offset)` over the windows, in the field.
    fn recompose(windows: &Windows, scalar: &Fr) -> Fr {
        let offsets: Vec<u64> = (0..windows.count)
            .scan(0u64, |bit, j| {
                let offset = *bit;
                *bit += windows.width_of(j) as u64;
                Some(offset)
            })
            .collect();
        let mut sum = Fr::zero();
        windows.digits(scalar, |j, digit| {
            // Negated digits of `-scalar` may reach -2^(w-1): the magnitude is what indexes a
            // bucket.
            let bound = 1u64 << (windows.width_of(j) - 1);
            assert!(digit != 0 && digit.unsigned_abs() <= bound, "{digit}");
            let magnitude = Fr::from(digit.unsigned_abs()) * Fr::from(2u64).pow([offsets[j]]);
            sum += if digit > 0 { magnitude } else { -magnitude };
        });
        sum
    }

    #[test]
    fn balanced_windows_cover_255_bits_and_their_digits_give_back_the_scalar() {
        let mut rng = ark_std::rand::rngs::StdRng::seed_from_u64(8);
        let half = Fr::from_bigint(Fr::MODULUS_MINUS_ONE_DIV_TWO).unwrap();
        let mut cases = vec![
            Fr::one(),
            -Fr::one(),
            Fr::from(5u64),
            -Fr::from(5u64),
            half,
            half + Fr::one(),
            -Fr::from(u64::MAX),
            Fr::from(2u64).pow([253]),
        ];
        cases.extend((0..200).map(|_| Fr::rand(&mut rng)));
        for width in 4..=16 {
            let windows = Windows::new(width);
            let widths: Vec<usize> = (0..windows.count).map(|j| windows.width_of(j)).collect();
            assert_eq!(widths.iter().sum::<usize>(), SCALAR_BITS, "width {width}");
            assert!(widths.iter().all(|w| *w + 1 >= width && *w <= width));
            // The top window is a full one: no window holds only a few leftover bits.
            assert_eq!(widths[windows.count - 1], width);
            for scalar in &cases {
                assert_eq!(recompose(&windows, scalar), *scalar, "width {width}");
            }
            let mut zero_digits = 0;
            windows.digits(&Fr::zero(), |_, _| zero_digits += 1);
            assert_eq!(zero_digits, 0);
        }
        // A small negative value costs the digits of its magnitude.
        let mut digits = Vec::new();
        Windows::new(10).digits(&-Fr::from(5u64), |j, d| digits.push((j, d)));
        assert_eq!(digits, [(0, -5)]);
    }
}
