//! Capability tokens: what this CPU may run, found once at run time.
//!
//! Each fast path needs instructions that not every x86-64 CPU has. Its entry points take a
//! token, a zero-sized value with a private field, so that only [`Adx::detect`] and
//! [`Ifma::detect`] can create one, and they do so only after the CPU said it has the
//! instructions. Code holding a token may therefore run them; the `unsafe` blocks of the
//! fast paths cite the token as their bound.
//!
//! The portable (arkworks) path can be forced, for comparisons and for CPUs whose fast path
//! is suspected of a fault: with the cargo feature `portable`, or with `RLN_FORCE_PORTABLE=1`
//! in the environment (read once, at the first detection). Then no token is handed out.

use std::fmt;
use std::sync::OnceLock;

use serde::Serialize;

/// The environment variable that forces the portable path when set to `1`.
pub const FORCE_PORTABLE_VAR: &str = "RLN_FORCE_PORTABLE";

/// Whether the portable path is forced, by the `portable` feature or by
/// `RLN_FORCE_PORTABLE=1`. The variable is read once per process.
pub fn forced_portable() -> bool {
    static FORCED: OnceLock<bool> = OnceLock::new();
    *FORCED.get_or_init(|| {
        cfg!(feature = "portable")
            || std::env::var_os(FORCE_PORTABLE_VAR).is_some_and(|value| value == "1")
    })
}

/// Proof that this CPU runs BMI2 (`mulx`) and ADX (`adcx`, `adox`): the scalar Montgomery
/// arithmetic in assembly that Poseidon uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Adx {
    _detected: (),
}

impl Adx {
    /// The token, where the CPU has both extensions and the portable path is not forced.
    pub fn detect() -> Option<Adx> {
        static DETECTED: OnceLock<Option<Adx>> = OnceLock::new();
        *DETECTED
            .get_or_init(|| (!forced_portable() && cpu_has_adx()).then_some(Adx { _detected: () }))
    }
}

/// Proof that this CPU runs AVX-512F and AVX-512 IFMA (`vpmadd52{lo,hi}uq`): field
/// arithmetic eight lanes wide, used by the MSMs, the FFTs and Poseidon's partial rounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ifma {
    _detected: (),
}

impl Ifma {
    /// The token, where the CPU has both extensions and the portable path is not forced.
    pub fn detect() -> Option<Ifma> {
        static DETECTED: OnceLock<Option<Ifma>> = OnceLock::new();
        *DETECTED.get_or_init(|| {
            (!forced_portable() && cpu_has_ifma()).then_some(Ifma { _detected: () })
        })
    }
}

#[cfg(target_arch = "x86_64")]
fn cpu_has_adx() -> bool {
    std::arch::is_x86_feature_detected!("bmi2") && std::arch::is_x86_feature_detected!("adx")
}

#[cfg(not(target_arch = "x86_64"))]
fn cpu_has_adx() -> bool {
    false
}

#[cfg(target_arch = "x86_64")]
fn cpu_has_ifma() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512ifma")
}

#[cfg(not(target_arch = "x86_64"))]
fn cpu_has_ifma() -> bool {
    false
}

/// Which arithmetic this process runs, for the start-up log and the node's debug endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct BackendReport {
    /// The scalar field arithmetic of Poseidon: `"bmi2+adx"` or `"portable"`.
    pub scalar: &'static str,
    /// The 8-lane arithmetic of the MSMs and FFTs: `"avx512-ifma"` or `"portable"`.
    pub lanes: &'static str,
    /// Whether the portable path was forced (`RLN_FORCE_PORTABLE=1` or the `portable`
    /// feature), so a `"portable"` above says nothing about the CPU.
    pub forced_portable: bool,
}

/// The paths that detection selected in this process.
pub fn backend_report() -> BackendReport {
    BackendReport {
        scalar: if Adx::detect().is_some() {
            "bmi2+adx"
        } else {
            "portable"
        },
        lanes: if Ifma::detect().is_some() {
            "avx512-ifma"
        } else {
            "portable"
        },
        forced_portable: forced_portable(),
    }
}

impl fmt::Display for BackendReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "scalar {}, lanes {}", self.scalar, self.lanes)?;
        if self.forced_portable {
            write!(f, " (portable forced)")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `RLN_REQUIRE_<NAME>=1` makes a missing token a failure: on a machine meant to run the
    /// fast path (CI on a known CPU), silently testing only the portable path would hide a
    /// detection that broke.
    fn required(name: &str) -> bool {
        std::env::var_os(format!("RLN_REQUIRE_{name}")).is_some_and(|value| value == "1")
    }

    #[test]
    fn adx_token_is_present_where_required() {
        let token = Adx::detect();
        println!(
            "scalar path: {} ({})",
            backend_report().scalar,
            backend_report()
        );
        assert!(
            token.is_some() || !required("ADX"),
            "RLN_REQUIRE_ADX=1 but no BMI2+ADX token: the CPU lacks the extensions or the \
             portable path is forced ({})",
            backend_report()
        );
    }

    #[test]
    fn ifma_token_is_present_where_required() {
        let token = Ifma::detect();
        println!(
            "lane path: {} ({})",
            backend_report().lanes,
            backend_report()
        );
        assert!(
            token.is_some() || !required("IFMA"),
            "RLN_REQUIRE_IFMA=1 but no AVX-512 IFMA token: the CPU lacks the extensions or the \
             portable path is forced ({})",
            backend_report()
        );
    }

    #[test]
    fn forcing_hands_out_no_token_and_the_report_agrees() {
        let report = backend_report();
        if forced_portable() {
            assert!(Adx::detect().is_none() && Ifma::detect().is_none());
        }
        assert_eq!(report.scalar == "bmi2+adx", Adx::detect().is_some());
        assert_eq!(report.lanes == "avx512-ifma", Ifma::detect().is_some());
        assert!(report.to_string().starts_with("scalar "));
    }
}
