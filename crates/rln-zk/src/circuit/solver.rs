//! A native witness for the RLN circuit, solved from its constraint system.
//!
//! The circuit is a straight-line computation: after circom's simplification every wire that
//! is not an input or a bit of a decomposition appears alone, linearly, in the `C` side of
//! some constraint whose other wires come earlier. [`WitnessSolver::new`] finds that order
//! once (a work-list over the constraints); solving is then one pass of sparse dot products,
//! about a tenth of the time of circom's WebAssembly calculator. Bits of a `Num2Bits` have no
//! such constraint, so they are set from the value they decompose, found by wire name.
//! Every constraint not used to solve a wire is checked afterwards, so a solved witness
//! always satisfies the whole system; inputs that break a rule (a message id at the limit)
//! get [`ZkError::Unsatisfied`].
//!
//! The solver also splits the wires into those that depend only on the membership (secret,
//! limit, Merkle path) and those that change with each message (x, external nullifier,
//! message id and what is computed from them). [`WitnessSolver::solve_message`] recomputes
//! only the second kind on top of a witness solved before.

use ark_ff::{Field, One, Zero};
use rln_core::Fr;

use super::r1cs::{evaluate, Constraint, R1cs};
use super::{CircuitInputs, CIRCUIT_DEPTH};
use crate::error::ZkError;

/// The limit bits of the circuit (`RLN(20, 16)`).
const LIMIT_BITS: u32 = 16;

/// What a bit wire decomposes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BitSource {
    MessageId,
    Limit,
    /// `messageId + 2^16 - userMessageLimit`, the operand of `LessThan`.
    LessThan,
}

#[derive(Debug, Clone, Copy)]
struct BitHint {
    wire: usize,
    source: BitSource,
    bit: u32,
}

/// Solve `wire` from constraint `row`, where it appears only in `C`, with coefficient
/// `1 / inverse`.
#[derive(Debug, Clone, Copy)]
struct Step {
    row: usize,
    wire: usize,
    inverse: Fr,
}

#[derive(Debug, Clone, Copy)]
struct InputWires {
    identity_secret: usize,
    user_message_limit: usize,
    message_id: usize,
    path_elements: usize,
    path_index: usize,
    x: usize,
    external_nullifier: usize,
}

/// Per-message values: what changes between two messages of one member.
#[derive(Debug, Clone, Copy)]
pub struct MessageInputs {
    /// `messageId`.
    pub message_id: u64,
    /// `x`.
    pub x: Fr,
    /// `externalNullifier`.
    pub external_nullifier: Fr,
}

/// The witness solver of one circuit.
#[derive(Debug, Clone)]
pub struct WitnessSolver {
    constraints: Vec<Constraint>,
    names: Vec<String>,
    num_wires: usize,
    inputs: InputWires,
    hints: Vec<BitHint>,
    steps: Vec<Step>,
    checks: Vec<usize>,
    message_wires: Vec<usize>,
    message_hints: Vec<BitHint>,
    message_steps: Vec<Step>,
    message_checks: Vec<usize>,
}

fn wire_named(names: &[String], name: &str) -> Result<usize, ZkError> {
    names
        .iter()
        .position(|n| n == name)
        .ok_or_else(|| ZkError::Circuit(format!("the circuit has no wire {name}")))
}

/// Bit wires of the circuit's `Num2Bits` components: `<component>.out[<bit>]` under the
/// range check. The two plain decompositions are, in source order, the message id's and
/// the limit's; the one inside `LessThan` decomposes the comparison operand.
fn bit_hints(names: &[String]) -> Result<Vec<BitHint>, ZkError> {
    // (line of the component in the source, component path, bit, wire)
    let mut plain: Vec<(u32, String, u32, usize)> = Vec::new();
    let mut hints = Vec::new();
    for (wire, name) in names.iter().enumerate() {
        let Some(rest) = name.strip_prefix("main.MessageIdInRange_") else {
            continue;
        };
        let Some((component, bit)) = rest.rsplit_once(".out[") else {
            continue;
        };
        let bit: u32 = bit
            .strip_suffix(']')
            .and_then(|b| b.parse().ok())
            .ok_or_else(|| ZkError::Circuit(format!("unexpected wire name {name}")))?;
        if component.contains(".LessThan_") {
            hints.push(BitHint {
                wire,
                source: BitSource::LessThan,
                bit,
            });
        } else if let Some((_, num2bits)) = component.split_once(".Num2Bits_") {
            let line = num2bits
                .split('_')
                .next()
                .and_then(|l| l.parse().ok())
                .ok_or_else(|| ZkError::Circuit(format!("unexpected wire name {name}")))?;
            plain.push((line, component.to_string(), bit, wire));
        }
    }
    let mut components: Vec<(u32, String)> =
        plain.iter().map(|(l, c, _, _)| (*l, c.clone())).collect();
    components.sort();
    components.dedup();
    if components.len() != 2 {
        return Err(ZkError::Circuit(format!(
            "expected two Num2Bits in the range check, found {}",
            components.len()
        )));
    }
    for (_, component, bit, wire) in plain {
        let source = if component == components[0].1 {
            BitSource::MessageId
        } else {
            BitSource::Limit
        };
        hints.push(BitHint { wire, source, bit });
    }
    Ok(hints)
}

impl WitnessSolver {
    /// Plans the solution of `r1cs`, whose wires are named by `names` (see
    /// [`super::r1cs::parse_wire_names`]).
    pub fn new(r1cs: R1cs, names: Vec<String>) -> Result<Self, ZkError> {
        let num_wires = r1cs.num_wires;
        if names.len() != num_wires {
            return Err(ZkError::Circuit(format!(
                "{} wire names for {num_wires} wires",
                names.len()
            )));
        }
        let inputs = InputWires {
            identity_secret: wire_named(&names, "main.identitySecret")?,
            user_message_limit: wire_named(&names, "main.userMessageLimit")?,
            message_id: wire_named(&names, "main.messageId")?,
            path_elements: wire_named(&names, "main.pathElements[0]")?,
            path_index: wire_named(&names, "main.identityPathIndex[0]")?,
            x: wire_named(&names, "main.x")?,
            external_nullifier: wire_named(&names, "main.externalNullifier")?,
        };
        for level in 0..CIRCUIT_DEPTH {
            for (first, array) in [
                (inputs.path_elements, "pathElements"),
                (inputs.path_index, "identityPathIndex"),
            ] {
                if names.get(first + level).map(String::as_str)
                    != Some(format!("main.{array}[{level}]").as_str())
                {
                    return Err(ZkError::Circuit(format!(
                        "the circuit's {array} wires are not contiguous"
                    )));
                }
            }
        }
        let hints = bit_hints(&names)?;

        let mut known = vec![false; num_wires];
        known[0] = true;
        for wire in [
            inputs.identity_secret,
            inputs.user_message_limit,
            inputs.message_id,
            inputs.x,
            inputs.external_nullifier,
        ] {
            known[wire] = true;
        }
        for level in 0..CIRCUIT_DEPTH {
            known[inputs.path_elements + level] = true;
            known[inputs.path_index + level] = true;
        }
        for hint in &hints {
            known[hint.wire] = true;
        }

        // Work-list: rows with exactly one unknown wire are candidates.
        let constraints = r1cs.constraints;
        let mut rows_of = vec![Vec::new(); num_wires];
        let mut unknown = vec![0usize; constraints.len()];
        for (row, constraint) in constraints.iter().enumerate() {
            let mut wires: Vec<usize> = [&constraint.a, &constraint.b, &constraint.c]
                .into_iter()
                .flatten()
                .map(|(w, _)| *w)
                .collect();
            wires.sort_unstable();
            wires.dedup();
            for wire in wires {
                rows_of[wire].push(row);
                if !known[wire] {
                    unknown[row] += 1;
                }
            }
        }
        let mut queue: Vec<usize> = (0..constraints.len())
            .filter(|row| unknown[*row] == 1)
            .collect();
        let mut used = vec![false; constraints.len()];
        let mut steps = Vec::new();
        while let Some(row) = queue.pop() {
            if unknown[row] != 1 || used[row] {
                continue;
            }
            let constraint = &constraints[row];
            let Some(&(wire, _)) = constraint.c.iter().find(|(w, _)| !known[*w]) else {
                continue; // the unknown wire is in A or B: not solvable from this row
            };
            let in_factor = constraint
                .a
                .iter()
                .chain(&constraint.b)
                .any(|(w, _)| *w == wire);
            let coefficient: Fr = constraint
                .c
                .iter()
                .filter(|(w, _)| *w == wire)
                .map(|(_, c)| *c)
                .sum();
            let Some(inverse) = coefficient.inverse().filter(|_| !in_factor) else {
                continue;
            };
            used[row] = true;
            known[wire] = true;
            steps.push(Step { row, wire, inverse });
            for &other in &rows_of[wire] {
                unknown[other] -= 1;
                if unknown[other] == 1 {
                    queue.push(other);
                }
            }
        }
        if let Some(wire) = known.iter().position(|k| !k) {
            return Err(ZkError::Circuit(format!(
                "the solver cannot determine wire {wire} ({})",
                names[wire]
            )));
        }
        let checks: Vec<usize> = (0..constraints.len()).filter(|r| !used[*r]).collect();

        // Wires that change with the message: its inputs, and everything solved from them.
        let mut per_message = vec![false; num_wires];
        for wire in [inputs.message_id, inputs.x, inputs.external_nullifier] {
            per_message[wire] = true;
        }
        let message_hints: Vec<BitHint> = hints
            .iter()
            .filter(|h| h.source != BitSource::Limit)
            .copied()
            .collect();
        for hint in &message_hints {
            per_message[hint.wire] = true;
        }
        let touches = |constraint: &Constraint, flags: &[bool]| {
            [&constraint.a, &constraint.b, &constraint.c]
                .into_iter()
                .flatten()
                .any(|(w, _)| flags[*w])
        };
        let mut message_steps = Vec::new();
        for step in &steps {
            if touches(&constraints[step.row], &per_message) {
                per_message[step.wire] = true;
                message_steps.push(*step);
            }
        }
        let message_checks = checks
            .iter()
            .copied()
            .filter(|row| touches(&constraints[*row], &per_message))
            .collect();
        let message_wires = (0..num_wires).filter(|w| per_message[*w]).collect();

        Ok(Self {
            constraints,
            names,
            num_wires,
            inputs,
            hints,
            steps,
            checks,
            message_wires,
            message_hints,
            message_steps,
            message_checks,
        })
    }

    /// The solver of the circuit in this repository.
    pub fn rln() -> Result<Self, ZkError> {
        let r1cs = R1cs::parse(crate::keys::RLN_R1CS)?;
        let names = super::r1cs::parse_wire_names(crate::keys::RLN_WIRES, r1cs.num_wires)?;
        Self::new(r1cs, names)
    }

    /// Wires of the circuit, including the constant one.
    pub fn num_wires(&self) -> usize {
        self.num_wires
    }

    /// The wires that change from one message to the next, ascending.
    pub fn message_wires(&self) -> &[usize] {
        &self.message_wires
    }

    /// The full witness (wire 0 is the constant one, then the public signals).
    pub fn solve(&self, inputs: &CircuitInputs) -> Result<Vec<Fr>, ZkError> {
        inputs.check_depth()?;
        let mut z = vec![Fr::zero(); self.num_wires];
        z[0] = Fr::one();
        z[self.inputs.identity_secret] = inputs.identity_secret;
        z[self.inputs.user_message_limit] = Fr::from(inputs.user_message_limit);
        for (level, (sibling, bit)) in inputs
            .merkle_proof
            .siblings
            .iter()
            .zip(inputs.merkle_proof.path_index())
            .enumerate()
        {
            z[self.inputs.path_elements + level] = *sibling;
            z[self.inputs.path_index + level] = Fr::from(bit);
        }
        let message = MessageInputs {
            message_id: inputs.message_id,
            x: inputs.x,
            external_nullifier: inputs.external_nullifier,
        };
        self.set_message_inputs(&mut z, &message);
        self.set_bits(&mut z, &self.hints, &message, inputs.user_message_limit);
        self.run(&mut z, &self.steps, &self.checks)?;
        Ok(z)
    }

    /// Re-solves only the per-message wires of `witness`, a full witness solved before for
    /// the same member, limit and Merkle path.
    pub fn solve_message(
        &self,
        witness: &mut [Fr],
        message: &MessageInputs,
        user_message_limit: u64,
    ) -> Result<(), ZkError> {
        if witness.len() != self.num_wires {
            return Err(ZkError::Circuit(format!(
                "a witness of {} wires for a circuit of {}",
                witness.len(),
                self.num_wires
            )));
        }
        self.set_message_inputs(witness, message);
        self.set_bits(witness, &self.message_hints, message, user_message_limit);
        self.run(witness, &self.message_steps, &self.message_checks)
    }

    fn set_message_inputs(&self, z: &mut [Fr], message: &MessageInputs) {
        z[self.inputs.message_id] = Fr::from(message.message_id);
        z[self.inputs.x] = message.x;
        z[self.inputs.external_nullifier] = message.external_nullifier;
    }

    fn set_bits(&self, z: &mut [Fr], hints: &[BitHint], message: &MessageInputs, limit: u64) {
        // Out-of-range values give bits that break the range check, which `run` reports.
        let less_than = u128::from(message.message_id) + (1u128 << LIMIT_BITS)
            - u128::from(limit).min(1u128 << LIMIT_BITS);
        for hint in hints {
            let value = match hint.source {
                BitSource::MessageId => u128::from(message.message_id),
                BitSource::Limit => u128::from(limit),
                BitSource::LessThan => less_than,
            };
            let bit = hint.bit < 128 && (value >> hint.bit) & 1 == 1;
            z[hint.wire] = Fr::from(bit);
        }
    }

    fn run(&self, z: &mut [Fr], steps: &[Step], checks: &[usize]) -> Result<(), ZkError> {
        for step in steps {
            let constraint = &self.constraints[step.row];
            let product = evaluate(&constraint.a, z) * evaluate(&constraint.b, z);
            z[step.wire] = Fr::zero();
            let rest = evaluate(&constraint.c, z);
            z[step.wire] = (product - rest) * step.inverse;
        }
        for &row in checks {
            let constraint = &self.constraints[row];
            if evaluate(&constraint.a, z) * evaluate(&constraint.b, z) != evaluate(&constraint.c, z)
            {
                let wire = constraint
                    .a
                    .iter()
                    .chain(&constraint.b)
                    .chain(&constraint.c)
                    .map(|(w, _)| *w)
                    .find(|w| *w != 0)
                    .unwrap_or(0);
                return Err(ZkError::Unsatisfied(format!(
                    "constraint {row} on {} does not hold",
                    self.names[wire]
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_covers_the_circuit_and_isolates_the_message_part() {
        let solver = WitnessSolver::rln().unwrap();
        assert_eq!(solver.hints.len(), 45, "15 + 15 + 15 surviving bits");
        let message = solver.message_wires().len();
        // Poseidon(3), Poseidon(1), two bit decompositions and the signals around them.
        assert!((400..700).contains(&message), "{message} per-message wires");
        assert!(solver.message_wires().contains(&1), "y changes per message");
        assert!(!solver.message_wires().contains(&2), "the root does not");
    }
}
