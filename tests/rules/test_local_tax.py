"""Local sales taxes where a state has none statewide: the rules pack says where a sale can owe tax.

Source: Alaska has no statewide sales tax, but the member cities and boroughs of the Alaska Remote Seller
Sales Tax Commission levy local sales tax that remote sellers collect (https://arsstc.org/business-sellers/).
Delaware, Montana, New Hampshire and Oregon have neither (state-rules.csv, has_sales_tax = no).
"""

from __future__ import annotations

import pytest

from ecms_desktop.rules import load_rules_pack

PACK = load_rules_pack()


@pytest.mark.parametrize(("state", "taxes_sales", "why"), [
    ("AK", True, "ARSSTC member cities and boroughs levy local sales tax (arsstc.org/business-sellers)"),
    ("OR", False, "no general sales tax, no local sales tax (state-rules.csv)"),
    ("DE", False, "no sales tax (state-rules.csv)"),
    ("MT", False, "no general sales tax (state-rules.csv)"),
    ("NH", False, "no general sales tax (state-rules.csv)"),
    ("TX", True, "statewide sales tax"),
])
def test_where_a_sale_can_owe_sales_tax(state: str, taxes_sales: bool, why: str) -> None:
    st = PACK.state(state)
    assert st.taxes_sales is taxes_sales, why
    if state == "AK":
        assert st.has_sales_tax is False and st.local_tax is not None and "ARSSTC" in st.local_tax.text
