// RLN v2 ("RLN-Diff"): a member proves it owns a leaf of the membership tree whose rate
// commitment binds its personal message limit, and emits a share (x, y) of a line whose
// slope is fixed per (epoch, message id). Two shares under one nullifier reveal the secret.
//
// Public signals in the order snarkjs and the verifier see them:
//   outputs y, root, nullifier; inputs x, externalNullifier.
pragma circom 2.1.0;

include "circomlib/circuits/poseidon.circom";
include "circomlib/circuits/comparators.circom";
include "circomlib/circuits/bitify.circom";

// Root of a binary Poseidon tree from a leaf, its siblings and the direction bits.
// pathIndex[i] = 0 when the running node is the left child at level i.
template MembershipRoot(DEPTH) {
    signal input leaf;
    signal input pathElements[DEPTH];
    signal input pathIndex[DEPTH];
    signal output root;

    signal node[DEPTH + 1];
    signal swap[DEPTH];
    node[0] <== leaf;
    for (var i = 0; i < DEPTH; i++) {
        pathIndex[i] * (pathIndex[i] - 1) === 0;
        // swap is the amount that moves node and sibling across each other when the bit is set.
        swap[i] <== pathIndex[i] * (pathElements[i] - node[i]);
        node[i + 1] <== Poseidon(2)([node[i] + swap[i], pathElements[i] - swap[i]]);
    }
    root <== node[DEPTH];
}

// 0 <= messageId < userMessageLimit < 2^BITS. Both operands are bit-decomposed first: LessThan
// alone accepts a wrapped-around field element as "small".
template MessageIdInRange(BITS) {
    signal input messageId;
    signal input userMessageLimit;

    _ <== Num2Bits(BITS)(messageId);
    _ <== Num2Bits(BITS)(userMessageLimit);
    signal below <== LessThan(BITS)([messageId, userMessageLimit]);
    below === 1;
}

template RLN(DEPTH, LIMIT_BITS) {
    signal input identitySecret;
    signal input userMessageLimit;
    signal input messageId;
    signal input pathElements[DEPTH];
    signal input identityPathIndex[DEPTH];
    signal input x;
    signal input externalNullifier;

    signal output y;
    signal output root;
    signal output nullifier;

    signal idCommitment <== Poseidon(1)([identitySecret]);
    signal rateCommitment <== Poseidon(2)([idCommitment, userMessageLimit]);
    root <== MembershipRoot(DEPTH)(rateCommitment, pathElements, identityPathIndex);

    MessageIdInRange(LIMIT_BITS)(messageId, userMessageLimit);

    signal a1 <== Poseidon(3)([identitySecret, externalNullifier, messageId]);
    y <== identitySecret + a1 * x;
    nullifier <== Poseidon(1)([a1]);
}

component main { public [x, externalNullifier] } = RLN(20, 16);
