"""Finding a card by a card reference, within one merchant."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from domain.lookup import (
    AmbiguousCardRef,
    EmailNeedsMerchant,
    UnknownMerchant,
    card_view,
    find_card,
    find_card_by_text,
)
from domain.models import Customer, LoyaltyCard
from domain.soft_delete import soft_delete
from tests.domain import factories as f


async def _cafe(db: AsyncSession) -> tuple[int, LoyaltyCard]:
    merchant = await f.merchant(db, "cafe")
    program = await f.program(db, merchant, stamps_target=8)
    ann = await f.customer(db, merchant, email="ann@example.com", ref="C-17")
    card = await f.card(
        db, merchant, program, ann, card_number="1234-5678-9012", qr_token="qr-ann", version=3
    )
    return merchant.id, card


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("card_number", "1234-5678-9012"),
        ("card_number", "1234 5678 9012"),
        ("card_number", "123456789012"),
        ("card_number", " 1234-5678 9012 "),
        ("qr_code", "qr-ann"),
        ("email", "ann@example.com"),
        ("email", "Ann@Example.COM"),
        ("customer_ref", "C-17"),
    ],
)
async def test_every_kind_of_reference_finds_the_card(
    db: AsyncSession, kind: str, value: str
) -> None:
    merchant_id, card = await _cafe(db)
    found = await find_card(db, merchant_id, kind, value)
    assert found is not None and found.id == card.id


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("card_number", "1234-5678-9013"),
        ("qr_code", "QR-ANN"),
        ("email", "bob@example.com"),
        ("customer_ref", "c-17"),
    ],
)
async def test_no_card_for_what_matches_nothing(db: AsyncSession, kind: str, value: str) -> None:
    merchant_id, _ = await _cafe(db)
    assert await find_card(db, merchant_id, kind, value) is None


async def test_a_card_of_another_merchant_is_never_found(db: AsyncSession) -> None:
    _, card = await _cafe(db)
    other = await f.merchant(db, "other")
    for kind, value in [
        ("card_number", card.card_number),
        ("qr_code", card.qr_token),
        ("email", "ann@example.com"),
        ("customer_ref", "C-17"),
    ]:
        assert await find_card(db, other.id, kind, value) is None
    with pytest.raises(ValueError, match="unknown card reference kind"):
        await find_card(db, other.id, "phone", "123")


async def test_deleted_cards_and_customers_are_not_found(db: AsyncSession) -> None:
    merchant_id, card = await _cafe(db)
    await soft_delete(db, Customer, [card.customer_id], by="test")  # takes the card along
    await db.commit()
    db.expunge_all()

    assert await find_card(db, merchant_id, "card_number", card.card_number) is None
    assert await find_card(db, merchant_id, "email", "ann@example.com") is None


async def test_one_card_per_store_is_chosen_by_store_or_called_ambiguous(
    db: AsyncSession,
) -> None:
    merchant = await f.merchant(db, "bakery", allow_cross_location_redemption=False)
    program = await f.program(db, merchant)
    s1 = await f.store(db, merchant, "B1")
    s2 = await f.store(db, merchant, "B2")
    ann = await f.customer(db, merchant, email="ann@example.com")
    first = await f.card(db, merchant, program, ann, s1)
    second = await f.card(db, merchant, program, ann, s2)

    at_s2 = await find_card(db, merchant.id, "email", "ann@example.com", store_id=s2.id)
    assert at_s2 is not None and at_s2.id == second.id
    with pytest.raises(AmbiguousCardRef) as ambiguous:
        await find_card(db, merchant.id, "email", "ann@example.com")
    assert ambiguous.value.card_numbers == (first.card_number, second.card_number)


async def test_a_person_types_a_number_a_qr_code_or_an_email(db: AsyncSession) -> None:
    _, card = await _cafe(db)

    for typed in ("1234 5678 9012", "qr-ann"):
        found = await find_card_by_text(db, typed)
        assert found is not None and found.id == card.id
    found = await find_card_by_text(db, "ANN@example.com", merchant_code="cafe")
    assert found is not None and found.id == card.id
    with pytest.raises(EmailNeedsMerchant):
        await find_card_by_text(db, "ann@example.com")
    with pytest.raises(UnknownMerchant):
        await find_card_by_text(db, "qr-ann", merchant_code="nope")
    await f.merchant(db, "other")
    assert await find_card_by_text(db, "qr-ann", merchant_code="other") is None


async def test_the_card_view_has_the_contract_fields(db: AsyncSession) -> None:
    _, card = await _cafe(db)
    card.stamp_count, card.points_balance = 5, 120
    view = await card_view(db, card)
    assert view.contract_fields() == {
        "card_number": "1234-5678-9012",
        "merchant_code": "cafe",
        "stamp_count": 5,
        "stamps_target": 8,
        "points_balance": 120,
        "is_active": True,
        "version": 3,
        "points_pending": 0,
        "next_expiry": None,
        "tier": None,
        "points_to_next_tier": None,
    }


TIERS = [
    {"id": "member", "name": "Member", "threshold_points": 0, "multiplier": 1},
    {"id": "silver", "name": "Silver", "threshold_points": 500, "multiplier": 1.25},
    {"id": "gold", "name": "Gold", "threshold_points": 1500, "multiplier": 1.5},
]


@pytest.mark.parametrize(
    ("tier", "qualifying", "shown"),
    [
        ("member", 120, ("member", 380)),
        ("silver", 700, ("silver", 800)),
        # Above the next threshold until its next event moves it up: nothing missing.
        ("silver", 1600, ("silver", 0)),
        # Still silver after falling below: the daily run moves it down after the grace days.
        ("silver", 200, ("silver", 1300)),
        ("gold", 2000, ("gold", None)),
        # Not placed yet (no event since the program got tiers): shown in the tier its points
        # give, as results, the card page and the passes show it.
        (None, 0, ("member", 500)),
        (None, 600, ("silver", 900)),
        # A tier the program no longer has: likewise.
        ("platinum", 50, ("member", 450)),
    ],
)
async def test_the_card_view_has_the_tier_and_the_points_to_the_next(
    db: AsyncSession, tier: str | None, qualifying: int, shown: tuple[str | None, int | None]
) -> None:
    merchant = await f.merchant(db, "cafe")
    program = await f.program(db, merchant, tiers=TIERS, tier_grace_days=30)
    card = await f.card(db, merchant, program, tier=tier, qualifying_points=qualifying)

    fields = (await card_view(db, card)).contract_fields()

    assert (fields["tier"], fields["points_to_next_tier"]) == shown


async def test_a_program_without_tiers_shows_neither(db: AsyncSession) -> None:
    merchant = await f.merchant(db, "cafe")
    program = await f.program(db, merchant, tiers=TIERS)
    # The program's tiers were taken away: the card's last tier no longer means anything.
    card = await f.card(db, merchant, program, tier="silver", qualifying_points=700)
    program.tiers = []
    await db.flush()

    fields = (await card_view(db, card)).contract_fields()

    assert (fields["tier"], fields["points_to_next_tier"]) == (None, None)
