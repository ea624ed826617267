"""What a return takes back, worked out by hand: which lines the goods come off, what was paid
for what is kept, and the points that still stand. Pure functions on a sale's own figures (the
sale and its lines are built in memory; no database)."""

from __future__ import annotations

import pytest

from loyalty.errors import InvalidInput
from loyalty.rules.pricing import points_kept_after_returns
from loyalty.sales.models import Sale, SaleLine
from loyalty.sales.services import mark_returned, paid_still_kept


def _sale(*lines: tuple[str, int, int, int]) -> Sale:
    """(sku, quantity, unit price, this line's share of the basket discount)"""
    return Sale(
        lines=[
            SaleLine(
                line_no=number,
                sku=sku,
                quantity=quantity,
                unit_price=price,
                amount=quantity * price,
                discount=discount,
                returned_quantity=0,
            )
            for number, (sku, quantity, price, discount) in enumerate(lines, start=1)
        ]
    )


def test_what_was_paid_for_the_goods_kept_is_rounded_down_per_line():
    # 3 x 10.00 with 5.00 of points off the line: 25.00 paid, 8.333… a unit
    sale = _sale(("WINE", 3, 1000, 500), ("BREAD", 1, 250, 0))
    assert paid_still_kept(sale) == 2500 + 250

    mark_returned(sale, [("WINE", 1)])

    assert paid_still_kept(sale) == 2500 * 2 // 3 + 250 == 1916
    mark_returned(sale, [("WINE", 2), ("BREAD", 1)])
    assert paid_still_kept(sale) == 0


def test_a_sku_on_two_lines_comes_off_the_first_line_first():
    sale = _sale(("MILK", 2, 100, 0), ("MILK", 3, 90, 0))

    mark_returned(sale, [("MILK", 3)])

    assert [line.returned_quantity for line in sale.lines] == [2, 1]
    assert paid_still_kept(sale) == 2 * 90


def test_returning_more_than_was_sold_is_refused_and_says_how_many_are_left():
    sale = _sale(("SOAP", 2, 199, 0))
    mark_returned(sale, [("SOAP", 1)])

    with pytest.raises(InvalidInput) as refused:
        mark_returned(sale, [("SOAP", 2)])

    assert refused.value.field == "lines"
    assert "cannot return 2 of sku 'SOAP': 2 sold, 1 returned already" in refused.value.detail


def test_a_sku_that_is_not_in_the_sale_is_refused():
    with pytest.raises(InvalidInput, match="sku 'TEA' is not in this sale"):
        mark_returned(_sale(("SOAP", 2, 199, 0)), [("TEA", 1)])


def test_points_kept_follow_what_is_still_paid_for_rounded_down():
    # 53 points earned on 17.78 paid; the member keeps 11.85 of goods
    assert points_kept_after_returns(53, 1778, 1185) == 53 * 1185 // 1778 == 35
    assert points_kept_after_returns(53, 1778, 1778) == 53
    assert points_kept_after_returns(53, 1778, 0) == 0
    assert points_kept_after_returns(10, 0, 0) == 0, "a sale paid in full by points kept nothing"


def test_returns_one_unit_at_a_time_keep_the_points_worked_out_by_hand():
    # paid: coffee 8.99 - 0.90 = 8.09, apples 1.80 - 0.18 = 1.62, soap 1.99 - 0.20 = 1.79
    sale = _sale(("COFFEE", 1, 899, 90), ("APPLES", 3, 60, 18), ("SOAP", 1, 199, 20))
    paid = paid_still_kept(sale)
    assert paid == 1150
    earned = 11  # 1 point per 1.00 of 11.50
    kept = []
    for sku in ("APPLES", "APPLES", "COFFEE", "APPLES", "SOAP"):
        mark_returned(sale, [(sku, 1)])
        kept.append(
            (paid_still_kept(sale), points_kept_after_returns(earned, paid, paid_still_kept(sale)))
        )
    # apples kept 1.08, then 0.54; 11 x kept / 11.50, rounded down
    assert kept == [(1096, 10), (1042, 9), (233, 2), (179, 1), (0, 0)]
