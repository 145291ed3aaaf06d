"""The dashboard's per-facility tables on /admin show their busiest rows only, and say so;
the API and the CSV keep every facility."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from storage import network
from teleradiology.http.web.dashboard_page import PAGE_ROWS
from tests.dashboard_data import load_cases, make_network, random_cases
from tests.integration.conftest import Api


def _rows(html: str, section: str) -> list[str]:
    """The data-key of each row of one dashboard table of the page."""
    part = html.split(f'id="{section}"', 1)[1].split("</section>", 1)[0]
    return re.findall(r'<tr data-key="([^"]*)"', part)


async def test_the_page_shows_the_busiest_facilities_and_the_api_all_of_them(api: Api) -> None:
    net = await make_network(api.pool, prefix="PR", counties=3, townships=12, villages=1)
    assert len(net.clinics) > PAGE_ROWS
    await load_cases(api.pool, random_cases(net, 900, end=datetime.now(UTC), days=20, seed=7))

    admin = await network.user_by_username(api.pool, net.admin)
    assert admin is not None
    token = await network.create_token(
        api.pool, admin.id, expires_at=datetime.now(UTC) + timedelta(hours=1)
    )
    bearer = {"Authorization": f"Bearer {token}"}
    cookie = {"Cookie": f"telemed_session={token}"}
    body = await (await api.client.get("/api/v1/admin/dashboard", headers=bearer)).json()
    every = {r["key"]: r["cases"] for r in body["facility"]}
    received = {r["facility"]: r["cases"] for r in body["returns"]}
    assert len(every) > PAGE_ROWS
    assert len(received) > PAGE_ROWS

    page = await api.client.get("/admin", headers=cookie)
    assert page.status == 200
    html = await page.text()
    shown = _rows(html, "dash-facility")
    assert len(shown) == PAGE_ROWS
    # the busiest: no facility left out has more cases than one shown
    assert min(every[k] for k in shown) >= max(v for k, v in every.items() if k not in shown)
    assert f"显示病例最多的 {PAGE_ROWS} 个机构，共 {len(every)} 个" in html
    returns = _rows(html, "dash-returns")
    assert len(returns) == PAGE_ROWS
    left = [v for k, v in received.items() if k not in returns]
    assert min(received[k] for k in returns) >= max(left)
    assert f"显示病例最多的 {PAGE_ROWS} 个机构，共 {len(received)} 个" in html

    csv = await api.client.get("/admin/dashboard/facility.csv", headers=cookie)
    assert csv.status == 200
    assert len((await csv.text()).strip().splitlines()) == len(every) + 1
