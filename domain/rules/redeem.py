"""Redeeming a reward: a full stamp card, or a catalog reward for points."""

from __future__ import annotations

from core.enums import LedgerType
from domain.rules.values import CardBalance, Change, Decision, ProgramTerms, Reason, refused


def redeem_stamps(terms: ProgramTerms, card: CardBalance) -> Decision:
    """Take ``stamps_target`` stamps when the card has them."""
    if not terms.stamps_enabled:
        return refused(Reason.STAMPS_NOT_ENABLED)
    if card.stamp_count < terms.stamps_target:
        return refused(Reason.INSUFFICIENT_STAMPS)
    return Decision(
        (
            Change(
                LedgerType.STAMP_REDEEMED,
                stamps_delta=-terms.stamps_target,
                reward_description=terms.stamps_reward_description,
            ),
        )
    )


def redeem_points(terms: ProgramTerms, card: CardBalance, reward_code: str) -> Decision:
    """Take a catalog reward's points when the card has them and the minimum is reached.

    Every rule that refuses is reported, so a till can tell the customer all of it at once.
    """
    if not terms.points_enabled:
        return refused(Reason.POINTS_NOT_ENABLED)
    reward = terms.rewards.get(reward_code)
    if reward is None or not reward.is_active:
        return refused(Reason.UNKNOWN_REWARD)
    reasons: list[Reason] = []
    if card.points_balance < terms.minimum_redemption_points:
        reasons.append(Reason.BELOW_MINIMUM_REDEMPTION)
    if card.points_balance < reward.points_required:
        reasons.append(Reason.INSUFFICIENT_POINTS)
    if reasons:
        return refused(*reasons)
    return Decision(
        (
            Change(
                LedgerType.POINTS_REDEEMED,
                points_delta=-reward.points_required,
                reward_code=reward.code,
                reward_description=reward.name,
            ),
        )
    )
