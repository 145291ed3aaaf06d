"""The administrator's page shows the busiest rows of a long table, in the table's order."""

from __future__ import annotations

from teleradiology.http.web.admin import PAGE_ROWS, _busiest


def test_a_short_table_is_shown_whole() -> None:
    rows = [{"code": f"F{i}", "n": i} for i in range(PAGE_ROWS)]
    shown, total = _busiest(rows, lambda r: r["n"])
    assert shown == rows
    assert total == PAGE_ROWS


def test_a_long_table_keeps_its_busiest_rows_in_its_own_order() -> None:
    rows = [{"code": f"F{i:03}", "n": (i * 37) % 101} for i in range(101)]
    shown, total = _busiest(rows, lambda r: r["n"], limit=10)
    assert total == 101
    assert len(shown) == 10
    assert sorted(r["n"] for r in shown) == list(range(91, 101))  # the ten largest
    assert [r["code"] for r in shown] == sorted(r["code"] for r in shown)  # order kept
