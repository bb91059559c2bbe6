"""One handler per command: load nothing (the batch loaded it), ask the rules, record the
outcome. ``HANDLERS`` maps each command type to its handler; ``engine.batch`` dispatches."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import msgspec

from core.commands import Enrol, Purchase, Redeem, Return
from core.enums import Topic
from domain import identifiers
from domain.engine import tiers
from domain.engine.context import BatchContext, Inbound
from domain.engine.outputs import APPLIED, HELD, REJECTED
from domain.engine.state import CardRow, CustomerRow, HeldRow, PurchaseRow, StoreInfo
from domain.rules.basket import CampaignUse, Earnings
from domain.rules.earn import PurchaseFacts, earn_purchase
from domain.rules.enrol import may_enrol, new_card
from domain.rules.lots import own_pending, take_pending_first
from domain.rules.redeem import redeem_points, redeem_stamps
from domain.rules.resolve import enrolment_finds, order_refusal, return_waits
from domain.rules.tiers import MILLI
from domain.rules.values import CardBalance, Reason, StampHistory
from domain.rules.void import PurchaseRecord, decide_line_return, decide_return

_NO_USES: dict[int, CampaignUse] = {}


async def handle_purchase(ctx: BatchContext, ev: Inbound, cmd: Purchase) -> None:
    """``purchase.completed``: earn, record the order, apply returns held for it."""
    found = ctx.store_and_card(ev, cmd.store_code, cmd.card)
    if found is None:
        return
    store, card, terms = found
    key = (store.merchant_id, cmd.order_reference)
    refused = order_refusal(key in ctx.state.purchases)
    if refused is not None:
        ctx.finish(ev, REJECTED, [refused], store, card=card)
        return
    history = StampHistory(None, 0)
    if terms.stamps_enabled and cmd.stamps > 0 and cmd.currency == terms.currency:
        history = await ctx.uow.stamp_history(ctx.state, card, terms, cmd.occurred_at)
    facts = PurchaseFacts(cmd.amount_cents, cmd.currency, cmd.stamps, cmd.occurred_at, cmd.lines)
    uses = ctx.campaign_uses(terms, card) if terms.campaigns else _NO_USES
    tiered = bool(terms.tiers.tiers)
    if tiered:
        tiers.advance(card, terms, cmd.occurred_at)
    tier_milli = tiers.multiplier(terms, card) if tiered else MILLI
    outcome = earn_purchase(terms, facts, history, uses, tier_milli)
    decision, basket = outcome.decision, outcome.basket
    if Reason.UNSUPPORTED_CURRENCY in decision.reasons:
        ctx.finish(ev, REJECTED, decision.reasons, store, card=card)
        return
    deltas = ctx.change(
        card,
        store,
        decision,
        ev,
        cmd.occurred_at,
        purchase_amount_cents=cmd.amount_cents,
        order_reference=cmd.order_reference,
        staff_ref=cmd.staff_ref,
    )
    ctx.state.purchases[key] = PurchaseRow(
        purchase_id=None,
        merchant_id=store.merchant_id,
        order_reference=cmd.order_reference,
        card_id=card.card_id,
        store_id=store.store_id,
        currency=cmd.currency,
        source_event_id=cmd.event_id,
        occurred_at=cmd.occurred_at,
        record=PurchaseRecord(cmd.amount_cents, deltas[1], deltas[0]),
        is_new=True,
        earnings=_with_tier(basket.earnings, tier_milli) if basket is not None else None,
        tier=card.balance.tier if tiered else None,
        tier_points=outcome.tier_points,
    )
    if tiered:
        ctx.qualify(card, store, terms, cmd.order_reference, cmd.occurred_at, deltas[1], ev)
    awarded = ctx.count_awards(card, basket.awards) if basket is not None and basket.awards else []
    status = APPLIED if decision.changed else REJECTED
    ctx.finish(ev, status, decision.reasons, store, card=card, deltas=deltas, campaigns=awarded)
    for held in ctx.state.held.get(key, []):
        if not held.applied:
            held.applied = True
            returned = Return.from_payload(held.payload)
            await _void(
                ctx, Inbound(Topic.RETURNS.value, returned), returned, ctx.state.purchases[key]
            )


async def handle_return(ctx: BatchContext, ev: Inbound, cmd: Return) -> None:
    """``purchase.returned``: void in proportion, or hold until the purchase is seen."""
    store = ctx.store(cmd.store_code, needs_active_program=False)
    if isinstance(store, Reason):
        ctx.finish(ev, REJECTED, [store])
        return
    key = (store.merchant_id, cmd.order_reference)
    purchase = ctx.state.purchases.get(key)
    waits = return_waits(purchase is not None)
    if purchase is not None:
        await _void(ctx, ev, cmd, purchase)
        return
    ctx.state.held.setdefault(key, []).append(
        HeldRow(
            held_id=None,
            merchant_id=store.merchant_id,
            store_id=store.store_id,
            order_reference=cmd.order_reference,
            source_event_id=cmd.event_id,
            payload=cmd.as_payload(),
            is_new=True,
        )
    )
    ctx.finish(ev, HELD, [waits or Reason.PURCHASE_NOT_SEEN_YET], store)


async def _void(ctx: BatchContext, ev: Inbound, cmd: Return, purchase: PurchaseRow) -> None:
    """Take back what the purchase earned, pro rata to everything refunded so far; its own
    pending points first (CONTRACT.md 7.2), then the points that expire first."""
    store = ctx.store(cmd.store_code, needs_active_program=False)
    if isinstance(store, Reason):  # the return's store vanished while it was held
        ctx.finish(ev, REJECTED, [store])
        return
    card = ctx.state.cards.get(purchase.card_id) if purchase.card_id else None
    if card is None:
        ctx.finish(ev, REJECTED, [Reason.CARD_NOT_FOUND], store)
        return
    terms = store.terms
    tiered = terms is not None and bool(terms.tiers.tiers)
    if tiered and terms is not None:
        tiers.advance(card, terms, cmd.occurred_at)
    balance, own = card.balance, None
    if purchase.record.points_earned > purchase.record.points_voided:
        balance = await ctx.spendable(card, cmd.occurred_at)
        own = own_pending(await ctx.lots(card), purchase.source_event_id, cmd.occurred_at)
        if own is not None:
            balance = replace(balance, points_balance=balance.points_balance + own.remaining)
    earnings = purchase.earnings
    if cmd.lines and earnings is not None:
        outcome, earnings = decide_line_return(
            purchase.record, earnings, balance, cmd.refund_amount_cents, cmd.lines
        )
    else:
        outcome = decide_return(purchase.record, balance, cmd.refund_amount_cents)
    if outcome.purchase == purchase.record and earnings == purchase.earnings:
        ctx.finish(ev, REJECTED, outcome.decision.reasons, store, card=card)
        return
    if own is not None or outcome.decision.changed:
        ctx.release_due(card, store, ev, cmd.occurred_at)
    deltas = ctx.change(
        card,
        store,
        take_pending_first(outcome.decision, own),
        ev,
        cmd.occurred_at,
        order_reference=cmd.order_reference,
        notes=f"refund of {cmd.refund_amount_cents} cents",
    )
    purchase.record, purchase.earnings = outcome.purchase, earnings
    purchase.dirty = True
    if tiered and deltas[1]:
        # What the return took back no longer qualifies (down moves wait for the daily run).
        tiers.count(card, purchase.order_reference, purchase.occurred_at, deltas[1])
    ctx.finish(ev, APPLIED, outcome.decision.reasons, store, card=card, deltas=deltas)


async def handle_redeem(ctx: BatchContext, ev: Inbound, cmd: Redeem) -> None:
    """``reward.redeem_requested``: a full stamp card or a catalog reward."""
    found = ctx.store_and_card(ev, cmd.store_code, cmd.card)
    if found is None:
        return
    store, card, terms = found
    if cmd.reward_id is not None:
        balance = card.balance
        if terms.points_enabled:
            balance = await ctx.spendable(card, cmd.occurred_at)
        decision = redeem_points(terms, balance, cmd.reward_id)
        if decision.changed:
            ctx.release_due(card, store, ev, cmd.occurred_at)
    else:
        decision = redeem_stamps(terms, card.balance)
    deltas = ctx.change(card, store, decision, ev, cmd.occurred_at, staff_ref=cmd.staff_ref)
    status = APPLIED if decision.changed else REJECTED
    ctx.finish(ev, status, decision.reasons, store, card=card, deltas=deltas)


async def handle_enrol(ctx: BatchContext, ev: Inbound, cmd: Enrol) -> None:
    """``enrollment.requested``: the existing card, or a new one with its welcome bonus."""
    store = ctx.store(cmd.store_code)
    if isinstance(store, Reason):
        ctx.finish(ev, REJECTED, [store])
        return
    refused = may_enrol(cmd.channel.value, store.allow_self_enrollment)
    if refused is not None:
        ctx.finish(ev, REJECTED, [refused], store)
        return
    customer = _customer(ctx, store, cmd)
    existing = _existing_card(ctx, store, customer)
    found = enrolment_finds(existing is not None)
    if existing is not None and found is not None:
        ctx.finish(ev, APPLIED, [found], store, card=existing)
        return
    terms = store.terms
    assert terms is not None
    card = CardRow(
        balance=CardBalance(card_id=ctx.card_ids.pop(), version=0),
        card_number=identifiers.new_card_number(),
        merchant_id=store.merchant_id,
        program_id=terms.program_id,
        customer_id=customer.customer_id,
        store_id=store.store_id,
        is_new=True,
        qr_token=identifiers.new_qr_token(),
        apple_authentication_token=identifiers.new_authentication_token(),
    )
    ctx.state.add_card(card)
    deltas = ctx.change(card, store, new_card(terms), ev, cmd.occurred_at)
    if terms.tiers.tiers:  # a new card starts in the first tier, its window at enrolment
        card.window_rows = {}
        tiers.advance(card, terms, cmd.occurred_at)
        ctx.qualify(card, store, terms, None, cmd.occurred_at, 0, ev)
    ctx.finish(ev, APPLIED, (), store, card=card, deltas=deltas)


def _customer(ctx: BatchContext, store: StoreInfo, cmd: Enrol) -> CustomerRow:
    c = cmd.customer
    state = ctx.state
    found = (state.customers_by_email.get((store.merchant_id, c.email)) if c.email else None) or (
        state.customers_by_ref.get((store.merchant_id, c.customer_ref)) if c.customer_ref else None
    )
    if found is not None:
        return found
    row = CustomerRow(
        customer_id=ctx.customer_ids.pop(),
        merchant_id=store.merchant_id,
        email=c.email,
        customer_ref=c.customer_ref,
        is_new=True,
        values={
            "phone": c.phone,
            "first_name": c.first_name,
            "last_name": c.last_name,
            "locale": c.locale,
        },
    )
    state.add_customer(row)
    ctx.customers.append(row)
    return row


def _existing_card(ctx: BatchContext, store: StoreInfo, customer: CustomerRow) -> CardRow | None:
    for card_id in ctx.state.cards_by_customer.get(customer.customer_id, []):
        card = ctx.state.cards[card_id]
        if store.cross_location or card.store_id == store.store_id:
            return card
    return None


def _with_tier(earnings: Earnings | None, tier_milli: int) -> Earnings | None:
    # A return with lines voids what the lines earned times the tier's multiplier then.
    if earnings is None or tier_milli == MILLI:
        return earnings
    return msgspec.structs.replace(earnings, tier_milli=tier_milli)


Handler = Callable[[BatchContext, Inbound, Any], Awaitable[None]]

HANDLERS: dict[type, Handler] = {
    Purchase: handle_purchase,
    Return: handle_return,
    Enrol: handle_enrol,
    Redeem: handle_redeem,
}
"""The handler of each command the batch applies in order (the expiry run is set-based:
``engine.batch`` runs it apart)."""
