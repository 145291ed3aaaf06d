"""The clinic's clinical question reaches the reader: in the case API and on the case page."""

from __future__ import annotations

from tests.factory import make_study
from tests.integration.conftest import Api
from tests.integration.dicomweb_support import route_all, store
from tests.integration.test_ecg_reading_page import session

QUESTION = "咳嗽两周，发热三天，请排除肺炎"


async def test_the_clinics_question_is_on_the_case_and_its_page(api: Api) -> None:
    uid = await store(api, "HB-XL-WD", make_study(modality="CR", count=1, patient_id="WD-Q"))
    asked = await api.client.post(
        f"/api/v1/studies/{uid}/reading-request",
        json={"urgency": "urgent", "question": QUESTION},
        headers=api.auth("xlwd.clinic"),
    )
    assert asked.status == 200, await asked.text()
    await route_all(api)
    worklist = await (
        await api.client.get("/api/v1/worklist", headers=api.auth("wang.reader"))
    ).json()
    [case] = [c for c in worklist["cases"] if c["study_instance_uid"] == uid]
    assert case["clinical_question"] == QUESTION
    assert case["question"] is None  # the escalation question is another thing
    one = await (
        await api.client.get(f"/api/v1/cases/{case['id']}", headers=api.auth("wang.reader"))
    ).json()
    assert one["clinical_question"] == QUESTION
    page = await api.client.get(f"/cases/{case['id']}", headers=await session(api, "wang.reader"))
    assert page.status == 200
    html = await page.text()
    assert 'id="clinical-question"' in html
    assert QUESTION in html
