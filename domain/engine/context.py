"""One segment of a batch as the handlers see it: the loaded state, the effects decided so
far, the results, and the lookups every handler shares (the event's store, its card)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import msgspec

from core.commands import CardRef, Command, Purchase
from core.enums import CardRefKind
from domain.engine import tiers
from domain.engine.apply import Origin, apply_decision
from domain.engine.lots import due_release
from domain.engine.outputs import Result, result_message
from domain.engine.state import BatchState, CardRow, CustomerRow, StoreInfo
from domain.engine.tiers import tier_fields
from domain.engine.unit_of_work import UnitOfWork
from domain.engine.writes import Effects
from domain.rules.basket import CampaignUse
from domain.rules.campaigns import CampaignTerms
from domain.rules.lots import Lot, next_expiry, release, spendable_points
from domain.rules.resolve import CardFacts, StoreFacts, card_refusal, store_refusal
from domain.rules.values import CardBalance, Decision, ProgramTerms, Reason


class Inbound(msgspec.Struct, frozen=True, gc=False):
    """A command and where it came from; staff fields are set by the staff terminal."""

    topic: str
    command: Command
    staff_pin_id: int | None = None
    actor: str | None = None


class BatchContext:
    """What the handlers of one segment share; see ``engine.handlers``."""

    def __init__(self, uow: UnitOfWork, now: datetime) -> None:
        self.uow = uow
        self.now = now
        # Every output of the batch carries the same processing time: format it once.
        self.now_text = now.isoformat()
        self.state = BatchState()
        self.effects = Effects()
        self.results: list[Result] = []
        self.customers: list[CustomerRow] = []
        self.customer_ids: list[int] = []
        self.card_ids: list[int] = []

    # --- outcomes -------------------------------------------------------------------------

    def finish(
        self,
        ev: Inbound,
        status: str,
        reasons: Sequence[Reason] = (),
        store: StoreInfo | None = None,
        card: CardRow | None = None,
        deltas: tuple[int, int] = (0, 0),
        campaigns: list[dict[str, Any]] | None = None,
    ) -> Result:
        """Record an event's result (an ``event.processed`` in the outbox)."""
        cmd = ev.command
        store_code = getattr(cmd, "store_code", None)
        # A store whose merchant has no (active) program still names its merchant.
        if store is None and store_code is not None:
            store = self.state.stores.get(store_code)
        terms = store.terms if store else None
        if campaigns is None and isinstance(cmd, Purchase):
            campaigns = []  # every purchase's result says what campaigns added, if nothing
        result = Result(
            source_event_id=cmd.event_id,
            source_topic=ev.topic,
            status=status,
            reasons=list(reasons),
            merchant_code=store.merchant_code if store else None,
            store_code=store.store_code if store else store_code,
            card_number=card.card_number if card else None,
            stamps_delta=deltas[0],
            points_delta=deltas[1],
            stamp_count=card.balance.stamp_count if card else None,
            stamps_target=terms.stamps_target if terms and terms.stamps_enabled else None,
            points_balance=card.balance.points_balance if card else None,
            campaigns=campaigns,
            points_pending=card.balance.points_pending if card else None,
            next_expiry=next_expiry(terms, card.balance) if card and terms else None,
            tier=tier_fields(terms, card) if card and terms and terms.tiers.tiers else None,
        )
        self.results.append(result)
        self.effects.outbox.append(result_message(result, self.now_text))
        return result

    def change(
        self,
        card: CardRow,
        store: StoreInfo,
        decision: Decision,
        ev: Inbound,
        at: datetime,
        *,
        notes: str | None = None,
        **ledger: Any,
    ) -> tuple[int, int]:
        """Apply a decision to a card (``engine.apply``) at the event's store."""
        assert store.terms is not None
        origin = Origin(
            source_event_id=ev.command.event_id,
            merchant_code=store.merchant_code,
            store_id=store.store_id,
            staff_pin_id=ev.staff_pin_id,
            actor=ev.actor,
        )
        return apply_decision(
            self.state,
            self.effects,
            card,
            store.terms,
            decision,
            origin,
            at,
            self.now_text,
            notes=notes,
            **ledger,
        )

    # --- tiers ----------------------------------------------------------------------------

    def qualify(
        self,
        card: CardRow,
        store: StoreInfo,
        terms: ProgramTerms,
        order: str | None,
        at: datetime,
        points: int,
        ev: Inbound,
    ) -> None:
        """A purchase's points count toward the card's tier; it moves up when they reach
        one (``engine.tiers``)."""
        if order is not None and points:
            tiers.count(card, order, at, points)
        notice = tiers.promote(
            self.state, card, terms, at, ev.command.event_id, store.merchant_code, self.now_text
        )
        if notice is not None:
            self.effects.outbox.append(notice)

    # --- lots -----------------------------------------------------------------------------

    async def lots(self, card: CardRow) -> list[Lot]:
        """The card's open lots (loaded once per segment, when a debit needs them)."""
        if card.lots is None:
            await self.uow.lots(self.state, card)
        assert card.lots is not None
        return card.lots

    async def spendable(self, card: CardRow, at: datetime) -> CardBalance:
        """The card as a debit at ``at`` sees it: only lots released by ``at`` spendable
        (CONTRACT.md 7.2), pending ones due by then included."""
        b = card.balance
        spendable = min(
            spendable_points(await self.lots(card), at), b.points_balance + b.points_pending
        )
        if spendable == card.balance.points_balance:
            return card.balance
        return dataclasses.replace(card.balance, points_balance=spendable)

    def release_due(self, card: CardRow, store: StoreInfo, ev: Inbound, at: datetime) -> None:
        """Before a debit at ``at``: the card's pending points due by then become spendable
        (``points_released``), so the debit can spend them."""
        due = due_release(card, at) if card.balance.points_pending else 0
        if due:
            self.change(card, store, release(due), ev, at)

    # --- campaigns ------------------------------------------------------------------------

    def campaign_uses(self, terms: ProgramTerms, card: CardRow) -> dict[int, CampaignUse]:
        """What each of the program's campaigns may still award, to this card."""
        state = self.state
        return {
            c.campaign_id: CampaignUse(
                None
                if c.budget_points is None
                else c.budget_points - state.campaign_awarded.get(c.campaign_id, 0),
                state.card_awards.get((c.campaign_id, card.card_id), 0),
            )
            for c in terms.campaigns
        }

    def count_awards(
        self, card: CardRow, awards: Sequence[tuple[CampaignTerms, int]]
    ) -> list[dict[str, Any]]:
        """Move the campaigns' counters by what they awarded; returns the result's
        ``campaigns``."""
        state = self.state
        for c, points in awards:
            if points > 0:
                cid, key = c.campaign_id, (c.campaign_id, card.card_id)
                state.campaign_awarded[cid] = state.campaign_awarded.get(cid, 0) + points
                state.campaign_added[cid] = state.campaign_added.get(cid, 0) + points
                if c.max_awards_per_card is not None:  # only a limit needs the count
                    state.card_awards[key] = state.card_awards.get(key, 0) + 1
                    state.card_awards_added[key] = state.card_awards_added.get(key, 0) + 1
        return [{"id": c.code, "points": points} for c, points in awards]

    # --- lookups --------------------------------------------------------------------------

    def store(self, code: str, *, needs_active_program: bool = True) -> StoreInfo | Reason:
        """The event's store, or why it cannot be used (``rules.resolve``)."""
        store = self.state.stores.get(code)
        facts = (
            StoreFacts(True, store.terms is not None, store.terms.is_active)
            if store is not None and store.terms is not None
            else StoreFacts(store is not None)
        )
        refused = store_refusal(facts, needs_active_program=needs_active_program)
        if refused is not None or store is None:
            return refused or Reason.STORE_NOT_FOUND
        return store

    def card(self, store: StoreInfo, ref: CardRef) -> tuple[CardRow | None, Reason | None]:
        """The card a reference names within the store's merchant, and why it cannot be used.

        A card that exists but is refused (inactive, or of another store) is returned with
        the reason, so the result still names it.
        """
        card = self._find(store, ref)
        facts = (
            CardFacts(
                found=True,
                same_merchant=card.merchant_id == store.merchant_id,
                cross_location=store.cross_location,
                card_store_id=card.store_id,
                store_id=store.store_id,
                is_active=card.balance.is_active,
            )
            if card is not None
            else CardFacts(found=False)
        )
        refused = card_refusal(facts)
        if refused is Reason.CARD_NOT_FOUND:
            return None, refused
        return card, refused

    def _find(self, store: StoreInfo, ref: CardRef) -> CardRow | None:
        kind, value = ref.kind, ref.value
        state = self.state
        card_id: int | None
        if kind is CardRefKind.CARD_NUMBER:
            card_id = state.card_by_number.get(value)
        elif kind is CardRefKind.QR_CODE:
            card_id = state.card_by_qr.get(value)
        else:
            index = (
                state.customers_by_email if kind is CardRefKind.EMAIL else state.customers_by_ref
            )
            customer = index.get((store.merchant_id, value))
            ids = state.cards_by_customer.get(customer.customer_id, []) if customer else []
            if not ids:
                return None
            here = [i for i in ids if state.cards[i].store_id == store.store_id]
            card_id = (here or ids)[0]
        return state.cards.get(card_id) if card_id is not None else None

    def store_and_card(
        self, ev: Inbound, store_code: str, ref: CardRef
    ) -> tuple[StoreInfo, CardRow, ProgramTerms] | None:
        """The store, card and program an event acts on, or None once its refusal is recorded."""
        store = self.store(store_code)
        if isinstance(store, Reason):
            self.finish(ev, "rejected", [store])
            return None
        card, refused = self.card(store, ref)
        if refused is not None or card is None:
            self.finish(ev, "rejected", [refused or Reason.CARD_NOT_FOUND], store, card=card)
            return None
        assert store.terms is not None  # self.store() refuses a store without a program
        return store, card, store.terms
