// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {Test} from "./utils/Test.sol";
import {RlnMembership} from "../src/RlnMembership.sol";
import {IPoseidonT2, IPoseidonT3} from "../src/Poseidon.sol";
import {POSEIDONT2_INITCODE, POSEIDONT3_INITCODE} from "../generated/PoseidonBytecode.sol";

/// Refuses ether: a receiver or holder whose payment must fail.
contract RejectsEther {
    receive() external payable {
        revert("no ether");
    }

    function erase(RlnMembership rln, uint256 id) external {
        rln.erase(id);
    }

    function withdraw(RlnMembership rln, uint256 id) external {
        rln.withdraw(id);
    }

    function register(RlnMembership rln, uint256 id, uint32 limit) external payable {
        rln.register{value: msg.value}(id, limit);
    }
}

contract RlnMembershipTest is Test {
    uint256 internal constant Q =
        21888242871839275222246405745257275088548364400416034343698204186575808495617;
    uint256 internal constant DEPOSIT = 0.001 ether;
    uint32 internal constant MIN_LIMIT = 1;
    uint32 internal constant MAX_LIMIT = 100;
    uint256 internal constant DEPLOY_BLOCK = 100;
    uint64 internal constant DELAY = 1 days;

    // Known answers (circomlib / circomlibjs).
    uint256 internal constant SECRET =
        10786130129149235992633599169416696070230384762929674028297084630573677063381;
    uint256 internal constant ID =
        452295212450156102393548174919930854088457015362004507556574530843169518534;
    uint256 internal constant RATE_ID_LIMIT1 =
        2786993744100313759346283334945291165418569888139713486919432346417329446206;

    // Storage slot of the leaves array (slot 0: members, 1: leaves, ...).
    bytes32 internal constant LEAVES_SLOT = bytes32(uint256(1));

    address internal alice = address(0xA11CE);
    address internal bob = address(0xB0B);
    address internal carol = address(0xCA201);

    IPoseidonT2 internal t2;
    IPoseidonT3 internal t3;
    RlnMembership internal rln;

    function setUp() public {
        vm.roll(DEPLOY_BLOCK);
        t2 = IPoseidonT2(deployCode(POSEIDONT2_INITCODE));
        t3 = IPoseidonT3(deployCode(POSEIDONT3_INITCODE));
        rln = new RlnMembership(DEPOSIT, MIN_LIMIT, MAX_LIMIT, t2, t3, DELAY);
        vm.deal(alice, 100 ether);
        vm.deal(bob, 100 ether);
        vm.deal(carol, 100 ether);
    }

    // ---------------------------------------------------------------- helpers

    function _register(address who, uint256 id, uint32 limit) internal {
        vm.prank(who);
        rln.register{value: DEPOSIT * limit}(id, limit);
    }

    function _state(uint256 id) internal view returns (RlnMembership.MemberState state) {
        (,,,, state,) = rln.members(id);
    }

    function _deposit(uint256 id) internal view returns (uint256 deposit) {
        (,,, deposit,,) = rln.members(id);
    }

    function _commitment(uint256 secret, address receiver) internal pure returns (bytes32) {
        return keccak256(abi.encodePacked(secret, receiver));
    }

    /// alice registers ID (the id commitment of SECRET) with limit 3; bob commits to slash it
    /// towards `receiver` and a block passes.
    function _slashSetup(address receiver) internal {
        _register(alice, ID, 3);
        vm.prank(bob);
        rln.commitSlash(_commitment(SECRET, receiver));
        vm.roll(block.number + 1);
    }

    // ---------------------------------------------------------------- Poseidon

    function test_PoseidonKnownAnswers() public view {
        assertEq(
            t3.poseidon([uint256(1), 2]),
            7853200120776062878684798364095072458815029376092732009249414926327459813530,
            "Poseidon([1,2])"
        );
        assertEq(
            t2.poseidon([uint256(1)]),
            18586133768512220936620570745912940619677854269274689475585506675881198879027,
            "Poseidon([1])"
        );
        assertEq(t2.poseidon([SECRET]), ID, "id commitment of SECRET");
        assertEq(t3.poseidon([ID, 1]), RATE_ID_LIMIT1, "rate commitment (hasher)");
        assertEq(rln.rateCommitment(ID, 1), RATE_ID_LIMIT1, "rate commitment (contract view)");
    }

    // ---------------------------------------------------------------- constructor

    function test_ConstructorConfig() public view {
        assertEq(rln.depositPerMessage(), DEPOSIT, "depositPerMessage");
        assertEq(rln.minLimit(), MIN_LIMIT, "minLimit");
        assertEq(rln.maxLimit(), MAX_LIMIT, "maxLimit");
        assertEq(address(rln.poseidonT2()), address(t2), "poseidonT2");
        assertEq(address(rln.poseidonT3()), address(t3), "poseidonT3");
        assertEq(rln.deploymentBlock(), DEPLOY_BLOCK, "deploymentBlock");
        assertEq(rln.withdrawalDelay(), DELAY, "withdrawalDelay");
        assertEq(rln.memberCount(), 0, "memberCount");
        assertEq(rln.MAX_MEMBERS(), 1 << 20, "MAX_MEMBERS");
        assertEq(rln.Q(), Q, "Q");
    }

    function test_ConstructorRejectsBadConfig() public {
        vm.expectRevert(RlnMembership.InvalidConfig.selector);
        new RlnMembership(DEPOSIT, 0, 10, t2, t3, DELAY);
        vm.expectRevert(RlnMembership.InvalidConfig.selector);
        new RlnMembership(DEPOSIT, 11, 10, t2, t3, DELAY);
        vm.expectRevert(RlnMembership.InvalidConfig.selector);
        new RlnMembership(DEPOSIT, 1, 65536, t2, t3, DELAY);
        vm.expectRevert(RlnMembership.InvalidConfig.selector);
        new RlnMembership(DEPOSIT, 1, 10, IPoseidonT2(address(0x1234)), t3, DELAY);
        vm.expectRevert(RlnMembership.InvalidConfig.selector);
        new RlnMembership(DEPOSIT, 1, 10, t2, IPoseidonT3(address(0x1234)), DELAY);
        vm.expectRevert(RlnMembership.InvalidConfig.selector);
        new RlnMembership(DEPOSIT, 1, 10, t2, t3, 0);
    }

    // ---------------------------------------------------------------- register

    function test_Register() public {
        vm.expectEmit(true, false, false, true, address(rln));
        emit RlnMembership.MembershipRegistered(ID, 1, 0);
        _register(alice, ID, 1);

        assertEq(rln.memberCount(), 1, "memberCount");
        assertEq(rln.leaf(0), RATE_ID_LIMIT1, "leaf 0");
        (uint32 index, uint32 limit, address holder, uint256 deposit, RlnMembership.MemberState state,) =
            rln.members(ID);
        assertEq(index, 0, "index");
        assertEq(limit, 1, "limit");
        assertEq(holder, alice, "holder");
        assertEq(deposit, DEPOSIT, "deposit");
        assertTrue(state == RlnMembership.MemberState.Active, "state Active");
        assertEq(address(rln).balance, DEPOSIT, "contract balance");
        assertEq(uint256(vm.load(address(rln), LEAVES_SLOT)), 1, "leaves slot holds the length");
    }

    function test_RegisterIndicesIncrement() public {
        for (uint256 i = 0; i < 5; ++i) {
            uint256 id = 1000 + i;
            uint32 limit = uint32(1 + i * 7);
            vm.expectEmit(true, false, false, true, address(rln));
            emit RlnMembership.MembershipRegistered(id, limit, uint32(i));
            _register(i % 2 == 0 ? alice : bob, id, limit);
            assertEq(rln.memberCount(), i + 1, "memberCount");
            assertEq(rln.leaf(uint32(i)), t3.poseidon([id, uint256(limit)]), "leaf");
            (uint32 index,,,,,) = rln.members(id);
            assertEq(index, i, "index");
        }
    }

    function test_RegisterRejectsZeroCommitment() public {
        vm.expectRevert(abi.encodeWithSelector(RlnMembership.InvalidIdCommitment.selector, 0));
        _register(alice, 0, 1);
    }

    function test_RegisterRejectsCommitmentOutOfField() public {
        vm.expectRevert(abi.encodeWithSelector(RlnMembership.InvalidIdCommitment.selector, Q));
        _register(alice, Q, 1);
        vm.expectRevert(abi.encodeWithSelector(RlnMembership.InvalidIdCommitment.selector, Q + 1));
        _register(alice, Q + 1, 1);
        vm.expectRevert(abi.encodeWithSelector(RlnMembership.InvalidIdCommitment.selector, type(uint256).max));
        _register(alice, type(uint256).max, 1);
        _register(alice, Q - 1, 1); // the largest field element is fine
        assertEq(rln.memberCount(), 1, "memberCount");
    }

    function test_RegisterRejectsDuplicate() public {
        _register(alice, ID, 1);
        vm.expectRevert(abi.encodeWithSelector(RlnMembership.AlreadyRegistered.selector, ID));
        _register(bob, ID, 2);
        vm.expectRevert(abi.encodeWithSelector(RlnMembership.AlreadyRegistered.selector, ID));
        _register(alice, ID, 1);
        assertEq(rln.memberCount(), 1, "memberCount");
    }

    function test_RegisterRejectsLimitOutOfRange() public {
        vm.expectRevert(abi.encodeWithSelector(RlnMembership.LimitOutOfRange.selector, 0, MIN_LIMIT, MAX_LIMIT));
        _register(alice, ID, 0);
        vm.expectRevert(
            abi.encodeWithSelector(RlnMembership.LimitOutOfRange.selector, MAX_LIMIT + 1, MIN_LIMIT, MAX_LIMIT)
        );
        _register(alice, ID, MAX_LIMIT + 1);
        _register(alice, ID, MAX_LIMIT);
        _register(alice, ID + 1, MIN_LIMIT);
    }

    function test_RegisterRejectsWrongDeposit() public {
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(RlnMembership.WrongDeposit.selector, 3 * DEPOSIT, 3 * DEPOSIT - 1));
        rln.register{value: 3 * DEPOSIT - 1}(ID, 3);

        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(RlnMembership.WrongDeposit.selector, 3 * DEPOSIT, 3 * DEPOSIT + 1));
        rln.register{value: 3 * DEPOSIT + 1}(ID, 3);

        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(RlnMembership.WrongDeposit.selector, 3 * DEPOSIT, 0));
        rln.register(ID, 3);

        assertEq(rln.memberCount(), 0, "memberCount");
        assertEq(address(rln).balance, 0, "contract balance");
    }

    function test_RegisterRejectsWhenFull() public {
        _register(alice, ID, 1);
        // Pretend 2^20 leaves were assigned: set the leaves array length.
        vm.store(address(rln), LEAVES_SLOT, bytes32(uint256(1 << 20)));
        assertEq(rln.memberCount(), 1 << 20, "memberCount");
        vm.expectRevert(RlnMembership.SetFull.selector);
        _register(alice, ID + 1, 1);
        // One below capacity still fits, at the last index.
        vm.store(address(rln), LEAVES_SLOT, bytes32(uint256((1 << 20) - 1)));
        vm.expectEmit(true, false, false, true, address(rln));
        emit RlnMembership.MembershipRegistered(ID + 1, 1, (1 << 20) - 1);
        _register(alice, ID + 1, 1);
    }

    // ---------------------------------------------------------------- erase

    function test_Erase() public {
        _register(alice, ID, 2);
        _register(bob, 77, 1);
        uint256 other = rln.leaf(1);

        vm.expectEmit(true, false, false, true, address(rln));
        emit RlnMembership.MembershipErased(ID, 0);
        vm.prank(alice);
        rln.erase(ID);

        assertEq(rln.leaf(0), 0, "erased leaf");
        assertEq(rln.leaf(1), other, "other leaf untouched");
        assertEq(rln.memberCount(), 2, "memberCount unchanged");
        assertEq(rln.erasedCount(), 1, "erasedCount");
        (uint32 index,, address holder, uint256 deposit, RlnMembership.MemberState state, uint64 unlockAt) =
            rln.members(ID);
        assertEq(index, 0, "index kept");
        assertEq(holder, alice, "holder kept");
        assertEq(deposit, 2 * DEPOSIT, "deposit frozen in the record");
        assertTrue(state == RlnMembership.MemberState.Erased, "state Erased");
        assertEq(unlockAt, block.timestamp + DELAY, "unlocked after the delay");
        assertTrue(rln.slashable(ID), "still slashable");
        assertEq(address(rln).balance, 3 * DEPOSIT, "nothing paid out");
    }

    function test_EraseByNonHolderReverts() public {
        _register(alice, ID, 1);
        vm.prank(bob);
        vm.expectRevert(RlnMembership.NotHolder.selector);
        rln.erase(ID);
        assertEq(rln.leaf(0), RATE_ID_LIMIT1, "leaf kept");
    }

    function test_EraseUnknownOrTwiceReverts() public {
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(RlnMembership.NotRegistered.selector, ID));
        rln.erase(ID);
        _register(alice, ID, 1);
        vm.prank(alice);
        rln.erase(ID);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(RlnMembership.NotRegistered.selector, ID));
        rln.erase(ID);
    }

    function test_EraseBlocksReRegistration() public {
        _register(alice, ID, 1);
        vm.prank(alice);
        rln.erase(ID);
        vm.expectRevert(abi.encodeWithSelector(RlnMembership.AlreadyRegistered.selector, ID));
        _register(alice, ID, 1);
        vm.expectRevert(abi.encodeWithSelector(RlnMembership.AlreadyRegistered.selector, ID));
        _register(bob, ID, 1);
        // A new commitment takes the next index: erased indices are not reused.
        _register(alice, ID + 1, 1);
        (uint32 index,,,,,) = rln.members(ID + 1);
        assertEq(index, 1, "next index");
    }

    // ---------------------------------------------------------------- withdraw

    function test_Withdraw() public {
        _register(alice, ID, 5);
        vm.prank(alice);
        rln.erase(ID);
        uint64 unlockAt = uint64(block.timestamp) + DELAY;

        vm.warp(unlockAt - 1);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(RlnMembership.WithdrawalLocked.selector, unlockAt));
        rln.withdraw(ID);

        vm.warp(unlockAt);
        uint256 before = alice.balance;
        vm.expectEmit(true, true, false, true, address(rln));
        emit RlnMembership.Withdrawn(ID, alice, 5 * DEPOSIT);
        vm.prank(alice);
        rln.withdraw(ID);
        assertEq(alice.balance, before + 5 * DEPOSIT, "paid out");
        assertEq(_deposit(ID), 0, "deposit cleared");
        assertTrue(!rln.slashable(ID), "nothing left to slash");
        assertEq(address(rln).balance, 0, "contract emptied");

        vm.prank(alice);
        vm.expectRevert(RlnMembership.NothingToWithdraw.selector);
        rln.withdraw(ID);
    }

    function test_WithdrawNothingReverts() public {
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(RlnMembership.NotRegistered.selector, ID));
        rln.withdraw(ID);
        _register(alice, ID, 1); // an active deposit is not withdrawable
        vm.prank(alice);
        vm.expectRevert(RlnMembership.NothingToWithdraw.selector);
        rln.withdraw(ID);
    }

    function test_WithdrawByNonHolderReverts() public {
        _register(alice, ID, 1);
        vm.prank(alice);
        rln.erase(ID);
        vm.warp(block.timestamp + DELAY);
        vm.prank(bob);
        vm.expectRevert(RlnMembership.NotHolder.selector);
        rln.withdraw(ID);
        assertEq(_deposit(ID), DEPOSIT, "deposit kept");
    }

    function test_WithdrawFailedTransferKeepsBalance() public {
        RejectsEther holder = new RejectsEther();
        holder.register{value: DEPOSIT}(rln, ID, 1);
        holder.erase(rln, ID);
        vm.warp(block.timestamp + DELAY);
        vm.expectRevert(RlnMembership.TransferFailed.selector);
        holder.withdraw(rln, ID);
        assertEq(_deposit(ID), DEPOSIT, "still withdrawable");
    }

    // ---------------------------------------------------------------- slashing

    function test_SlashHappyPath() public {
        _slashSetup(carol);
        bytes32 c = _commitment(SECRET, carol);
        (address committer, uint64 at) = rln.slashCommitment(c);
        assertEq(committer, bob, "committer");
        assertEq(at, block.number - 1, "commit block");

        uint256 carolBefore = carol.balance;
        vm.expectEmit(true, false, false, true, address(rln));
        emit RlnMembership.MembershipErased(ID, 0);
        vm.expectEmit(true, false, false, true, address(rln));
        emit RlnMembership.MembershipSlashed(ID, 0, carol);
        vm.prank(bob);
        rln.revealSlash(SECRET, payable(carol));

        assertEq(carol.balance, carolBefore + 3 * DEPOSIT, "receiver paid the whole deposit");
        assertEq(address(rln).balance, 0, "contract balance");
        assertEq(rln.leaf(0), 0, "leaf zeroed");
        assertTrue(_state(ID) == RlnMembership.MemberState.Erased, "state Erased");
        assertEq(_deposit(ID), 0, "holder gets nothing");
        vm.warp(block.timestamp + DELAY);
        vm.prank(alice);
        vm.expectRevert(RlnMembership.NothingToWithdraw.selector);
        rln.withdraw(ID);
        (committer, at) = rln.slashCommitment(c);
        assertEq(committer, address(0), "commitment deleted");
        assertEq(at, 0, "commitment deleted (block)");
        // The slashed commitment stays taken.
        vm.expectRevert(abi.encodeWithSelector(RlnMembership.AlreadyRegistered.selector, ID));
        _register(alice, ID, 1);
    }

    function test_SlashAnyoneMayReveal() public {
        _slashSetup(carol);
        uint256 carolBefore = carol.balance;
        vm.prank(address(0xD00D));
        rln.revealSlash(SECRET, payable(carol));
        assertEq(carol.balance, carolBefore + 3 * DEPOSIT, "receiver bound by the commitment");
    }

    function test_RevealInSameBlockReverts() public {
        _register(alice, ID, 1);
        vm.prank(bob);
        rln.commitSlash(_commitment(SECRET, carol));
        vm.prank(bob);
        vm.expectRevert(RlnMembership.CommitmentTooRecent.selector);
        rln.revealSlash(SECRET, payable(carol));
        vm.roll(block.number + 1);
        vm.prank(bob);
        rln.revealSlash(SECRET, payable(carol));
    }

    function test_RevealWithoutCommitmentReverts() public {
        _register(alice, ID, 1);
        vm.roll(block.number + 5);
        vm.prank(bob);
        vm.expectRevert(RlnMembership.NoSlashCommitment.selector);
        rln.revealSlash(SECRET, payable(carol));
    }

    function test_RevealToOtherReceiverReverts() public {
        _slashSetup(carol);
        vm.prank(bob);
        vm.expectRevert(RlnMembership.NoSlashCommitment.selector);
        rln.revealSlash(SECRET, payable(bob));
    }

    function test_RevealWithWrongSecretReverts() public {
        _register(alice, ID, 1);
        uint256 wrong = SECRET + 1;
        uint256 wrongId = t2.poseidon([wrong]);
        vm.prank(bob);
        rln.commitSlash(_commitment(wrong, carol));
        vm.roll(block.number + 1);
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(RlnMembership.NotRegistered.selector, wrongId));
        rln.revealSlash(wrong, payable(carol));
        assertEq(rln.leaf(0), RATE_ID_LIMIT1, "member untouched");
    }

    function test_RevealSecretOutOfFieldReverts() public {
        _register(alice, ID, 1);
        vm.prank(bob);
        rln.commitSlash(_commitment(SECRET + Q, carol));
        vm.roll(block.number + 1);
        vm.prank(bob);
        vm.expectRevert(RlnMembership.InvalidSecret.selector);
        rln.revealSlash(SECRET + Q, payable(carol));
    }

    function test_RevealToZeroAddressReverts() public {
        _slashSetup(address(0));
        vm.prank(bob);
        vm.expectRevert(RlnMembership.InvalidReceiver.selector);
        rln.revealSlash(SECRET, payable(address(0)));
    }

    function test_SelfSlashReverts() public {
        // The holder as receiver.
        _slashSetup(alice);
        vm.prank(bob);
        vm.expectRevert(RlnMembership.SelfSlash.selector);
        rln.revealSlash(SECRET, payable(alice));
        // The holder as revealer, paying someone else.
        vm.prank(alice);
        rln.commitSlash(_commitment(SECRET, carol));
        vm.roll(block.number + 1);
        vm.prank(alice);
        vm.expectRevert(RlnMembership.SelfSlash.selector);
        rln.revealSlash(SECRET, payable(carol));
        assertTrue(_state(ID) == RlnMembership.MemberState.Active, "still active");
    }

    function test_CommitmentReuseReverts() public {
        _slashSetup(carol);
        bytes32 c = _commitment(SECRET, carol);
        vm.prank(bob);
        rln.revealSlash(SECRET, payable(carol));

        vm.prank(bob);
        vm.expectRevert(RlnMembership.CommitmentReused.selector);
        rln.revealSlash(SECRET, payable(carol));
        vm.prank(carol);
        vm.expectRevert(RlnMembership.CommitmentReused.selector);
        rln.commitSlash(c);
    }

    function test_DuplicatePendingCommitKeepsTheFirst() public {
        bytes32 c = _commitment(SECRET, carol);
        vm.prank(bob);
        rln.commitSlash(c);
        vm.roll(block.number + 10);
        vm.prank(carol);
        rln.commitSlash(c); // no revert, no effect
        (address committer, uint64 at) = rln.slashCommitment(c);
        assertEq(committer, bob, "first committer kept");
        assertEq(at, block.number - 10, "first block kept");
    }

    /// The race the withdrawal delay closes: the spammer sees the slash coming (its double
    /// signal is public), erases at once and tries to withdraw before the reveal lands.
    function test_SpammerCannotEraseAndWithdrawBeforeTheSlash() public {
        _register(alice, ID, 3);
        // The slasher commits; in the same block the spammer erases.
        vm.prank(bob);
        rln.commitSlash(_commitment(SECRET, carol));
        vm.prank(alice);
        rln.erase(ID);
        uint64 unlockAt = uint64(block.timestamp) + DELAY;
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(RlnMembership.WithdrawalLocked.selector, unlockAt));
        rln.withdraw(ID);

        // The slash lands blocks (and an hour of RPC trouble) later, still inside the delay.
        vm.roll(block.number + 300);
        vm.warp(block.timestamp + 1 hours);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(RlnMembership.WithdrawalLocked.selector, unlockAt));
        rln.withdraw(ID);
        uint256 carolBefore = carol.balance;
        vm.expectEmit(true, false, false, true, address(rln));
        emit RlnMembership.MembershipSlashed(ID, 0, carol);
        vm.prank(bob);
        rln.revealSlash(SECRET, payable(carol));
        assertEq(carol.balance, carolBefore + 3 * DEPOSIT, "the frozen deposit goes to the slasher");
        assertTrue(!rln.slashable(ID), "settled");
        assertEq(rln.erasedCount(), 1, "an erased member slashed is not erased twice");

        // After the delay there is nothing left for the spammer.
        vm.warp(unlockAt);
        vm.prank(alice);
        vm.expectRevert(RlnMembership.NothingToWithdraw.selector);
        rln.withdraw(ID);
        assertEq(address(rln).balance, 0, "contract emptied");
    }

    /// An erased member stays slashable after the delay too, until the holder withdraws.
    function test_SlashAfterEraseTakesTheFrozenDeposit() public {
        _slashSetup(carol);
        vm.prank(alice);
        rln.erase(ID);
        vm.warp(block.timestamp + DELAY + 1);
        uint256 carolBefore = carol.balance;
        vm.prank(bob);
        rln.revealSlash(SECRET, payable(carol));
        assertEq(carol.balance, carolBefore + 3 * DEPOSIT, "receiver paid");
        assertEq(rln.leaf(0), 0, "leaf stays zero");
    }

    function test_SlashAfterWithdrawalReverts() public {
        _slashSetup(carol);
        vm.prank(alice);
        rln.erase(ID);
        vm.warp(block.timestamp + DELAY);
        vm.prank(alice);
        rln.withdraw(ID);
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(RlnMembership.NothingToSlash.selector, ID));
        rln.revealSlash(SECRET, payable(carol));
    }

    function test_SlashTwiceReverts() public {
        _slashSetup(carol);
        vm.prank(bob);
        rln.revealSlash(SECRET, payable(carol));
        vm.prank(carol);
        rln.commitSlash(_commitment(SECRET, bob));
        vm.roll(block.number + 1);
        vm.prank(carol);
        vm.expectRevert(abi.encodeWithSelector(RlnMembership.NothingToSlash.selector, ID));
        rln.revealSlash(SECRET, payable(bob));
    }

    /// Griefing: a watcher copies the honest slasher's commitment from the mempool and gets it
    /// mined first. The honest commit still succeeds, and so does the reveal, to the honest
    /// receiver; the copier gains nothing.
    function test_FrontRunCommitDoesNotBlockTheSlasher() public {
        _register(alice, ID, 3);
        bytes32 c = _commitment(SECRET, carol);
        address watcher = address(0xBAD);
        vm.prank(watcher);
        rln.commitSlash(c);
        vm.prank(bob);
        rln.commitSlash(c);
        vm.roll(block.number + 1);
        uint256 carolBefore = carol.balance;
        vm.prank(bob);
        rln.revealSlash(SECRET, payable(carol));
        assertEq(carol.balance, carolBefore + 3 * DEPOSIT, "honest receiver paid");
        assertEq(watcher.balance, 0, "copier paid nothing");
    }

    /// Griefing by commitments sent ahead for every receiver: they cannot be revealed without
    /// the secret and do not stop a later honest commit from working.
    function testFuzz_ForeignCommitmentsDoNotBlock(bytes32 junk, address receiver) public {
        vm.assume(junk != _commitment(SECRET, carol));
        _register(alice, ID, 1);
        vm.prank(address(0xBAD));
        rln.commitSlash(junk);
        vm.prank(address(0xBAD));
        rln.commitSlash(_commitment(SECRET + 1, receiver));
        vm.prank(bob);
        rln.commitSlash(_commitment(SECRET, carol));
        vm.roll(block.number + 1);
        vm.prank(bob);
        rln.revealSlash(SECRET, payable(carol));
        assertTrue(!rln.slashable(ID), "slashed");
    }

    function test_SlashToRejectingReceiverReverts() public {
        RejectsEther receiver = new RejectsEther();
        _slashSetup(address(receiver));
        vm.prank(bob);
        vm.expectRevert(RlnMembership.TransferFailed.selector);
        rln.revealSlash(SECRET, payable(address(receiver)));
        assertTrue(_state(ID) == RlnMembership.MemberState.Active, "rolled back");
    }

    // ---------------------------------------------------------------- views

    function test_LeavesRange() public {
        uint256[] memory expected = new uint256[](5);
        for (uint256 i = 0; i < 5; ++i) {
            _register(alice, 500 + i, uint32(i + 1));
            expected[i] = t3.poseidon([500 + i, i + 1]);
        }
        vm.prank(alice);
        rln.erase(502);
        expected[2] = 0;

        uint256[] memory all = rln.leaves(0, 5);
        assertEq(all.length, 5, "length");
        for (uint256 i = 0; i < 5; ++i) {
            assertEq(all[i], expected[i], "leaf");
        }
        uint256[] memory mid = rln.leaves(1, 3);
        assertEq(mid.length, 2, "mid length");
        assertEq(mid[0], expected[1], "mid[0]");
        assertEq(mid[1], 0, "mid[1] erased");
        assertEq(rln.leaves(5, 5).length, 0, "empty at end");
        assertEq(rln.leaves(0, 0).length, 0, "empty at start");

        vm.expectRevert(abi.encodeWithSelector(RlnMembership.InvalidRange.selector, 3, 2));
        rln.leaves(3, 2);
        vm.expectRevert(abi.encodeWithSelector(RlnMembership.InvalidRange.selector, 0, 6));
        rln.leaves(0, 6);
        vm.expectRevert(abi.encodeWithSelector(RlnMembership.IndexOutOfRange.selector, 5));
        rln.leaf(5);
    }

    function test_LeavesRangeIsBounded() public {
        vm.store(address(rln), LEAVES_SLOT, bytes32(uint256(10_000)));
        uint32 max = rln.MAX_LEAVES_PER_CALL();
        assertEq(rln.leaves(100, 100 + max).length, max, "a full page");
        vm.expectRevert(abi.encodeWithSelector(RlnMembership.InvalidRange.selector, 0, max + 1));
        rln.leaves(0, max + 1);
    }

    // ---------------------------------------------------------------- fuzz

    function testFuzz_RegisterLeafIsRateCommitment(uint256[4] memory ids, uint32[4] memory limits) public {
        for (uint256 i = 0; i < 4; ++i) {
            ids[i] = bound(ids[i], 1, Q - 1);
            for (uint256 j = 0; j < i; ++j) {
                vm.assume(ids[i] != ids[j]);
            }
            limits[i] = uint32(bound(limits[i], MIN_LIMIT, MAX_LIMIT));
        }
        for (uint256 i = 0; i < 4; ++i) {
            vm.expectEmit(true, false, false, true, address(rln));
            emit RlnMembership.MembershipRegistered(ids[i], limits[i], uint32(i));
            _register(bob, ids[i], limits[i]);
            assertEq(rln.memberCount(), i + 1, "sequential count");
            (uint32 index, uint32 limit,,,,) = rln.members(ids[i]);
            assertEq(index, i, "sequential index");
            assertEq(limit, limits[i], "limit");
            assertEq(rln.leaf(uint32(i)), t3.poseidon([ids[i], uint256(limits[i])]), "leaf = PoseidonT3(id, limit)");
        }
        assertEq(address(rln).balance, DEPOSIT * (uint256(limits[0]) + limits[1] + limits[2] + limits[3]), "deposits");
    }

    function testFuzz_RegisterRejectsOutOfField(uint256 id) public {
        id = bound(id, Q, type(uint256).max);
        vm.expectRevert(abi.encodeWithSelector(RlnMembership.InvalidIdCommitment.selector, id));
        _register(alice, id, 1);
    }

    function testFuzz_RegisterRejectsWrongDeposit(uint32 limit, uint256 value) public {
        limit = uint32(bound(limit, MIN_LIMIT, MAX_LIMIT));
        value = bound(value, 0, 100 ether);
        vm.assume(value != DEPOSIT * limit);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(RlnMembership.WrongDeposit.selector, DEPOSIT * limit, value));
        rln.register{value: value}(ID, limit);
    }

    function testFuzz_RegisterRejectsLimitOutOfRange(uint32 limit) public {
        vm.assume(limit < MIN_LIMIT || limit > MAX_LIMIT);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(RlnMembership.LimitOutOfRange.selector, limit, MIN_LIMIT, MAX_LIMIT));
        rln.register(ID, limit);
    }

    function testFuzz_SlashPaysReceiver(uint160 raw, uint256 secret) public {
        secret = bound(secret, 1, Q - 1);
        address receiver = address(uint160(bound(raw, 0x10000, type(uint160).max)));
        vm.assume(receiver.code.length == 0 && receiver != alice && receiver != address(vm));
        uint256 id = t2.poseidon([secret]);
        _register(alice, id, 2);
        vm.prank(bob);
        rln.commitSlash(_commitment(secret, receiver));
        vm.roll(block.number + 1);
        uint256 before = receiver.balance;
        vm.prank(bob);
        rln.revealSlash(secret, payable(receiver));
        assertEq(receiver.balance, before + 2 * DEPOSIT, "receiver paid");
        assertEq(rln.leaf(0), 0, "leaf zeroed");
    }
}
