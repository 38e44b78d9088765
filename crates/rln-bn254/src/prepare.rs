//! The line coefficients of many G2 points, eight at a time.
//!
//! Before a Miller loop can run on a pair `(P, Q)`, `Q` in G2 is "prepared": the loop's
//! doubling and addition steps are run on `Q` alone, in homogeneous projective coordinates,
//! and each step leaves the three `Fq2` coefficients of its line (eprint 2013/722). A batch
//! check prepares every proof's `B` this way, about 87 steps of `Fq2` arithmetic per point,
//! and it is the same program for every point: the steps depend only on the loop count.
//!
//! So eight points run in the eight lanes of [`crate::lanes::ext`] at once, step for step
//! the formulas arkworks uses for BN254 (a D-type twist), and the result is arkworks'
//! `G2Prepared`, coefficient for coefficient. Points at infinity, and every point without an
//! [`Ifma`] token, are prepared by arkworks.

use ark_bn254::{Config, G2Affine};
use ark_ec::bn::G2Prepared;
use rayon::prelude::*;

use crate::cpu::Ifma;

/// Below this many points, a vector of eight lanes costs more than preparing them one by one.
#[cfg(target_arch = "x86_64")]
const MIN_LANES_USED: usize = 3;

/// `G2Prepared::from(p)` for each point, on every core, eight lanes wide where the CPU
/// allows.
pub fn g2_prepared_many(points: &[G2Affine]) -> Vec<G2Prepared<Config>> {
    g2_prepared_with(points, Ifma::detect())
}

/// As [`g2_prepared_many`], on the 8-lane path exactly when `ifma` is given.
pub fn g2_prepared_with(points: &[G2Affine], ifma: Option<Ifma>) -> Vec<G2Prepared<Config>> {
    #[cfg(target_arch = "x86_64")]
    if let Some(ifma) = ifma {
        return points
            .par_chunks(crate::lanes::LANES)
            .flat_map_iter(|chunk| {
                // Eight lanes cost about three arkworks preparations: fewer points than
                // that are prepared one by one.
                if chunk.len() < MIN_LANES_USED {
                    chunk.iter().map(|p| G2Prepared::from(*p)).collect()
                } else {
                    wide::prepare8(ifma, chunk)
                }
            })
            .collect();
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = ifma;
    points.par_iter().map(|p| G2Prepared::from(*p)).collect()
}

#[cfg(target_arch = "x86_64")]
mod wide {
    use ark_bn254::{g2::Config as G2Config, Config, Fq, Fq2, G2Affine};
    use ark_ec::bn::{BnConfig, G2Prepared, TwistType};
    use ark_ec::short_weierstrass::SWCurveConfig;
    use ark_ec::AffineRepr;
    use ark_ff::{Field, One};

    use crate::cpu::Ifma;
    use crate::lanes::ext::{self as ext8, Ext8};
    use crate::lanes::{self, Fq8, FqModulus, LANES};

    type Lane2 = Ext8<2>;
    type Line8 = (Lane2, Lane2, Lane2);

    /// The running point `R` of eight preparations, homogeneous projective, components at
    /// most `2p`.
    struct Running {
        x: Lane2,
        y: Lane2,
        z: Lane2,
    }

    /// The constants the steps multiply by, in lane form.
    struct Constants {
        two_inv: Fq8,
        coeff_b: Lane2,
    }

    /// Up to eight points prepared. Lanes beyond `points` (and lanes of points at infinity)
    /// run on the generator, and their results are dropped.
    pub(super) fn prepare8(ifma: Ifma, points: &[G2Affine]) -> Vec<G2Prepared<Config>> {
        let _ = ifma;
        let inputs: [G2Affine; LANES] = std::array::from_fn(|k| match points.get(k) {
            Some(p) if !p.is_zero() => *p,
            _ => G2Affine::generator(),
        });
        // SAFETY: the `Ifma` token shows the CPU has AVX-512F and AVX-512 IFMA.
        let mut lines = unsafe { lines8(&inputs) };
        points
            .iter()
            .enumerate()
            .map(|(k, p)| {
                if p.is_zero() {
                    G2Prepared {
                        ell_coeffs: Vec::new(),
                        infinity: true,
                    }
                } else {
                    G2Prepared {
                        ell_coeffs: std::mem::take(&mut lines[k]),
                        infinity: false,
                    }
                }
            })
            .collect()
    }

    /// `ψ`-like step of the preparation: the point's coordinates raised to `p` and twisted
    /// back (arkworks' `mul_by_char`).
    fn mul_by_char(q: &G2Affine) -> G2Affine {
        let mut s = *q;
        s.x.frobenius_map_in_place(1);
        s.x *= &Config::TWIST_MUL_BY_Q_X;
        s.y.frobenius_map_in_place(1);
        s.y *= &Config::TWIST_MUL_BY_Q_Y;
        s
    }

    #[target_feature(enable = "avx512f,avx512ifma")]
    fn load(values: &[Fq2; LANES]) -> Lane2 {
        Ext8::gather(&ext8::from_arkworks::<Fq2, 2>(values))
    }

    /// The lines of eight points, lane by lane, in arkworks' order.
    #[target_feature(enable = "avx512f,avx512ifma")]
    fn lines8(points: &[G2Affine; LANES]) -> [Vec<(Fq2, Fq2, Fq2)>; LANES] {
        debug_assert!(matches!(Config::TWIST_TYPE, TwistType::D));
        let two_inv = Fq::from(2u64).inverse().unwrap_or_default();
        let constants = Constants {
            two_inv: lanes::splat(&lanes::from_arkworks::<FqModulus>(&[two_inv])[0]),
            coeff_b: Ext8::splat(&ext8::from_arkworks::<Fq2, 2>(&[G2Config::COEFF_B])[0]),
        };
        let qx = load(&points.map(|p| p.x));
        let qy = load(&points.map(|p| p.y));
        let neg_qy = qy.neg();
        let mut r = Running {
            x: qx,
            y: qy,
            z: load(&[Fq2::one(); LANES]),
        };
        let mut out: Vec<Line8> = Vec::with_capacity(90);
        for digit in Config::ATE_LOOP_COUNT.iter().rev().skip(1) {
            out.push(double(&mut r, &constants));
            match digit {
                1 => out.push(add(&mut r, qx, qy)),
                -1 => out.push(add(&mut r, qx, neg_qy)),
                _ => {}
            }
        }
        let q1 = points.map(|p| mul_by_char(&p));
        let q2 = q1.map(|p| mul_by_char(&p));
        if Config::X_IS_NEGATIVE {
            r.y = r.y.neg();
        }
        out.push(add(&mut r, load(&q1.map(|p| p.x)), load(&q1.map(|p| p.y))));
        out.push(add(&mut r, load(&q2.map(|p| p.x)), load(&q2.map(|p| -p.y))));

        let mut lines: [Vec<(Fq2, Fq2, Fq2)>; LANES] =
            std::array::from_fn(|_| Vec::with_capacity(out.len()));
        for (c0, c1, c2) in out {
            let (c0, c1, c2) = (
                c0.to_arkworks::<Fq2>(),
                c1.to_arkworks::<Fq2>(),
                c2.to_arkworks::<Fq2>(),
            );
            for (k, lane) in lines.iter_mut().enumerate() {
                lane.push((c0[k], c1[k], c2[k]));
            }
        }
        lines
    }

    /// `3a`, below `2p`, for `a` below `2p`.
    #[target_feature(enable = "avx512f,avx512ifma")]
    fn triple(a: Lane2) -> Lane2 {
        a.add(a).add(a).reduce_6p()
    }

    /// `R ← 2R` and the tangent's coefficients (arkworks' `double_in_place`).
    #[target_feature(enable = "avx512f,avx512ifma")]
    fn double(r: &mut Running, k: &Constants) -> Line8 {
        let a = r.x.mul(r.y).scale(k.two_inv);
        let b = r.y.square();
        let c = r.z.square();
        let e = triple(c).mul(k.coeff_b);
        let f = triple(e);
        let g = b.add(f).scale(k.two_inv);
        let h = r.y.add(r.z).square().sub_4p(b.add(c)).reduce_6p();
        let i = e.sub(b).reduce_4p();
        let j = r.x.square();
        let e_square = e.square();
        r.x = a.mul(b.sub(f));
        r.y = g.square().sub(triple(e_square)).reduce_4p();
        r.z = b.mul(h);
        (h.neg(), triple(j), i)
    }

    /// `R ← R + Q` for affine `Q` and the chord's coefficients (arkworks' `add_in_place`).
    #[target_feature(enable = "avx512f,avx512ifma")]
    fn add(r: &mut Running, qx: Lane2, qy: Lane2) -> Line8 {
        let theta = r.y.sub(qy.mul(r.z)).reduce_4p();
        let lambda = r.x.sub(qx.mul(r.z)).reduce_4p();
        let c = theta.square();
        let d = lambda.square();
        let e = lambda.mul(d);
        let f = r.z.mul(c);
        let g = r.x.mul(d);
        let two_g = g.add(g).reduce_4p();
        let h = e.add(f).sub(two_g).reduce_6p();
        r.x = lambda.mul(h);
        r.y = theta.mul(g.sub(h)).sub(e.mul(r.y)).reduce_4p();
        r.z = r.z.mul(e);
        let j = theta.mul(qx).sub(lambda.mul(qy)).reduce_4p();
        (lambda, theta.neg(), j)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_bn254::G2Projective;
    use ark_ec::{AffineRepr, CurveGroup};
    use ark_std::rand::SeedableRng;
    use ark_std::UniformRand;

    #[test]
    fn lanes_equal_arkworks_for_every_count_and_infinity() {
        let Some(ifma) = Ifma::detect() else {
            eprintln!("no AVX-512 IFMA token: the 8-lane preparation is not exercised");
            return;
        };
        let mut rng = ark_std::rand::rngs::StdRng::seed_from_u64(48);
        let mut points: Vec<G2Affine> = (0..19)
            .map(|_| G2Projective::rand(&mut rng).into_affine())
            .collect();
        points[3] = G2Affine::zero();
        points[10] = G2Affine::generator();
        points[11] = -G2Affine::generator();
        for n in [0, 1, 7, 8, 9, 16, 19] {
            let expected: Vec<G2Prepared<Config>> =
                points[..n].iter().map(|p| G2Prepared::from(*p)).collect();
            assert_eq!(g2_prepared_with(&points[..n], Some(ifma)), expected, "{n}");
            assert_eq!(g2_prepared_with(&points[..n], None), expected, "{n}");
        }
    }
}
