//! Curve coordinates eight at a time: elements of `Fq` (`K = 1`, the coordinates of G1) and
//! of `Fq2 = Fq[u]/(u² + 1)` (`K = 2`, those of G2), each component in [`crate::lanes`]' form.
//!
//! An [`Ext8`] holds component `i` of eight elements in one [`Fq8`]. In `Fq2`, a product is
//! Karatsuba's (three base multiplications) and a square the complex method (two). The bounds
//! are those of [`crate::lanes`]: stored components are at most `2p`, and [`Ext8::mul`] and
//! [`Ext8::square`] take components below `4p` and return them below `2p`.

use ark_bn254::Fq;

use crate::lanes::{self, Columns, Fq8, FqModulus, Limbs, LANES, LIMBS};
use crate::msm::Coordinates;

/// One element in our form: its components' limbs.
pub(crate) type Element<const K: usize> = [Limbs; K];

/// Eight elements: component `i` of all eight in `self.0[i]`.
#[derive(Clone, Copy)]
pub(crate) struct Ext8<const K: usize>([Fq8; K]);

impl<const K: usize> Ext8<K> {
    /// Component-wise `a + b`, for sums below `2^260`.
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub(crate) fn add(self, other: Self) -> Self {
        Self(std::array::from_fn(|i| self.0[i].add(other.0[i])))
    }

    /// Component-wise `a + 2p − b`, for components of `b` at most `2p`.
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub(crate) fn sub(self, other: Self) -> Self {
        Self(std::array::from_fn(|i| self.0[i].sub(other.0[i])))
    }

    /// Component-wise `a + 4p − b`, for components of `b` at most `4p`.
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub(crate) fn sub_4p(self, other: Self) -> Self {
        Self(std::array::from_fn(|i| self.0[i].sub_4p(other.0[i])))
    }

    /// Components below `2p`, from components below `6p`.
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub(crate) fn reduce_6p(self) -> Self {
        Self(std::array::from_fn(|i| self.0[i].reduce_6p()))
    }

    /// Components below `2p`, from components below `4p`.
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub(crate) fn reduce_4p(self) -> Self {
        Self(std::array::from_fn(|i| self.0[i].reduce_4p()))
    }

    /// `a·b`, components below `2p`, for components of `a` and `b` below `4p`.
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub(crate) fn mul(self, other: Self) -> Self {
        let (a, b) = (self.0, other.0);
        let mut out = a;
        if K == 1 {
            out[0] = a[0].mul(b[0]);
        } else {
            // (a0 + a1·u)(b0 + b1·u) with u² = −1, Karatsuba's way.
            let v0 = a[0].mul(b[0]);
            let v1 = a[K - 1].mul(b[K - 1]);
            let v2 = a[0].add(a[K - 1]).mul(b[0].add(b[K - 1]));
            out[0] = v0.sub(v1).reduce_4p();
            out[K - 1] = v2.sub_4p(v0.add(v1)).reduce_6p();
        }
        Self(out)
    }

    /// The same element in all eight lanes.
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub(crate) fn splat(value: &Element<K>) -> Self {
        Self(std::array::from_fn(|i| lanes::splat(&value[i])))
    }

    /// Eight elements, one per lane.
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub(crate) fn gather(values: &[Element<K>; LANES]) -> Self {
        Self(std::array::from_fn(|i| {
            lanes::gather(&values.map(|v| v[i]))
        }))
    }

    /// The eight elements as arkworks elements, for components below `8p`.
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub(crate) fn to_arkworks<F: Coordinates<K>>(self) -> [F; LANES] {
        let components: [[Fq; LANES]; K] =
            std::array::from_fn(|i| lanes::arkworks_of::<FqModulus>(self.0[i]));
        std::array::from_fn(|k| F::from_components(std::array::from_fn(|i| components[i][k])))
    }

    /// Each component times the base-field elements `c` (below `8p`): below `2p`, for
    /// components below `8p`.
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub(crate) fn scale(self, c: Fq8) -> Self {
        Self(self.0.map(|x| x.mul(c)))
    }

    /// `2p − a` component-wise: the negation, at most `2p` for components at most `2p`.
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub(crate) fn neg(self) -> Self {
        Self::splat(&[[0; LIMBS]; K]).sub(self)
    }

    /// `a²`, components below `2p`, for components of `a` below `4p`.
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub(crate) fn square(self) -> Self {
        let a = self.0;
        let mut out = a;
        if K == 1 {
            out[0] = a[0].mul(a[0]);
        } else {
            // (a0 + a1·u)² = (a0 + a1)(a0 − a1) + 2·a0·a1·u.
            out[0] = a[0].add(a[K - 1]).mul(a[0].sub_4p(a[K - 1]));
            let cross = a[0].mul(a[K - 1]);
            out[K - 1] = cross.add(cross).reduce_4p();
        }
        Self(out)
    }
}

/// Column storage of elements (see [`Columns`]), one set of columns per component.
pub(crate) struct ExtColumns<const K: usize>([Columns; K]);

impl<const K: usize> ExtColumns<K> {
    /// Room for `len` elements, all zero.
    pub(crate) fn new(len: usize) -> Self {
        Self(std::array::from_fn(|_| Columns::new(len)))
    }

    #[inline(always)]
    pub(crate) fn set(&mut self, k: usize, value: &Element<K>) {
        for (columns, component) in self.0.iter_mut().zip(value) {
            columns.set(k, component);
        }
    }

    #[inline(always)]
    pub(crate) fn get(&self, k: usize) -> Element<K> {
        std::array::from_fn(|i| self.0[i].get(k))
    }

    /// Elements `8·row .. 8·row + 8`.
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub(crate) fn load(&self, row: usize) -> Ext8<K> {
        Ext8(std::array::from_fn(|i| self.0[i].load(row)))
    }

    #[target_feature(enable = "avx512f,avx512ifma")]
    pub(crate) fn store(&mut self, row: usize, value: Ext8<K>) {
        for (columns, component) in self.0.iter_mut().zip(value.0) {
            columns.store(row, component);
        }
    }
}

/// Up to eight arkworks elements in our form (missing ones are zero).
#[target_feature(enable = "avx512f,avx512ifma")]
pub(crate) fn from_arkworks<F: Coordinates<K>, const K: usize>(
    values: &[F],
) -> [Element<K>; LANES] {
    let mut out = [[[0; LIMBS]; K]; LANES];
    for i in 0..K {
        let component: Vec<Fq> = values.iter().map(|v| v.components()[i]).collect();
        for (element, limbs) in out
            .iter_mut()
            .zip(lanes::from_arkworks::<FqModulus>(&component))
        {
            element[i] = limbs;
        }
    }
    out
}

/// Up to eight of our elements as arkworks elements (missing ones are zero).
#[target_feature(enable = "avx512f,avx512ifma")]
pub(crate) fn to_arkworks<F: Coordinates<K>, const K: usize>(values: &[Element<K>]) -> [F; LANES] {
    let mut components = [[Fq::from(0u64); K]; LANES];
    for i in 0..K {
        let limbs: Vec<Limbs> = values.iter().map(|v| v[i]).collect();
        for (element, value) in components
            .iter_mut()
            .zip(lanes::to_arkworks::<FqModulus>(&limbs))
        {
            element[i] = value;
        }
    }
    components.map(F::from_components)
}

/// `−y`, components at most `2p` (a zero component gives `2p`).
#[inline(always)]
pub(crate) fn negate<const K: usize>(y: &Element<K>) -> Element<K> {
    std::array::from_fn(|i| lanes::negate::<FqModulus>(&y[i]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_bn254::Fq2;
    use ark_ff::{Field, One, UniformRand, Zero};
    use ark_std::rand::SeedableRng;

    /// Elements of `Fq2` with the edge components (0, 1, −1) among random ones.
    fn values(rng: &mut ark_std::rand::rngs::StdRng) -> Vec<Fq2> {
        let edge = [Fq::zero(), Fq::one(), -Fq::one()];
        (0..LANES)
            .map(|k| match k {
                0..=2 => Fq2::new(edge[k], edge[(k + 1) % 3]),
                _ => Fq2::rand(rng),
            })
            .collect()
    }

    #[test]
    fn fq2_arithmetic_matches_arkworks() {
        if crate::lanes::tests::ifma_or_note().is_none() {
            return;
        }
        let mut rng = ark_std::rand::rngs::StdRng::seed_from_u64(21);
        for _ in 0..50 {
            let (a, b) = (values(&mut rng), values(&mut rng));
            // SAFETY: the test returned above without an `Ifma` token.
            unsafe {
                let (ours_a, ours_b) = (from_arkworks(&a), from_arkworks(&b));
                assert_eq!(to_arkworks::<Fq2, 2>(&ours_a).to_vec(), a);
                let mut ca = ExtColumns::<2>::new(LANES);
                let mut cb = ExtColumns::<2>::new(LANES);
                for k in 0..LANES {
                    ca.set(k, &ours_a[k]);
                    cb.set(k, &ours_b[k]);
                }
                let (va, vb) = (ca.load(0), cb.load(0));
                let zero = ExtColumns::<2>::new(LANES).load(0);
                // Inputs close to 4p: a + 2p and b + 2p.
                let (wa, wb) = (va.sub(zero), vb.sub(zero));
                let mut out = ExtColumns::<2>::new(LANES);
                let read = |out: &ExtColumns<2>| {
                    let got: Vec<Element<2>> = (0..LANES).map(|k| out.get(k)).collect();
                    to_arkworks::<Fq2, 2>(&got).to_vec()
                };
                out.store(0, wa.mul(wb));
                let products: Vec<Fq2> = (0..LANES).map(|k| a[k] * b[k]).collect();
                assert_eq!(read(&out), products);
                out.store(0, wa.square());
                let squares: Vec<Fq2> = (0..LANES).map(|k| a[k].square()).collect();
                assert_eq!(read(&out), squares);
                out.store(0, va.sub(vb).reduce_4p());
                let differences: Vec<Fq2> = (0..LANES).map(|k| a[k] - b[k]).collect();
                assert_eq!(read(&out), differences);
                out.store(0, va.sub_4p(vb.add(vb)).reduce_6p());
                let mixed: Vec<Fq2> = (0..LANES).map(|k| a[k] - b[k] - b[k]).collect();
                assert_eq!(read(&out), mixed);
                for k in 0..LANES {
                    let negated = to_arkworks::<Fq2, 2>(&[negate(&ours_a[k])])[0];
                    assert_eq!(negated, -a[k]);
                }
            }
        }
    }
}
