//! A circuit's witness computed from its witness graph (iden3 circom-witnesscalc format), the
//! form in which the reference implementation ships the witness of Waku's RLN circuit.
//!
//! A graph is a list of nodes in evaluation order: inputs (an index into the input buffer,
//! whose slot 0 is the constant one), constants, and unary, binary and ternary operations on
//! earlier nodes with circom's semantics. Its metadata names the node of each wire of the
//! witness and the slots of each named input. Evaluating it is one pass over the nodes.
//!
//! The key's constraint matrices cannot serve instead: a Groth16 key for circom carries only
//! the `A` and `B` sides of the constraints, so a solver like [`super::solver`] has nothing
//! to solve the products from.
//!
//! File layout: the magic `wtns.graph.001`, the node count (u64 little-endian), each node as
//! a length-delimited protobuf `Node`, the length-delimited protobuf `GraphMetadata`, then
//! the metadata's offset (u64). Loading checks every index, so evaluation cannot go out of
//! bounds whatever the file holds.

use ark_ff::{BigInteger, BigInteger256, Field, One, PrimeField, Zero};
use prost::Message;
use rln_core::Fr;

use super::solver::MessageInputs;
use super::{CircuitInputs, CIRCUIT_DEPTH};
use crate::error::ZkError;

const MAGIC: &[u8] = b"wtns.graph.001";

/// Most input slots a graph may use (the RLN circuit uses 46). Solving allocates one field
/// element per slot, and a slot index is a number in the file: without a bound a few bytes
/// could ask for 2^32 slots (128 GiB).
const MAX_INPUT_SLOTS: usize = 1 << 16;

/// The protobuf messages of the format, as prost reads them.
mod proto {
    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct BigUInt {
        #[prost(bytes = "vec", tag = "1")]
        pub(super) value_le: Vec<u8>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct InputNode {
        #[prost(uint32, tag = "1")]
        pub(super) idx: u32,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct ConstantNode {
        #[prost(message, optional, tag = "1")]
        pub(super) value: Option<BigUInt>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct UnoOpNode {
        #[prost(int32, tag = "1")]
        pub(super) op: i32,
        #[prost(uint32, tag = "2")]
        pub(super) a_idx: u32,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct DuoOpNode {
        #[prost(int32, tag = "1")]
        pub(super) op: i32,
        #[prost(uint32, tag = "2")]
        pub(super) a_idx: u32,
        #[prost(uint32, tag = "3")]
        pub(super) b_idx: u32,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct TresOpNode {
        #[prost(int32, tag = "1")]
        pub(super) op: i32,
        #[prost(uint32, tag = "2")]
        pub(super) a_idx: u32,
        #[prost(uint32, tag = "3")]
        pub(super) b_idx: u32,
        #[prost(uint32, tag = "4")]
        pub(super) c_idx: u32,
    }
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub(super) enum Kind {
        #[prost(message, tag = "1")]
        Input(InputNode),
        #[prost(message, tag = "2")]
        Constant(ConstantNode),
        #[prost(message, tag = "3")]
        Uno(UnoOpNode),
        #[prost(message, tag = "4")]
        Duo(DuoOpNode),
        #[prost(message, tag = "5")]
        Tres(TresOpNode),
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct Node {
        #[prost(oneof = "Kind", tags = "1, 2, 3, 4, 5")]
        pub(super) kind: Option<Kind>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct SignalDescription {
        #[prost(uint32, tag = "1")]
        pub(super) offset: u32,
        #[prost(uint32, tag = "2")]
        pub(super) len: u32,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct GraphMetadata {
        #[prost(uint32, repeated, tag = "1")]
        pub(super) witness_signals: Vec<u32>,
        #[prost(map = "string, message", tag = "2")]
        pub(super) inputs: std::collections::HashMap<String, SignalDescription>,
    }
}

/// Binary operations, numbered as in the format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Mul,
    Div,
    Add,
    Sub,
    Pow,
    Idiv,
    Mod,
    Eq,
    Neq,
    Lt,
    Gt,
    Leq,
    Geq,
    Land,
    Lor,
    Shl,
    Shr,
    Bor,
    Band,
    Bxor,
}

const OPS: [Op; 20] = [
    Op::Mul,
    Op::Div,
    Op::Add,
    Op::Sub,
    Op::Pow,
    Op::Idiv,
    Op::Mod,
    Op::Eq,
    Op::Neq,
    Op::Lt,
    Op::Gt,
    Op::Leq,
    Op::Geq,
    Op::Land,
    Op::Lor,
    Op::Shl,
    Op::Shr,
    Op::Bor,
    Op::Band,
    Op::Bxor,
];

/// One node; operands are indices of earlier nodes.
#[derive(Debug, Clone, Copy)]
enum Node {
    Input(u32),
    Constant(Fr),
    Neg(u32),
    Id(u32),
    Duo(Op, u32, u32),
    /// `a ? b : c`.
    Cond(u32, u32, u32),
}

/// Where the circuit's named inputs sit in the input buffer.
#[derive(Debug, Clone, Copy)]
struct InputSlots {
    identity_secret: usize,
    user_message_limit: usize,
    message_id: usize,
    path_elements: usize,
    path_index: usize,
    x: usize,
    external_nullifier: usize,
}

/// A parsed witness graph of the RLN circuit.
#[derive(Debug, Clone)]
pub struct WitnessGraph {
    nodes: Vec<Node>,
    /// The node of each wire.
    wires: Vec<u32>,
    input_len: usize,
    slots: InputSlots,
    /// Wires whose value depends on the message id, `x` or the external nullifier.
    message_wires: Vec<usize>,
}

fn graph_error(message: impl Into<String>) -> ZkError {
    ZkError::Circuit(format!("witness graph: {}", message.into()))
}

/// Reads one varint-length-prefixed protobuf message at `*at`.
fn read_delimited<M: Message + Default>(bytes: &[u8], at: &mut usize) -> Result<M, ZkError> {
    let rest = bytes.get(*at..).unwrap_or_default();
    let mut cursor = rest;
    let len = prost::decode_length_delimiter(&mut cursor)
        .map_err(|e| graph_error(format!("bad length at byte {}: {e}", *at)))?;
    let head = rest.len() - cursor.len();
    let body = cursor
        .get(..len)
        .ok_or_else(|| graph_error(format!("the file ends inside the message at byte {}", *at)))?;
    let message =
        M::decode(body).map_err(|e| graph_error(format!("bad message at byte {}: {e}", *at)))?;
    *at += head + len;
    Ok(message)
}

/// A constant: up to 32 little-endian bytes, canonical.
fn fr_from_le(bytes: &[u8]) -> Result<Fr, ZkError> {
    let mut le = [0u8; 32];
    le.get_mut(..bytes.len())
        .ok_or_else(|| graph_error("a constant longer than 32 bytes"))?
        .copy_from_slice(bytes);
    rln_core::fr_from_le_bytes(&le)
        .map_err(|_| graph_error("a constant not below the field modulus"))
}

impl WitnessGraph {
    /// Parses a graph file and checks that it is a witness of the RLN circuit (depth
    /// [`CIRCUIT_DEPTH`]) with every index in range.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ZkError> {
        if !bytes.starts_with(MAGIC) {
            return Err(graph_error(
                "not a witness graph (no `wtns.graph.001` magic)",
            ));
        }
        let mut at = MAGIC.len();
        let count = bytes
            .get(at..at + 8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map(u64::from_le_bytes)
            .ok_or_else(|| graph_error("the file ends before the node count"))?;
        at += 8;
        // A node takes at least two bytes: a count beyond that is a corrupt file, refused
        // before anything is allocated for it.
        let count = usize::try_from(count)
            .ok()
            .filter(|n| *n <= bytes.len().saturating_sub(at) / 2)
            .ok_or_else(|| graph_error(format!("{count} nodes cannot fit in the file")))?;
        let mut nodes = Vec::with_capacity(count);
        let mut input_len = 1usize;
        for i in 0..count {
            let node: proto::Node = read_delimited(bytes, &mut at)?;
            let earlier = |idx: u32| {
                if (idx as usize) < i {
                    Ok(idx)
                } else {
                    Err(graph_error(format!(
                        "node {i} uses node {idx}, not an earlier one"
                    )))
                }
            };
            let node = match node.kind {
                Some(proto::Kind::Input(input)) => {
                    let slot = input.idx as usize;
                    if slot >= MAX_INPUT_SLOTS {
                        return Err(graph_error(format!(
                            "node {i} reads input slot {slot}; at most {MAX_INPUT_SLOTS} slots \
                             are supported"
                        )));
                    }
                    input_len = input_len.max(slot + 1);
                    Node::Input(input.idx)
                }
                Some(proto::Kind::Constant(c)) => {
                    Node::Constant(fr_from_le(&c.value.unwrap_or_default().value_le)?)
                }
                Some(proto::Kind::Uno(uno)) => match uno.op {
                    0 => Node::Neg(earlier(uno.a_idx)?),
                    1 => Node::Id(earlier(uno.a_idx)?),
                    op => return Err(graph_error(format!("node {i}: unknown unary op {op}"))),
                },
                Some(proto::Kind::Duo(duo)) => {
                    let op = usize::try_from(duo.op)
                        .ok()
                        .and_then(|op| OPS.get(op))
                        .ok_or_else(|| {
                            graph_error(format!("node {i}: unknown binary op {}", duo.op))
                        })?;
                    Node::Duo(*op, earlier(duo.a_idx)?, earlier(duo.b_idx)?)
                }
                Some(proto::Kind::Tres(tres)) if tres.op == 0 => Node::Cond(
                    earlier(tres.a_idx)?,
                    earlier(tres.b_idx)?,
                    earlier(tres.c_idx)?,
                ),
                Some(proto::Kind::Tres(tres)) => {
                    return Err(graph_error(format!(
                        "node {i}: unknown ternary op {}",
                        tres.op
                    )))
                }
                None => return Err(graph_error(format!("node {i} is empty"))),
            };
            nodes.push(node);
        }
        let metadata: proto::GraphMetadata = read_delimited(bytes, &mut at)?;
        let wires = metadata.witness_signals;
        if let Some(bad) = wires.iter().find(|w| **w as usize >= nodes.len()) {
            return Err(graph_error(format!(
                "a wire refers to node {bad} of {}",
                nodes.len()
            )));
        }
        if wires.is_empty() {
            return Err(graph_error("the graph has no wires"));
        }
        let slot = |name: &str, len: usize| -> Result<usize, ZkError> {
            let signal = metadata
                .inputs
                .get(name)
                .ok_or_else(|| graph_error(format!("the graph has no input `{name}`")))?;
            if signal.len as usize != len {
                return Err(graph_error(format!(
                    "input `{name}` has {} elements, the RLN circuit {len}",
                    signal.len
                )));
            }
            Ok(signal.offset as usize)
        };
        let slots = InputSlots {
            identity_secret: slot("identitySecret", 1)?,
            user_message_limit: slot("userMessageLimit", 1)?,
            message_id: slot("messageId", 1)?,
            path_elements: slot("pathElements", CIRCUIT_DEPTH)?,
            path_index: slot("identityPathIndex", CIRCUIT_DEPTH)?,
            x: slot("x", 1)?,
            external_nullifier: slot("externalNullifier", 1)?,
        };
        for (name, signal) in &metadata.inputs {
            let end = signal.offset as usize + signal.len as usize;
            if end > MAX_INPUT_SLOTS {
                return Err(graph_error(format!(
                    "input `{name}` ends at slot {end}; at most {MAX_INPUT_SLOTS} slots are \
                     supported"
                )));
            }
            input_len = input_len.max(end);
        }
        let message_wires = message_dependent(
            &nodes,
            &wires,
            &[slots.message_id, slots.x, slots.external_nullifier],
        );
        Ok(Self {
            nodes,
            wires,
            input_len,
            slots,
            message_wires,
        })
    }

    /// Reads a graph file.
    pub fn from_path(path: &std::path::Path) -> Result<Self, ZkError> {
        Self::from_bytes(&crate::keys::read(path)?)
    }

    /// Wires of the circuit, including the constant one.
    pub fn num_wires(&self) -> usize {
        self.wires.len()
    }

    /// The wires that change from one message to the next, ascending.
    pub fn message_wires(&self) -> &[usize] {
        &self.message_wires
    }

    /// The full witness (wire 0 is the constant one, then the public signals).
    pub fn solve(&self, inputs: &CircuitInputs) -> Result<Vec<Fr>, ZkError> {
        inputs.check_depth()?;
        let mut buffer = vec![Fr::zero(); self.input_len];
        buffer[0] = Fr::one();
        let s = &self.slots;
        buffer[s.identity_secret] = inputs.identity_secret;
        buffer[s.user_message_limit] = Fr::from(inputs.user_message_limit);
        buffer[s.message_id] = Fr::from(inputs.message_id);
        buffer[s.x] = inputs.x;
        buffer[s.external_nullifier] = inputs.external_nullifier;
        for (level, (sibling, bit)) in inputs
            .merkle_proof
            .siblings
            .iter()
            .zip(inputs.merkle_proof.path_index())
            .enumerate()
        {
            buffer[s.path_elements + level] = *sibling;
            buffer[s.path_index + level] = Fr::from(bit);
        }
        let values = self.evaluate(&buffer);
        Ok(self.wires.iter().map(|n| values[*n as usize]).collect())
    }

    /// Recomputes `witness`, solved before for the same member, limit and path, for another
    /// message. The graph is evaluated whole: at about a millisecond that is cheaper than
    /// keeping its intermediate values per membership.
    pub fn solve_message(
        &self,
        witness: &mut [Fr],
        inputs: &CircuitInputs,
        message: &MessageInputs,
    ) -> Result<(), ZkError> {
        if witness.len() != self.wires.len() {
            return Err(ZkError::Circuit(format!(
                "a witness of {} wires for a circuit of {}",
                witness.len(),
                self.wires.len()
            )));
        }
        let inputs = CircuitInputs {
            message_id: message.message_id,
            x: message.x,
            external_nullifier: message.external_nullifier,
            ..inputs.clone()
        };
        witness.copy_from_slice(&self.solve(&inputs)?);
        Ok(())
    }

    fn evaluate(&self, inputs: &[Fr]) -> Vec<Fr> {
        let mut values: Vec<Fr> = Vec::with_capacity(self.nodes.len());
        for node in &self.nodes {
            // Operands are earlier nodes and inputs are below `input_len`, both checked at
            // load, so the indexing below stays in bounds.
            let at = |i: u32| values[i as usize];
            let value = match *node {
                Node::Input(i) => inputs[i as usize],
                Node::Constant(c) => c,
                Node::Neg(a) => -at(a),
                Node::Id(a) => at(a),
                Node::Duo(op, a, b) => binary(op, at(a), at(b)),
                Node::Cond(a, b, c) => {
                    if at(a).is_zero() {
                        at(c)
                    } else {
                        at(b)
                    }
                }
            };
            values.push(value);
        }
        values
    }
}

/// The wires whose node depends, directly or not, on one of the input slots `slots`.
fn message_dependent(nodes: &[Node], wires: &[u32], slots: &[usize]) -> Vec<usize> {
    let mut depends = vec![false; nodes.len()];
    for (i, node) in nodes.iter().enumerate() {
        let on = |j: u32| depends[j as usize];
        depends[i] = match *node {
            Node::Input(slot) => slots.contains(&(slot as usize)),
            Node::Constant(_) => false,
            Node::Neg(a) | Node::Id(a) => on(a),
            Node::Duo(_, a, b) => on(a) || on(b),
            Node::Cond(a, b, c) => on(a) || on(b) || on(c),
        };
    }
    wires
        .iter()
        .enumerate()
        .filter(|(_, node)| depends[**node as usize])
        .map(|(wire, _)| wire)
        .collect()
}

/// `(p − 1) / 2`: circom reads field elements above it as negative in comparisons.
fn half_modulus() -> BigInteger256 {
    let mut half = Fr::MODULUS;
    half.div2();
    half
}

/// `a < b` with circom's signed reading of field elements.
fn signed_less(a: &Fr, b: &Fr) -> bool {
    let half = half_modulus();
    let (a, b) = (a.into_bigint(), b.into_bigint());
    match (a > half, b > half) {
        (false, true) => false,
        (true, false) => true,
        _ => a < b,
    }
}

fn integer(value: &Fr) -> num_bigint::BigUint {
    (*value).into()
}

fn from_integer(value: num_bigint::BigUint) -> Fr {
    Fr::from(value)
}

/// A shift count, if below 256.
fn shift_count(value: &Fr) -> Option<u32> {
    let limbs = value.into_bigint().0;
    (limbs[1..].iter().all(|l| *l == 0) && limbs[0] < 256).then_some(limbs[0] as u32)
}

fn bitwise(a: Fr, b: Fr, f: impl Fn(u64, u64) -> u64) -> Fr {
    let (a, b) = (a.into_bigint().0, b.into_bigint().0);
    let limbs: [u64; 4] = std::array::from_fn(|i| f(a[i], b[i]));
    let mut le = Vec::with_capacity(32);
    for limb in limbs {
        le.extend_from_slice(&limb.to_le_bytes());
    }
    Fr::from_le_bytes_mod_order(&le)
}

/// One binary operation with circom's semantics: arithmetic in the field, division by zero
/// giving zero (the witness then fails its constraints), comparisons signed, integer
/// division, remainder, shifts and bit operations on the canonical integers.
fn binary(op: Op, a: Fr, b: Fr) -> Fr {
    let truth = |t: bool| if t { Fr::one() } else { Fr::zero() };
    match op {
        Op::Mul => a * b,
        Op::Div => b.inverse().map_or(Fr::zero(), |inv| a * inv),
        Op::Add => a + b,
        Op::Sub => a - b,
        Op::Pow => a.pow(b.into_bigint()),
        Op::Idiv if b.is_zero() => Fr::zero(),
        Op::Idiv => from_integer(integer(&a) / integer(&b)),
        Op::Mod if b.is_zero() => Fr::zero(),
        Op::Mod => from_integer(integer(&a) % integer(&b)),
        Op::Eq => truth(a == b),
        Op::Neq => truth(a != b),
        Op::Lt => truth(signed_less(&a, &b)),
        Op::Gt => truth(signed_less(&b, &a)),
        Op::Leq => truth(!signed_less(&b, &a)),
        Op::Geq => truth(!signed_less(&a, &b)),
        Op::Land => truth(!a.is_zero() && !b.is_zero()),
        Op::Lor => truth(!a.is_zero() || !b.is_zero()),
        Op::Shl => match shift_count(&b) {
            Some(n) if n < Fr::MODULUS_BIT_SIZE => from_integer(integer(&a) << n as usize),
            _ => Fr::zero(),
        },
        Op::Shr => match shift_count(&b) {
            Some(n) if n < Fr::MODULUS_BIT_SIZE => {
                Fr::from_bigint(a.into_bigint() >> n).unwrap_or_default()
            }
            _ => Fr::zero(),
        },
        Op::Bor => bitwise(a, b, |x, y| x | y),
        Op::Band => bitwise(a, b, |x, y| x & y),
        Op::Bxor => bitwise(a, b, |x, y| x ^ y),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn fr(v: u64) -> Fr {
        Fr::from(v)
    }

    #[test]
    fn comparisons_read_high_elements_as_negative() {
        let minus_one = -fr(1);
        assert_eq!(binary(Op::Lt, minus_one, fr(0)), fr(1));
        assert_eq!(binary(Op::Gt, fr(0), minus_one), fr(1));
        assert_eq!(binary(Op::Lt, fr(3), fr(5)), fr(1));
        assert_eq!(binary(Op::Geq, fr(5), fr(5)), fr(1));
        assert_eq!(binary(Op::Leq, fr(6), fr(5)), fr(0));
    }

    #[test]
    fn integer_operations() {
        assert_eq!(binary(Op::Idiv, fr(7), fr(2)), fr(3));
        assert_eq!(binary(Op::Mod, fr(7), fr(4)), fr(3));
        assert_eq!(binary(Op::Idiv, fr(7), fr(0)), fr(0));
        assert_eq!(binary(Op::Shr, fr(0b1011), fr(1)), fr(0b101));
        assert_eq!(binary(Op::Shl, fr(3), fr(4)), fr(48));
        assert_eq!(binary(Op::Shr, fr(3), fr(300)), fr(0));
        assert_eq!(binary(Op::Band, fr(0b1100), fr(0b1010)), fr(0b1000));
        assert_eq!(binary(Op::Bor, fr(0b1100), fr(0b1010)), fr(0b1110));
        assert_eq!(binary(Op::Bxor, fr(0b1100), fr(0b1010)), fr(0b0110));
        assert_eq!(binary(Op::Pow, fr(3), fr(4)), fr(81));
        assert_eq!(binary(Op::Div, fr(6), fr(0)), fr(0));
        assert_eq!(binary(Op::Div, fr(6), fr(3)), fr(2));
        // A shift past the modulus wraps into the field.
        let big = binary(Op::Shl, fr(1), fr(253));
        assert_eq!(big, fr(2).pow([253u64]));
    }

    fn tiny_graph(nodes: &[proto::Node], metadata: &proto::GraphMetadata) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&(nodes.len() as u64).to_le_bytes());
        for node in nodes {
            node.encode_length_delimited(&mut out).unwrap();
        }
        let offset = out.len() as u64;
        metadata.encode_length_delimited(&mut out).unwrap();
        out.extend_from_slice(&offset.to_le_bytes());
        out
    }

    /// The RLN circuit's inputs where Waku's graph puts them, after the constant one.
    fn rln_inputs() -> HashMap<String, proto::SignalDescription> {
        [
            ("identitySecret", 1, 1),
            ("userMessageLimit", 2, 1),
            ("messageId", 3, 1),
            ("pathElements", 4, 20),
            ("identityPathIndex", 24, 20),
            ("x", 44, 1),
            ("externalNullifier", 45, 1),
        ]
        .into_iter()
        .map(|(name, offset, len)| (name.to_string(), proto::SignalDescription { offset, len }))
        .collect()
    }

    fn input(idx: u32) -> proto::Node {
        proto::Node {
            kind: Some(proto::Kind::Input(proto::InputNode { idx })),
        }
    }

    /// Found with the `witness_graph` fuzz target (the input is in
    /// `fuzz/seeds/witness_graph/`): an input slot of 2^32 − 1 loaded, and solving then
    /// allocated 128 GiB for the input buffer and aborted the process.
    #[test]
    fn input_slots_are_bounded() {
        let metadata = proto::GraphMetadata {
            witness_signals: vec![0],
            inputs: rln_inputs(),
        };
        let graph = WitnessGraph::from_bytes(&tiny_graph(&[input(44)], &metadata)).unwrap();
        let inputs = CircuitInputs {
            identity_secret: fr(1),
            user_message_limit: 10,
            message_id: 0,
            merkle_proof: rln_core::MerkleProof {
                leaf_index: 0,
                siblings: vec![fr(0); CIRCUIT_DEPTH],
            },
            x: fr(9),
            external_nullifier: fr(2),
        };
        assert_eq!(graph.solve(&inputs).unwrap(), vec![fr(9)]);
        let err = WitnessGraph::from_bytes(&tiny_graph(&[input(u32::MAX)], &metadata))
            .unwrap_err()
            .to_string();
        assert!(err.contains("reads input slot 4294967295"), "{err}");
        let mut far = metadata.clone();
        far.inputs.insert(
            "extra".into(),
            proto::SignalDescription {
                offset: u32::MAX,
                len: u32::MAX,
            },
        );
        let err = WitnessGraph::from_bytes(&tiny_graph(&[input(1)], &far))
            .unwrap_err()
            .to_string();
        assert!(err.contains("input `extra` ends at slot"), "{err}");
    }

    #[test]
    fn corrupt_files_are_refused_without_panic() {
        assert!(WitnessGraph::from_bytes(b"").is_err());
        assert!(WitnessGraph::from_bytes(b"wtns.graph.001").is_err());
        let mut huge = MAGIC.to_vec();
        huge.extend_from_slice(&u64::MAX.to_le_bytes());
        assert!(WitnessGraph::from_bytes(&huge).is_err());
        // A node that refers to itself.
        let node = proto::Node {
            kind: Some(proto::Kind::Uno(proto::UnoOpNode { op: 0, a_idx: 0 })),
        };
        let bytes = tiny_graph(&[node], &proto::GraphMetadata::default());
        let err = WitnessGraph::from_bytes(&bytes).unwrap_err().to_string();
        assert!(err.contains("not an earlier one"), "{err}");
        // A graph without the RLN inputs.
        let node = proto::Node {
            kind: Some(proto::Kind::Input(proto::InputNode { idx: 0 })),
        };
        let metadata = proto::GraphMetadata {
            witness_signals: vec![0],
            inputs: HashMap::new(),
        };
        let err = WitnessGraph::from_bytes(&tiny_graph(&[node], &metadata))
            .unwrap_err()
            .to_string();
        assert!(err.contains("no input `identitySecret`"), "{err}");
    }
}
