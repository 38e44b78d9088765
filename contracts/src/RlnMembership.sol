// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {IPoseidonT2, IPoseidonT3, Poseidon} from "./Poseidon.sol";

/// @title RLN v2 membership set
/// @notice Members of a depth-20 Poseidon Merkle tree (capacity 2^20), registered with a deposit
/// proportional to their message limit. Leaf `i` is the rate commitment
/// `Poseidon(idCommitment, userMessageLimit)` of the member with index `i`, or 0 once that member
/// is erased. Indices are assigned 0, 1, 2, ... and never reused. Every change of a leaf emits an
/// event (`MembershipRegistered` or `MembershipErased`), so replaying the logs reproduces the set
/// exactly; there is no lazy or time-based expiry.
///
/// An erased member's deposit stays frozen for `withdrawalDelay` seconds and can be slashed
/// until it is withdrawn: a spammer cannot erase and withdraw before the slash that its own
/// messages provoked lands. The delay must exceed an epoch plus the nodes' clock gap plus the
/// time a slasher needs to commit and reveal (including an RPC outage it should ride out).
/// @dev The tree itself is kept off chain by the nodes; the contract stores the leaf values.
contract RlnMembership {
    using Poseidon for IPoseidonT2;
    using Poseidon for IPoseidonT3;

    // ------------------------------------------------------------------ constants

    /// @notice BN254 scalar field modulus: identity commitments and secrets are below it.
    uint256 public constant Q =
        21888242871839275222246405745257275088548364400416034343698204186575808495617;
    /// @notice Depth of the membership Merkle tree.
    uint8 public constant DEPTH = 20;
    /// @notice Number of leaves: the set is full after this many registrations.
    uint32 public constant MAX_MEMBERS = uint32(1) << DEPTH;
    /// @notice The circuit range-checks message ids with 16 bits: limits must fit.
    uint32 public constant LIMIT_CAP = (uint32(1) << 16) - 1;
    /// @notice Most leaves one `leaves()` call returns.
    uint32 public constant MAX_LEAVES_PER_CALL = 4096;

    // ------------------------------------------------------------------ types

    enum MemberState {
        None,
        Active,
        Erased
    }

    struct Member {
        uint32 index;
        uint32 userMessageLimit;
        address holder;
        MemberState state;
        /// When an erased member's deposit may be withdrawn (unix seconds; 0 while active).
        uint64 unlockAt;
        /// Held while active, frozen once erased, 0 after a withdrawal or a slash.
        uint256 deposit;
    }

    struct SlashCommit {
        address committer;
        uint64 blockNumber;
    }

    // ------------------------------------------------------------------ configuration

    /// @notice Wei to deposit per unit of message limit.
    uint256 public immutable depositPerMessage;
    uint32 public immutable minLimit;
    uint32 public immutable maxLimit;
    IPoseidonT2 public immutable poseidonT2;
    IPoseidonT3 public immutable poseidonT3;
    /// @notice Block of deployment: membership sync backfills logs from here.
    uint256 public immutable deploymentBlock;
    /// @notice Seconds between an erasure and the earliest withdrawal of its deposit.
    uint64 public immutable withdrawalDelay;

    // ------------------------------------------------------------------ state

    mapping(uint256 idCommitment => Member) private _members;
    /// Leaf values by index; its length is the next index.
    uint256[] private _leaves;
    /// @notice How many members were erased (by their holder or a slash): the zero leaves.
    /// With `memberCount()` it lets a node check that its log replay missed no event.
    uint32 public erasedCount;
    mapping(bytes32 commitment => SlashCommit) private _slashCommits;
    mapping(bytes32 commitment => bool) private _usedSlashCommits;

    // ------------------------------------------------------------------ events

    event MembershipRegistered(uint256 indexed idCommitment, uint32 userMessageLimit, uint32 index);
    event MembershipErased(uint256 indexed idCommitment, uint32 index);
    event MembershipSlashed(uint256 indexed idCommitment, uint32 index, address receiver);
    event SlashCommitted(bytes32 indexed commitment, address indexed committer);
    event Withdrawn(uint256 indexed idCommitment, address indexed holder, uint256 amount);

    // ------------------------------------------------------------------ errors

    error InvalidConfig();
    error InvalidIdCommitment(uint256 idCommitment);
    error AlreadyRegistered(uint256 idCommitment);
    error LimitOutOfRange(uint32 limit, uint32 min, uint32 max);
    error WrongDeposit(uint256 expected, uint256 sent);
    error SetFull();
    error NotRegistered(uint256 idCommitment);
    error NotHolder();
    error NothingToWithdraw();
    error WithdrawalLocked(uint64 unlockAt);
    error NothingToSlash(uint256 idCommitment);
    error TransferFailed();
    error InvalidRange(uint32 start, uint32 end);
    error IndexOutOfRange(uint32 index);
    error NoSlashCommitment();
    error CommitmentTooRecent();
    error CommitmentReused();
    error InvalidSecret();
    error InvalidReceiver();
    error SelfSlash();

    /// @param depositPerMessage_ wei per unit of message limit (may be 0 on a devnet)
    /// @param minLimit_ smallest message limit per epoch, at least 1
    /// @param maxLimit_ largest message limit per epoch, at most 2^16 - 1
    /// @param poseidonT2_ the one-input Poseidon hasher (circomlib parameters)
    /// @param poseidonT3_ the two-input Poseidon hasher (circomlib parameters)
    /// @param withdrawalDelay_ seconds an erased member's deposit stays slashable, at least 1
    constructor(
        uint256 depositPerMessage_,
        uint32 minLimit_,
        uint32 maxLimit_,
        IPoseidonT2 poseidonT2_,
        IPoseidonT3 poseidonT3_,
        uint64 withdrawalDelay_
    ) {
        if (minLimit_ == 0 || minLimit_ > maxLimit_ || maxLimit_ > LIMIT_CAP) revert InvalidConfig();
        if (withdrawalDelay_ == 0) revert InvalidConfig();
        if (address(poseidonT2_).code.length == 0 || address(poseidonT3_).code.length == 0) {
            revert InvalidConfig();
        }
        depositPerMessage = depositPerMessage_;
        minLimit = minLimit_;
        maxLimit = maxLimit_;
        poseidonT2 = poseidonT2_;
        poseidonT3 = poseidonT3_;
        deploymentBlock = block.number;
        withdrawalDelay = withdrawalDelay_;
    }

    // ------------------------------------------------------------------ membership

    /// @notice Registers `idCommitment` with `userMessageLimit` messages per epoch. The caller
    /// becomes the holder and must send exactly `depositPerMessage * userMessageLimit` wei.
    function register(uint256 idCommitment, uint32 userMessageLimit) external payable {
        if (idCommitment == 0 || idCommitment >= Q) revert InvalidIdCommitment(idCommitment);
        // An erased commitment stays taken: a commitment is registered at most once, ever.
        if (_members[idCommitment].state != MemberState.None) revert AlreadyRegistered(idCommitment);
        if (userMessageLimit < minLimit || userMessageLimit > maxLimit) {
            revert LimitOutOfRange(userMessageLimit, minLimit, maxLimit);
        }
        uint256 expected = depositPerMessage * userMessageLimit;
        if (msg.value != expected) revert WrongDeposit(expected, msg.value);
        uint256 next = _leaves.length;
        if (next >= MAX_MEMBERS) revert SetFull();

        // casting to 'uint32' is safe because next < MAX_MEMBERS = 2^20
        // forge-lint: disable-next-line(unsafe-typecast)
        uint32 index = uint32(next);
        _members[idCommitment] = Member({
            index: index,
            userMessageLimit: userMessageLimit,
            holder: msg.sender,
            state: MemberState.Active,
            unlockAt: 0,
            deposit: msg.value
        });
        _leaves.push(poseidonT3.hash2(idCommitment, userMessageLimit));
        emit MembershipRegistered(idCommitment, userMessageLimit, index);
    }

    /// @notice Erases the caller's membership at once (its leaf becomes 0). The deposit stays
    /// frozen, and slashable, for `withdrawalDelay` seconds. The commitment cannot be
    /// registered again.
    function erase(uint256 idCommitment) external {
        Member storage m = _members[idCommitment];
        if (m.state != MemberState.Active) revert NotRegistered(idCommitment);
        if (m.holder != msg.sender) revert NotHolder();
        _eraseMember(idCommitment, m);
    }

    /// @notice Pays an erased membership's deposit to its holder once `withdrawalDelay` has
    /// passed since the erasure.
    function withdraw(uint256 idCommitment) external {
        Member storage m = _members[idCommitment];
        if (m.state == MemberState.None) revert NotRegistered(idCommitment);
        if (m.holder != msg.sender) revert NotHolder();
        if (m.state != MemberState.Erased || m.deposit == 0) revert NothingToWithdraw();
        if (block.timestamp < m.unlockAt) revert WithdrawalLocked(m.unlockAt);
        uint256 amount = m.deposit;
        m.deposit = 0;
        emit Withdrawn(idCommitment, msg.sender, amount);
        (bool ok,) = msg.sender.call{value: amount}("");
        if (!ok) revert TransferFailed();
    }

    // ------------------------------------------------------------------ slashing

    /// @notice First step of a slash: commit to `keccak256(abi.encodePacked(secret, receiver))`
    /// (uint256 secret, address receiver: 52 bytes) without revealing the secret.
    /// Committing a commitment that is already pending does nothing and does not revert: a
    /// copy sent ahead of the slasher's own commit neither blocks it nor moves its block.
    function commitSlash(bytes32 commitment) external {
        if (_usedSlashCommits[commitment]) revert CommitmentReused();
        // Keep the first commit: a copy cannot push the reveal back.
        if (_slashCommits[commitment].blockNumber != 0) return;
        _slashCommits[commitment] = SlashCommit({committer: msg.sender, blockNumber: uint64(block.number)});
        emit SlashCommitted(commitment, msg.sender);
    }

    /// @notice Second step, at least one block after the commit: reveals the member's secret,
    /// erases the member whose `idCommitment = Poseidon(secret)` if still active and pays its
    /// whole deposit to `receiver`. A member erased by its holder is slashed as long as its
    /// deposit has not been withdrawn. Anyone may reveal; the receiver is bound by the
    /// commitment.
    function revealSlash(uint256 secret, address payable receiver) external {
        bytes32 commitment = keccak256(abi.encodePacked(secret, receiver));
        if (_usedSlashCommits[commitment]) revert CommitmentReused();
        SlashCommit memory c = _slashCommits[commitment];
        if (c.blockNumber == 0) revert NoSlashCommitment();
        if (block.number <= c.blockNumber) revert CommitmentTooRecent();
        if (secret >= Q) revert InvalidSecret();
        if (receiver == address(0)) revert InvalidReceiver();

        uint256 idCommitment = poseidonT2.hash1(secret);
        Member storage m = _members[idCommitment];
        if (m.state == MemberState.None) revert NotRegistered(idCommitment);
        if (m.state == MemberState.Erased && m.deposit == 0) revert NothingToSlash(idCommitment);
        if (receiver == m.holder || msg.sender == m.holder) revert SelfSlash();

        delete _slashCommits[commitment];
        _usedSlashCommits[commitment] = true;
        if (m.state == MemberState.Active) _eraseMember(idCommitment, m);
        uint256 amount = m.deposit;
        m.deposit = 0;
        emit MembershipSlashed(idCommitment, m.index, receiver);
        if (amount != 0) {
            (bool ok,) = receiver.call{value: amount}("");
            if (!ok) revert TransferFailed();
        }
    }

    // ------------------------------------------------------------------ views

    /// @notice The next index, i.e. how many leaves have ever been assigned (erased included).
    function memberCount() external view returns (uint32) {
        return uint32(_leaves.length);
    }

    /// @notice The leaf (rate commitment, or 0 if erased) at `index`.
    function leaf(uint32 index) external view returns (uint256) {
        if (index >= _leaves.length) revert IndexOutOfRange(index);
        return _leaves[index];
    }

    /// @notice Leaves `start .. end` (end exclusive), at most `MAX_LEAVES_PER_CALL` of them.
    function leaves(uint32 start, uint32 end) external view returns (uint256[] memory out) {
        if (start > end || end > _leaves.length || end - start > MAX_LEAVES_PER_CALL) {
            revert InvalidRange(start, end);
        }
        out = new uint256[](end - start);
        for (uint256 i = start; i < end; ++i) {
            out[i - start] = _leaves[i];
        }
    }

    /// @notice A member's record. `deposit` is 0 once withdrawn or slashed; `unlockAt` is
    /// when an erased member's deposit may be withdrawn (0 while active).
    function members(uint256 idCommitment)
        external
        view
        returns (
            uint32 index,
            uint32 userMessageLimit,
            address holder,
            uint256 deposit,
            MemberState state,
            uint64 unlockAt
        )
    {
        Member storage m = _members[idCommitment];
        return (m.index, m.userMessageLimit, m.holder, m.deposit, m.state, m.unlockAt);
    }

    /// @notice Whether `revealSlash` can still take this member's deposit: it is active, or
    /// erased with its deposit not yet withdrawn.
    function slashable(uint256 idCommitment) external view returns (bool) {
        Member storage m = _members[idCommitment];
        return m.state == MemberState.Active || (m.state == MemberState.Erased && m.deposit != 0);
    }

    /// @notice `Poseidon(idCommitment, userMessageLimit)`: the leaf a registration stores.
    function rateCommitment(uint256 idCommitment, uint32 userMessageLimit) external view returns (uint256) {
        return poseidonT3.hash2(idCommitment, userMessageLimit);
    }


    /// @notice A pending slash commitment (zero values if none).
    function slashCommitment(bytes32 commitment) external view returns (address committer, uint64 blockNumber) {
        SlashCommit memory c = _slashCommits[commitment];
        return (c.committer, c.blockNumber);
    }

    // ------------------------------------------------------------------ internal

    /// Zeroes the leaf, marks the member erased with its deposit frozen, emits the event.
    function _eraseMember(uint256 idCommitment, Member storage m) private {
        uint32 index = m.index;
        m.state = MemberState.Erased;
        m.unlockAt = uint64(block.timestamp) + withdrawalDelay;
        _leaves[index] = 0;
        erasedCount += 1;
        emit MembershipErased(idCommitment, index);
    }
}
