"""The lists (issue 18 item 4): sorting by a whitelist of keys done by the database, filters,
the CSV export of the current filter (formula cells neutralised, one merchant's rows only for
its admin), empty states that say what to do; the store picker scoped to the merchant worked
on and checked again on the server; delete and restore that count what they take along, and
a card hidden with its merchant that says so."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from nicegui.testing import User
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from admin_ui.problems import DomainRefusal
from admin_ui.queries import card_list, common, customers, deletion, merchants, stores
from admin_ui.queries.admins import Principal
from admin_ui.queries.common import CsvExport, PageRequest, UnknownSort
from core.csv_cells import safe_cell
from domain.models import Customer, LoyaltyCard, Merchant, Store, UserRole
from tests.admin_ui.helpers import (
    ALICE,
    MAIN_FILE,
    PLATFORM,
    WAIT,
    enrol,
    sign_in,
    texts,
)

pytestmark = MAIN_FILE

ROOT = Principal(1, "root", UserRole.PLATFORM_ADMIN, None)


def _alice(people: dict[str, Any]) -> Principal:
    return Principal(2, "alice", UserRole.MERCHANT_ADMIN, people["a"])


def _ask(
    *,
    search: str = "",
    sort: str = "",
    descending: bool = False,
    limit: int = 50,
    mode: str = "live",
    **filters: str,
) -> PageRequest:
    return PageRequest(
        search,
        mode,  # type: ignore[arg-type]
        0,
        limit,
        sort=sort,
        descending=descending,
        filters=tuple(filters.items()),
    )


def _csv(made: CsvExport) -> list[list[str]]:
    text = made.content.decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text)))


async def _stores_named(db: AsyncSession, merchant_id: int, names: list[str]) -> None:
    for i, name in enumerate(names):
        db.add(Store(merchant_id=merchant_id, code=f"sort-{i:02d}", name=name))
    await db.commit()


# --- sorting -----------------------------------------------------------------------------------


async def test_a_list_sorts_by_a_key_of_its_whitelist_with_the_id_breaking_ties(
    db: AsyncSession, people: dict[str, Any]
) -> None:
    await _stores_named(db, people["a"], ["banana", "Apple", "cherry", "apple"])
    alice = _alice(people)
    up = await stores.list_stores(db, alice, _ask(sort="name"))
    names = [r.name for r in up.items]
    # Case aside, "Apple" (added first) comes before "apple": the id breaks the tie.
    assert names == ["Apple", "apple", "banana", "cherry", "Shop 0", "Shop 1"]
    down = await stores.list_stores(db, alice, _ask(sort="name", descending=True))
    assert [r.name for r in down.items] == list(reversed(names))
    by_code = await stores.list_stores(db, alice, _ask(sort="code"))
    assert [r.code for r in by_code.items] == sorted(r.code for r in by_code.items)
    # The same order page after page: page two starts where page one ended.
    first = await stores.list_stores(db, alice, _ask(sort="name", limit=3))
    second = await stores.list_stores(
        db, alice, PageRequest("", "live", 3, 3, sort="name", filters=())
    )
    assert [r.name for r in [*first.items, *second.items]] == names


@pytest.mark.parametrize(
    "key", ["pin_hash", "id; DROP TABLE stores", "name desc", "merchant_id", "__class__"]
)
async def test_an_unknown_sort_key_is_refused_by_every_list(
    db: AsyncSession, people: dict[str, Any], key: str
) -> None:
    alice = _alice(people)
    calls = [
        merchants.list_merchants(db, ROOT, _ask(sort=key)),
        stores.list_stores(db, alice, _ask(sort=key)),
        customers.list_customers(db, alice, _ask(sort=key)),
        card_list.list_cards(db, alice, _ask(sort=key)),
        card_list.export_cards(db, alice, _ask(sort=key)),
    ]
    for call in calls:
        with pytest.raises(UnknownSort, match="cannot be sorted by"):
            await call
    assert issubclass(UnknownSort, DomainRefusal)  # the page says it in words


async def test_cards_and_customers_sort_by_their_figures(
    db: AsyncSession, people: dict[str, Any]
) -> None:
    store = people["a_store_codes"][0]
    numbers = [await enrol(db, store, f"c{i}@example.com") for i in range(3)]
    for number, points in zip(numbers, (40, 900, 7), strict=True):
        await db.execute(
            update(LoyaltyCard)
            .where(LoyaltyCard.card_number == number)
            .values(points_balance=points)
        )
    await db.commit()
    alice = _alice(people)
    most = await card_list.list_cards(db, alice, _ask(sort="points", descending=True))
    assert [r.points_balance for r in most.items] == [900, 40, 7]
    by_email = await customers.list_customers(db, alice, _ask(sort="email"))
    assert [r.email for r in by_email.items] == [
        "c0@example.com",
        "c1@example.com",
        "c2@example.com",
    ]


async def test_a_list_counts_its_rows_only_so_far_past_the_page_shown(
    db: AsyncSession, people: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    await _stores_named(db, people["a"], [f"Shop {i}" for i in range(12)])
    monkeypatch.setattr(common, "COUNT_CAP", 5)
    first = await stores.list_stores(db, _alice(people), _ask(limit=2))
    # Counted up to offset + cap + 1 = 6: "more than 5" on the first page.
    assert (len(first.items), first.total) == (2, 6)
    assert common.counted_past(first.total, 0)
    later = PageRequest("", "live", 10, 2)
    last = await stores.list_stores(db, _alice(people), later)
    # From offset 10 the count reaches the end: exact again (14 stores: 2 seeded + 12).
    assert last.total == 14 and not common.counted_past(last.total, 10)
    assert [s.name for s in last.items][:1] != [s.name for s in first.items][:1]


# --- filters and merchant isolation -------------------------------------------------------------


async def test_filters_narrow_the_lists_and_never_widen_a_merchant_admins_view(
    db: AsyncSession, people: dict[str, Any]
) -> None:
    active = await enrol(db, people["a_store_codes"][0], "on@example.com")
    off = await enrol(db, people["a_store_codes"][0], "off@example.com")
    await enrol(db, people["b_store_codes"][0], "bee@example.com")
    await db.execute(
        update(LoyaltyCard).where(LoyaltyCard.card_number == off).values(is_active=False)
    )
    await db.commit()
    alice = _alice(people)

    found = await card_list.list_cards(db, alice, _ask(status="inactive"))
    assert [r.card_number for r in found.items] == [off]
    assert [r.status for r in found.items] == ["deactivated"]
    found = await card_list.list_cards(db, alice, _ask(status="active"))
    assert [r.card_number for r in found.items] == [active]
    found = await card_list.list_cards(db, ROOT, _ask(program=str(people["b_program"])))
    assert [r.customer for r in found.items] == ["bee@example.com"]

    # A merchant admin asking for the other merchant's rows by a filter gets none.
    assert (
        await card_list.list_cards(db, alice, _ask(program=str(people["b_program"])))
    ).total == 0
    assert (await stores.list_stores(db, alice, _ask(merchant=str(people["b"])))).total == 0
    assert (await customers.list_customers(db, alice, _ask(merchant=str(people["b"])))).total == 0
    # A tampered filter value filters everything out, never in.
    assert (await customers.list_customers(db, ROOT, _ask(merchant="1 OR 1=1"))).total == 0
    everyone = await customers.list_customers(db, ROOT, _ask(merchant=str(people["b"])))
    assert [r.email for r in everyone.items] == ["bee@example.com"]
    # The filter choices of a merchant admin name no other merchant.
    assert await merchants.merchant_filter_options(db, alice) == {}
    assert set(await card_list.program_filter_options(db, alice)) == {str(people["a_program"])}


async def test_a_merchant_admins_csv_holds_only_their_rows(
    db: AsyncSession, people: dict[str, Any]
) -> None:
    await enrol(db, people["a_store_codes"][0], "mine@example.com")
    await enrol(db, people["b_store_codes"][0], "theirs@example.com")
    alice = _alice(people)
    for made in (
        await customers.export_customers(db, alice, _ask()),
        await customers.export_customers(db, alice, _ask(merchant=str(people["b"]))),
        await card_list.export_cards(db, alice, _ask()),
        await stores.export_stores(db, alice, _ask()),
    ):
        rows = _csv(made)
        body = "\n".join(",".join(r) for r in rows[1:])
        assert "theirs@example.com" not in body
        assert people["b_code"] not in body
    rows = _csv(await customers.export_customers(db, alice, _ask()))
    assert [r[0] for r in rows[1:]] == ["mine@example.com"]
    everyone = _csv(await customers.export_customers(db, ROOT, _ask()))
    assert {r[0] for r in everyone[1:]} == {"mine@example.com", "theirs@example.com"}


# --- CSV -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+33 6 12", "'+33 6 12"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("Léa", "Léa"),
        ("a=b", "a=b"),
        (-5, -5),
        (None, ""),
        (True, "yes"),
    ],
)
def test_a_csv_cell_that_looks_like_a_formula_is_written_as_text(value: Any, shown: Any) -> None:
    assert safe_cell(value) == shown


async def test_the_csv_export_holds_every_matching_row_in_the_lists_order_neutralised(
    db: AsyncSession, people: dict[str, Any]
) -> None:
    store = people["a_store_codes"][0]
    await enrol(db, store, "eve@example.com", first_name="=1+1", last_name="@cmd")
    await enrol(db, store, "zed@example.com", first_name="Zed", phone="+352 621 000")
    await enrol(db, store, "other@example.com", first_name="Olga")
    alice = _alice(people)
    made = await customers.export_customers(db, alice, _ask(search="e", sort="email"))
    rows = _csv(made)
    assert rows[0][:4] == ["email", "customer reference", "first name", "last name"]
    assert [r[0] for r in rows[1:]] == ["eve@example.com", "other@example.com", "zed@example.com"]
    eve = rows[1]
    assert (eve[2], eve[3]) == ("'=1+1", "'@cmd")
    assert rows[3][4] == "'+352 621 000"
    assert (made.rows, made.total, made.truncated) == (3, 3, False)
    assert made.content.startswith(b"\xef\xbb\xbf")  # a byte order mark for spreadsheets
    # Times on the merchant's clock (Luxembourg), with its offset.
    assert eve[9].endswith(("+01:00", "+02:00")), eve[9]


async def test_an_export_beyond_the_cap_says_how_many_rows_it_holds(
    db: AsyncSession, people: dict[str, Any]
) -> None:
    for i in range(5):
        await enrol(db, people["a_store_codes"][0], f"cap{i}@example.com")
    alice = _alice(people)
    query = customers._customer_query(alice, _ask())
    from admin_ui.queries.common import export

    made = await export(
        db,
        query,
        [Customer.id],
        ["id"],
        lambda row: [row[0].id],
        "x.csv",
        cap=3,
    )
    assert (made.rows, made.total, made.truncated) == (3, 5, True)
    assert len(_csv(made)) == 4


# --- cascades --------------------------------------------------------------------------------


async def test_delete_and_restore_count_what_they_take_along(
    db: AsyncSession, people: dict[str, Any]
) -> None:
    store = people["b_store_codes"][0]
    numbers = [await enrol(db, store, f"b{i}@example.com") for i in range(3)]
    # A card deleted on its own before stays deleted when the merchant comes back.
    alone = await db.scalar(select(LoyaltyCard.id).where(LoyaltyCard.card_number == numbers[0]))
    assert alone is not None
    await deletion.delete(db, ROOT, "card", alone)
    await db.commit()

    before = await deletion.cascade_of(db, ROOT, "merchant", people["b"])
    assert (before.stores, before.programs, before.customers, before.cards) == (1, 1, 3, 2)
    assert before.name == "Test merchant"
    hidden = await deletion.delete(db, ROOT, "merchant", people["b"])
    await db.commit()
    assert hidden == before
    assert await db.scalar(select(func.count()).select_from(Customer)) == 0

    back = await deletion.restore(db, ROOT, "merchant", people["b"])
    await db.commit()
    assert (back.stores, back.programs, back.customers, back.cards) == (1, 1, 3, 2)
    db.expire_all()
    assert await db.scalar(select(LoyaltyCard.id).where(LoyaltyCard.id == alone)) is None

    customer = await db.scalar(select(Customer.id).where(Customer.email == "b1@example.com"))
    assert customer is not None
    one = await deletion.cascade_of(db, ROOT, "customer", customer)
    assert (one.cards, one.stores) == (1, 0)
    # Only one's own: a merchant admin cannot even count another merchant's rows.
    with pytest.raises(DomainRefusal, match="does not exist"):
        await deletion.cascade_of(db, _alice(people), "merchant", people["b"])
    with pytest.raises(DomainRefusal, match="does not exist"):
        await deletion.cascade_of(db, _alice(people), "customer", customer)


# --- pages -------------------------------------------------------------------------------------


async def test_the_confirmation_counts_the_cascade_and_the_messages_say_what_went_and_came(
    user: User, people: dict[str, Any], db: AsyncSession
) -> None:
    await db.execute(update(Merchant).where(Merchant.id == people["b"]).values(name="Café Lux"))
    await db.commit()
    for i in range(2):
        await enrol(db, people["b_store_codes"][0], f"lux{i}@example.com")
    code = people["b_code"]
    await sign_in(user, PLATFORM, to="/merchants")
    await user.should_see(marker=f"merchant-menu-{code}", retries=WAIT)
    user.find(marker=f"merchant-delete-{code}").click()
    await user.should_see(marker="confirm-dialog", retries=WAIT)
    assert texts(user, "confirm-detail")[0].startswith(
        "Deleting Café Lux also hides 1 store, 1 program, 2 customers and 2 cards."
    )
    user.find(marker="confirm-yes").click()
    await user.should_see(
        f"Merchant {code} deleted. Hidden with it: 1 store, 1 program, 2 customers and 2 cards.",
        retries=WAIT,
    )
    user.find(marker="merchants-only-deleted").click()
    await user.should_see(marker=f"merchant-restore-{code}", retries=WAIT)
    user.find(marker=f"merchant-restore-{code}").click()
    await user.should_see(
        f"Merchant {code} restored. Back with it: 1 store, 1 program, 2 customers and 2 cards.",
        retries=WAIT,
    )


async def test_a_card_hidden_with_its_merchant_says_so(
    user: User, people: dict[str, Any], db: AsyncSession
) -> None:
    number = await enrol(db, people["b_store_codes"][0], "gone@example.com")
    card_id = await db.scalar(select(LoyaltyCard.id).where(LoyaltyCard.card_number == number))
    await deletion.delete(db, ROOT, "merchant", people["b"])
    await db.commit()
    await sign_in(user, PLATFORM, to=f"/cards/{card_id}")
    await user.should_see(marker="card-status", retries=WAIT)
    assert texts(user, "card-status") == ["hidden with its merchant"]
    (banner,) = texts(user, "deleted-banner")
    assert banner.startswith("This card is hidden: its merchant was deleted on ")
    assert "by root (panel)" in banner
    assert "UTC" not in banner
    await user.should_not_see(marker="card-restore")  # the merchant brings it back
    await user.should_not_see(marker="card-delete")
    # The cards list says it too, with the deleted ones shown.
    await user.open("/cards")
    await user.should_see(marker="cards-show-deleted", retries=WAIT)
    user.find(marker="cards-show-deleted").click()
    await user.should_see("hidden with its merchant", retries=WAIT)


async def test_empty_lists_say_what_to_do(
    user: User, people: dict[str, Any], db: AsyncSession
) -> None:
    await sign_in(user, ALICE, to="/customers")
    await user.should_see(marker="customers-empty", retries=WAIT)
    assert texts(user, "customers-empty") == [
        "No customers yet. Enrol the first customer with the button above."
    ]
    await enrol(db, people["a_store_codes"][0], "someone@example.com")
    user.find(marker="customers-search").type("xyz")  # no Enter: the list follows the typing
    await user.should_see(
        "No customers match “xyz”. Check the spelling or clear the search.", retries=WAIT
    )
    user.find(marker="customers-search").clear()
    await user.should_see("someone@example.com", retries=WAIT)

    await db.execute(update(Store).where(Store.merchant_id == people["a"]).values(name="x"))
    await db.commit()
    for store_id in people["a_stores"]:
        await deletion.delete(db, _alice(people), "store", store_id)
    await db.commit()
    await user.open("/stores")
    await user.should_see("No stores yet. Add the first store with the button above.", retries=WAIT)


async def test_sorting_paging_and_page_size_on_the_page(
    user: User, people: dict[str, Any], db: AsyncSession
) -> None:
    await _stores_named(db, people["a"], [f"Branch {i:02d}" for i in range(25)])
    await sign_in(user, ALICE, to="/stores")
    await user.should_see("Page 1 of 2 · 27 in all", retries=WAIT)
    await user.should_see("Shop 1")  # the stores' own order: by code, the shops first
    user.find(marker="stores-sort-name").click()
    await user.should_not_see("Shop 1", retries=WAIT)  # by name: the shops come last
    await user.should_see("Branch 00")
    user.find(marker="stores-sort-name").click()  # again: the other way round
    await user.should_not_see("Branch 00", retries=WAIT)
    await user.should_see("Shop 1")
    await user.should_see("Branch 24")
    (size,) = user.find(marker="stores-page-size").elements
    with user:
        size.value = 50  # type: ignore[attr-defined]
    await user.should_see("Page 1 of 1 · 27 in all", retries=WAIT)
    assert len(user.find(marker="stores-row").elements) == 27


# --- the store picker ----------------------------------------------------------------------------


async def test_the_enrolment_store_is_checked_against_the_merchant_worked_on(
    db: AsyncSession, people: dict[str, Any]
) -> None:
    a_store, b_store = people["a_store_codes"][0], people["b_store_codes"][0]
    assert set(await stores.store_choices(db, ROOT, people["a"])) == set(people["a_store_codes"])
    assert await stores.enrolment_store(db, ROOT, a_store, people["a"]) == people["a"]
    with pytest.raises(DomainRefusal, match="not to Test merchant: choose one of Test merchant"):
        await stores.enrolment_store(db, ROOT, b_store, people["a"])
    with pytest.raises(DomainRefusal, match="does not exist"):
        await stores.enrolment_store(db, _alice(people), b_store, None)
    with pytest.raises(DomainRefusal, match="does not exist"):
        await stores.enrolment_store(db, ROOT, "no-such-store", None)


async def test_a_platform_admin_on_a_merchants_customers_enrols_at_its_stores_only(
    user: User, people: dict[str, Any], db: AsyncSession
) -> None:
    for merchant, name in (("a", "Café Lux"), ("b", "Bäckerei Bob")):
        await db.execute(update(Merchant).where(Merchant.id == people[merchant]).values(name=name))
    await db.commit()
    await sign_in(user, PLATFORM, to=f"/customers?merchant={people['a_code']}")
    await user.should_see(marker="new-customer", retries=WAIT)
    user.find(marker="new-customer").click()
    await user.should_see(marker="enrol-submit", retries=WAIT)
    (picker,) = user.find(marker="enrol-store").elements
    assert set(picker.options) == set(people["a_store_codes"])  # type: ignore[attr-defined]
    await user.should_not_see(marker="enrol-merchant")

    # A page tampered with (or gone stale) sends merchant B's store: the server refuses it.
    forged = people["b_store_codes"][0]
    with user:
        picker.options[forged] = "forged"  # type: ignore[attr-defined]
        picker.value = forged  # type: ignore[attr-defined]
    user.find(marker="enrol-email").type("wrong.store@example.com")
    user.find(marker="enrol-submit").click()
    await user.should_see(marker="enrol-errors", retries=WAIT)
    assert texts(user, "enrol-errors") == [
        "This store belongs to Bäckerei Bob, not to Café Lux: choose one of Café Lux's stores."
    ]
    assert (
        await db.scalar(select(Customer.id).where(Customer.email == "wrong.store@example.com"))
        is None
    )

    with user:
        picker.value = people["a_store_codes"][1]  # type: ignore[attr-defined]
    user.find(marker="enrol-submit").click()
    await user.should_see(marker="adjust-submit", retries=WAIT)  # the new card's page
    merchant_id = await db.scalar(
        select(Customer.merchant_id).where(Customer.email == "wrong.store@example.com")
    )
    assert merchant_id == people["a"]


async def test_without_a_merchant_chosen_the_platform_admin_picks_it_first(
    user: User, people: dict[str, Any]
) -> None:
    await sign_in(user, PLATFORM, to="/cards")
    user.find(marker="new-card").click()
    await user.should_see(marker="enrol-merchant", retries=WAIT)
    (picker,) = user.find(marker="enrol-store").elements
    assert picker.options == {}  # type: ignore[attr-defined]
    (merchant,) = user.find(marker="enrol-merchant").elements
    with user:
        merchant.value = people["b"]  # type: ignore[attr-defined]
    await user.should_see(people["b_store_codes"][0], retries=WAIT)
    assert set(picker.options) == set(people["b_store_codes"])  # type: ignore[attr-defined]


async def test_the_csv_button_downloads_what_the_list_shows_filtered(
    user: User, people: dict[str, Any], db: AsyncSession
) -> None:
    await enrol(db, people["a_store_codes"][0], "anna@example.com", first_name="@Anna")
    await enrol(db, people["a_store_codes"][0], "ben@example.com")
    await enrol(db, people["b_store_codes"][0], "anna.b@example.com")
    await sign_in(user, ALICE, to="/customers")
    await user.should_see("ben@example.com", retries=WAIT)
    user.find(marker="customers-search").type("anna")
    await user.should_see("Page 1 of 1 · 1 in all", retries=WAIT)
    user.find(marker="customers-export").click()
    response = await user.download.next(timeout=5)
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert [(r[0], r[2]) for r in rows[1:]] == [("anna@example.com", "'@Anna")]
    await user.should_see("1 row exported.", retries=WAIT)
