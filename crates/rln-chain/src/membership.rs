//! Transactions of a member: register (with the deposit), erase, withdraw.

use alloy::network::Ethereum;
use alloy::primitives::{Address, U256};
use alloy::providers::PendingTransactionBuilder;
use alloy::providers::Provider;
use alloy::rpc::types::TransactionReceipt;
use rln_core::{fr_to_le_bytes, Identity};

use crate::contract::RlnMembership::{self, RlnMembershipErrors};
use crate::error::ChainError;

/// A confirmed registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Registration {
    /// The member's leaf index.
    pub index: u64,
    /// The block that included it.
    pub block: u64,
    /// The deposit paid, in wei.
    pub deposit: U256,
}

/// The id commitment as the contract's `uint256`.
pub fn commitment_u256(identity: &Identity) -> U256 {
    U256::from_le_bytes(fr_to_le_bytes(&identity.commitment()))
}

/// Turns a failed contract call into one sentence that says what to do.
pub(crate) fn explain(what: &'static str, err: alloy::contract::Error) -> ChainError {
    let reason = match err.as_decoded_interface_error::<RlnMembershipErrors>() {
        Some(RlnMembershipErrors::AlreadyRegistered(e)) => format!(
            "the id commitment {} is already registered (or was erased); generate a new identity",
            e.idCommitment
        ),
        Some(RlnMembershipErrors::WrongDeposit(e)) => format!(
            "the deposit must be exactly {} wei, {} was sent",
            e.expected, e.sent
        ),
        Some(RlnMembershipErrors::LimitOutOfRange(e)) => format!(
            "a message limit of {} is outside the contract's range {}..={}",
            e.limit, e.min, e.max
        ),
        Some(RlnMembershipErrors::SetFull(_)) => "the membership set is full".into(),
        Some(RlnMembershipErrors::NotHolder(_)) => {
            "only the account that registered the membership can do this".into()
        }
        Some(RlnMembershipErrors::NotRegistered(e)) => {
            format!("{} is not an active membership", e.idCommitment)
        }
        Some(RlnMembershipErrors::NothingToWithdraw(_)) => "there is nothing to withdraw".into(),
        Some(RlnMembershipErrors::NoSlashCommitment(_)) => {
            "no slash commitment matches this secret and receiver; commit first".into()
        }
        Some(RlnMembershipErrors::WithdrawalLocked(e)) => format!(
            "the deposit stays frozen until unix time {} ({}): an erased membership can be \
             slashed for the contract's withdrawal delay",
            e.unlockAt,
            time_left(e.unlockAt)
        ),
        Some(RlnMembershipErrors::NothingToSlash(e)) => format!(
            "{} has nothing left to slash (slashed already, or erased and withdrawn)",
            e.idCommitment
        ),
        Some(RlnMembershipErrors::CommitmentTooRecent(_)) => {
            "the reveal must come at least one block after the commit".into()
        }
        Some(RlnMembershipErrors::CommitmentReused(_)) => {
            "this slash commitment was already used".into()
        }
        Some(RlnMembershipErrors::SelfSlash(_)) => "a member cannot slash itself".into(),
        Some(other) => format!("the contract refused: {other:?}"),
        None => {
            let text = err.to_string();
            if text.to_lowercase().contains("insufficient funds") {
                "the account cannot pay the deposit and gas (insufficient funds)".into()
            } else {
                text
            }
        }
    };
    ChainError::Transaction { what, reason }
}

/// Waits for a sent transaction's receipt and checks that it succeeded.
pub(crate) async fn confirmed(
    what: &'static str,
    sent: Result<PendingTransactionBuilder<Ethereum>, alloy::contract::Error>,
) -> Result<TransactionReceipt, ChainError> {
    let receipt = sent
        .map_err(|e| explain(what, e))?
        .get_receipt()
        .await
        .map_err(|e| ChainError::Transaction {
            what,
            reason: format!("no receipt: {e}"),
        })?;
    if !receipt.status() {
        return Err(ChainError::Transaction {
            what,
            reason: "the transaction reverted".into(),
        });
    }
    Ok(receipt)
}

/// Registers `identity` with `limit`, paying the deposit the contract asks for, and waits
/// for the receipt.
pub async fn register<P: Provider + Clone>(
    provider: &P,
    contract: Address,
    identity: &Identity,
    limit: u32,
) -> Result<Registration, ChainError> {
    let membership = RlnMembership::new(contract, provider.clone());
    let per_message = membership
        .depositPerMessage()
        .call()
        .await
        .map_err(|e| explain("reading the deposit", e))?;
    let deposit = per_message * U256::from(limit);
    let sent = membership
        .register(commitment_u256(identity), limit)
        .value(deposit)
        .send()
        .await;
    let receipt = confirmed("register", sent).await?;
    let event = receipt
        .decoded_log::<RlnMembership::MembershipRegistered>()
        .ok_or_else(|| ChainError::Transaction {
            what: "register",
            reason: "the receipt has no MembershipRegistered event".into(),
        })?;
    Ok(Registration {
        index: u64::from(event.data.index),
        block: receipt.block_number.unwrap_or_default(),
        deposit,
    })
}

/// Erases the caller's membership of `identity`. Its deposit stays frozen (and slashable) for
/// the contract's withdrawal delay; returns the unix time from which [`withdraw`] can take it.
pub async fn erase<P: Provider + Clone>(
    provider: &P,
    contract: Address,
    identity: &Identity,
) -> Result<u64, ChainError> {
    let membership = RlnMembership::new(contract, provider.clone());
    let id = commitment_u256(identity);
    confirmed("erase", membership.erase(id).send().await).await?;
    let member = membership
        .members(id)
        .call()
        .await
        .map_err(|e| explain("reading the erased membership", e))?;
    Ok(member.unlockAt)
}

/// Withdraws the deposit of the caller's erased membership of `identity` once the contract's
/// withdrawal delay has passed; returns the amount.
pub async fn withdraw<P: Provider + Clone>(
    provider: &P,
    contract: Address,
    identity: &Identity,
) -> Result<U256, ChainError> {
    let membership = RlnMembership::new(contract, provider.clone());
    let id = commitment_u256(identity);
    let member = membership
        .members(id)
        .call()
        .await
        .map_err(|e| explain("reading the membership", e))?;
    confirmed("withdraw", membership.withdraw(id).send().await).await?;
    Ok(member.deposit)
}

/// "in about 3 h 20 min" or "now" for a unix time, as seen from this machine's clock.
fn time_left(unix: u64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let left = unix.saturating_sub(now);
    match left {
        0 => "now, by this machine's clock; the chain's clock is behind".into(),
        1..=119 => format!("in about {left} s"),
        120..=7199 => format!("in about {} min", left.div_ceil(60)),
        _ => format!("in about {} h {} min", left / 3600, (left % 3600) / 60),
    }
}
