"""The simulator's choices and pacing, as plain Python (no broker, no database)."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime

from consumers.simulate import SimCard, SimMerchant, TokenBucket, Traffic
from streams.inputs import (
    EnrollmentChannel,
    EnrollmentRequested,
    PointsReward,
    PurchaseCompleted,
    RewardRedeemRequested,
    StampsReward,
)
from streams.parsing import ParseError, key_for, parse_input, record_for

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


class Clock:
    """Monotonic seconds that the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _merchant(
    code: str,
    program_type: str,
    *,
    rewards: list[tuple[str, int]] | None = None,
    cross_location: bool = True,
    self_enrollment: bool = True,
) -> SimMerchant:
    return SimMerchant(
        code=code,
        stores=[f"{code}-1", f"{code}-2"],
        program_type=program_type,
        currency="EUR",
        stamps_target=8,
        points_per_euro=0 if program_type == "stamps" else 10,
        minimum_purchase_cents=0,
        minimum_redemption_points=0,
        self_enrollment=self_enrollment,
        cross_location=cross_location,
        rewards=rewards or [],
    )


def _cards(prefix: str, count: int, store: str | None = None) -> list[SimCard]:
    return [
        SimCard(f"{prefix}-{i:04d}-AAAA", f"{prefix.lower()}{i}@example.com", store)
        for i in range(count)
    ]


def test_every_event_is_a_valid_message_of_its_topic_keyed_by_the_contract() -> None:
    clock = Clock()
    merchants = [
        _merchant("cafe", "stamps"),
        _merchant("shop", "points", rewards=[("bag", 300)]),
        _merchant("deli", "hybrid", rewards=[("soup", 120)]),
    ]
    for merchant in merchants:
        merchant.cards = _cards(merchant.code.upper(), 20)
    traffic = Traffic(merchants, random.Random(1), clock)
    kinds: Counter[str] = Counter()
    for _ in range(3000):
        clock.now += 0.2
        message = traffic.next_event(NOW)
        record = record_for(message)
        parsed = parse_input(record.topic, record.value)
        assert not isinstance(parsed, ParseError), parsed
        assert parsed == message
        assert record.key == key_for(message).encode()
        kinds[message.type] += 1
        if isinstance(message, RewardRedeemRequested) and message.store_code.startswith("cafe"):
            assert isinstance(message.reward, StampsReward)
        if isinstance(message, RewardRedeemRequested) and message.store_code.startswith("shop"):
            assert isinstance(message.reward, PointsReward)
    assert set(kinds) == {
        "enrollment.requested",
        "purchase.completed",
        "purchase.returned",
        "reward.redeem_requested",
    }
    assert kinds["purchase.completed"] > sum(kinds.values()) / 2


def test_cards_bound_to_a_store_are_used_there_and_self_enrolment_is_respected() -> None:
    clock = Clock()
    merchant = _merchant("local", "stamps", cross_location=False, self_enrollment=False)
    merchant.cards = _cards("LOCL", 10, store="local-2")
    traffic = Traffic([merchant], random.Random(2), clock)
    bound = 0
    for _ in range(1000):
        clock.now += 0.2
        message = traffic.next_event(NOW)
        if isinstance(message, EnrollmentRequested):
            assert message.channel != EnrollmentChannel.SELF
        elif (
            isinstance(message, PurchaseCompleted)
            and (message.card.card_number or "")[:4] == "LOCL"
        ):
            assert message.store_code == "local-2"
            bound += 1
    assert bound > 100


def test_a_redemption_comes_only_when_the_card_likely_holds_enough() -> None:
    clock = Clock()
    merchant = _merchant("shop", "points", rewards=[("bag", 5_000)])
    merchant.cards = [SimCard("SHOP-0000-0001", None, None, points=4_999)]
    traffic = Traffic([merchant], random.Random(3), clock)
    redeemed = 0
    for _ in range(1000):
        clock.now += 0.2
        message = traffic.next_event(NOW)
        redeemed += isinstance(message, RewardRedeemRequested)
        # The estimate pays for every redemption: it never goes below zero.
        assert all(card.points >= 0 for card in merchant.cards)
    assert redeemed > 0


def test_new_customers_shop_only_once_their_card_can_exist() -> None:
    clock = Clock()
    merchant = _merchant("new", "hybrid")
    traffic = Traffic([merchant], random.Random(4), clock)
    first = traffic.next_event(NOW)
    assert isinstance(first, EnrollmentRequested)
    # Until the new card is ready, the only customer has nothing else to do: more enrolments.
    assert all(isinstance(traffic.next_event(NOW), EnrollmentRequested) for _ in range(20))
    clock.now += 10
    later = [traffic.next_event(NOW) for _ in range(50)]
    assert any(isinstance(m, PurchaseCompleted) and m.card.email is not None for m in later)


def test_the_bucket_paces_without_a_flood_after_a_stall() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=50, burst=5, clock=clock)
    taken = 0
    for _ in range(1000):  # ten seconds in steps of 10 ms
        clock.now += 0.01
        taken += bucket.take()
    assert 495 <= taken <= 500
    clock.now += 60  # a minute without taking
    assert bucket.take() == 5
    assert bucket.wait() == 1 / 50
