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

    // ------------------------------------------------------------------ state

    mapping(uint256 idCommitment => Member) private _members;
    /// Leaf values by index; its length is the next index.
    uint256[] private _leaves;
    mapping(address account => uint256) private _withdrawable;
    mapping(bytes32 commitment => SlashCommit) private _slashCommits;
    mapping(bytes32 commitment => bool) private _usedSlashCommits;

    // ------------------------------------------------------------------ events

    event MembershipRegistered(uint256 indexed idCommitment, uint32 userMessageLimit, uint32 index);
    event MembershipErased(uint256 indexed idCommitment, uint32 index);
    event MembershipSlashed(uint256 indexed idCommitment, uint32 index, address receiver);
    event SlashCommitted(bytes32 indexed commitment, address indexed committer);
    event Withdrawn(address indexed account, uint256 amount);

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
    error TransferFailed();
    error InvalidRange(uint32 start, uint32 end);
    error IndexOutOfRange(uint32 index);
    error NoSlashCommitment();
    error SlashCommitmentExists();
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
    constructor(
        uint256 depositPerMessage_,
        uint32 minLimit_,
        uint32 maxLimit_,
        IPoseidonT2 poseidonT2_,
        IPoseidonT3 poseidonT3_
    ) {
        if (minLimit_ == 0 || minLimit_ > maxLimit_ || maxLimit_ > LIMIT_CAP) revert InvalidConfig();
        if (address(poseidonT2_).code.length == 0 || address(poseidonT3_).code.length == 0) {
            revert InvalidConfig();
        }
        depositPerMessage = depositPerMessage_;
        minLimit = minLimit_;
        maxLimit = maxLimit_;
        poseidonT2 = poseidonT2_;
        poseidonT3 = poseidonT3_;
        deploymentBlock = block.number;
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
            deposit: msg.value
        });
        _leaves.push(poseidonT3.hash2(idCommitment, userMessageLimit));
        emit MembershipRegistered(idCommitment, userMessageLimit, index);
    }

    /// @notice Erases the caller's membership at once (its leaf becomes 0) and credits the
    /// deposit to the caller's withdrawable balance. The commitment cannot be registered again.
    function erase(uint256 idCommitment) external {
        Member storage m = _members[idCommitment];
        if (m.state != MemberState.Active) revert NotRegistered(idCommitment);
        if (m.holder != msg.sender) revert NotHolder();
        uint256 amount = _eraseMember(idCommitment, m);
        _withdrawable[msg.sender] += amount;
    }

    /// @notice Pays out the caller's withdrawable balance.
    function withdraw() external {
        uint256 amount = _withdrawable[msg.sender];
        if (amount == 0) revert NothingToWithdraw();
        _withdrawable[msg.sender] = 0;
        emit Withdrawn(msg.sender, amount);
        (bool ok,) = msg.sender.call{value: amount}("");
        if (!ok) revert TransferFailed();
    }

    // ------------------------------------------------------------------ slashing

    /// @notice First step of a slash: commit to `keccak256(abi.encodePacked(secret, receiver))`
    /// (uint256 secret, address receiver: 52 bytes) without revealing the secret.
    function commitSlash(bytes32 commitment) external {
        if (_usedSlashCommits[commitment]) revert CommitmentReused();
        // Keep the first commit: a copy cannot push the reveal back.
        if (_slashCommits[commitment].blockNumber != 0) revert SlashCommitmentExists();
        _slashCommits[commitment] = SlashCommit({committer: msg.sender, blockNumber: uint64(block.number)});
        emit SlashCommitted(commitment, msg.sender);
    }

    /// @notice Second step, at least one block after the commit: reveals the member's secret,
    /// erases the member whose `idCommitment = Poseidon(secret)` and pays its whole deposit to
    /// `receiver`. Anyone may reveal; the receiver is bound by the commitment.
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
        if (m.state != MemberState.Active) revert NotRegistered(idCommitment);
        if (receiver == m.holder || msg.sender == m.holder) revert SelfSlash();

        delete _slashCommits[commitment];
        _usedSlashCommits[commitment] = true;
        uint32 index = m.index;
        uint256 amount = _eraseMember(idCommitment, m);
        emit MembershipSlashed(idCommitment, index, receiver);
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

    /// @notice A member's record. `deposit` is 0 once erased (it was credited or paid out).
    function members(uint256 idCommitment)
        external
        view
        returns (uint32 index, uint32 userMessageLimit, address holder, uint256 deposit, MemberState state)
    {
        Member storage m = _members[idCommitment];
        return (m.index, m.userMessageLimit, m.holder, m.deposit, m.state);
    }

    /// @notice `Poseidon(idCommitment, userMessageLimit)`: the leaf a registration stores.
    function rateCommitment(uint256 idCommitment, uint32 userMessageLimit) external view returns (uint256) {
        return poseidonT3.hash2(idCommitment, userMessageLimit);
    }

    /// @notice Wei that `account` can withdraw.
    function withdrawable(address account) external view returns (uint256) {
        return _withdrawable[account];
    }

    /// @notice A pending slash commitment (zero values if none).
    function slashCommitment(bytes32 commitment) external view returns (address committer, uint64 blockNumber) {
        SlashCommit memory c = _slashCommits[commitment];
        return (c.committer, c.blockNumber);
    }

    // ------------------------------------------------------------------ internal

    /// Zeroes the leaf, marks the member erased, emits the event; returns the freed deposit.
    function _eraseMember(uint256 idCommitment, Member storage m) private returns (uint256 amount) {
        uint32 index = m.index;
        amount = m.deposit;
        m.deposit = 0;
        m.state = MemberState.Erased;
        _leaves[index] = 0;
        emit MembershipErased(idCommitment, index);
    }
}
