"""Running the network under /api/v1/admin: the operations page's listings (refused
instances, studies returned for quality, failed jobs and their retry, health), the
network's report templates, and a notification channel's test message. Each administrator
sees and changes their own network only; every change is audited."""

from __future__ import annotations

from aiohttp import web

from storage.templates import TemplateText
from teleradiology.http.api.endpoints import Routes, reply
from teleradiology.http.api.models.operations import (
    FailedJobOut,
    FailedJobsOut,
    HealthOut,
    JobRetriedOut,
    NetworkTemplateOut,
    NetworkTemplatesOut,
    NewTemplateIn,
    RejectionOut,
    RejectionsOut,
    RejectionsQuery,
    ReturnedListOut,
    ReturnedOut,
    TemplateChangeIn,
    TrialOut,
)
from teleradiology.http.context import (
    NOTICE_CARRIER,
    OBJECTS,
    POOL,
    SETTINGS,
    current_user,
    user_zone,
)
from teleradiology.http.models import PageQuery, RecordPath
from teleradiology.http.params import body_of, path_id, query_of
from teleradiology.services import channels, operations, report_templates
from teleradiology.services.report_templates import TemplateChange

routes = Routes(tag="admin")


@routes.get(
    "/api/v1/admin/operations/rejections",
    query=RejectionsQuery,
    answer=RejectionsOut,
    summary="Instances the service refused in your network, with the reason, the calling AE "
    "and the SOP class (no patient names), newest first; by facility and day",
)
async def list_rejections(request: web.Request) -> web.Response:
    user = current_user(request)
    asked = query_of(request, RejectionsQuery)
    found = await operations.rejections(
        request.app[POOL],
        user,
        facility=asked.facility,
        day=asked.day,
        zone=await user_zone(request, user),
        limit=asked.limit,
        offset=asked.offset,
    )
    return reply(
        RejectionsOut(
            total=found.total,
            limit=asked.limit,
            offset=asked.offset,
            rejections=[RejectionOut.of(r) for r in found.rows],
        )
    )


@routes.get(
    "/api/v1/admin/operations/returned",
    query=PageQuery,
    answer=ReturnedListOut,
    summary="Studies readers returned to their clinic for quality, with the reason and "
    "whether the clinic sent them again, newest first",
)
async def list_returned(request: web.Request) -> web.Response:
    asked = query_of(request, PageQuery)
    found = await operations.returned_cases(
        request.app[POOL], current_user(request), limit=asked.limit, offset=asked.offset
    )
    return reply(
        ReturnedListOut(
            total=found.total,
            limit=asked.limit,
            offset=asked.offset,
            returned=[ReturnedOut.of(r) for r in found.rows],
        )
    )


@routes.get(
    "/api/v1/admin/jobs/failed",
    answer=FailedJobsOut,
    summary="Jobs held as failed after their last attempt (report deliveries, notification "
    "messages) of your network, with the last error",
)
async def list_failed_jobs(request: web.Request) -> web.Response:
    found = await operations.failed_jobs(request.app[POOL], current_user(request))
    return reply(FailedJobsOut(jobs=[FailedJobOut.of(j) for j in found]))


@routes.post(
    "/api/v1/admin/jobs/{id}/retry",
    path=RecordPath,
    answer=JobRetriedOut,
    summary="Queue a failed job again from its first attempt (404 if it is not failed, or not "
    "in your network); audited",
)
async def retry_job(request: web.Request) -> web.Response:
    job = await operations.retry_job(request.app[POOL], current_user(request), path_id(request))
    return reply(JobRetriedOut(id=job.id, kind=job.entrypoint, retried=True))


@routes.get(
    "/api/v1/admin/operations/health",
    answer=HealthOut,
    summary="The job queue per kind, the database's and the object store's answers and "
    "latency, disk and sizes, each judged green, amber or red with its thresholds",
)
async def health(request: web.Request) -> web.Response:
    found = await operations.health(
        request.app[POOL],
        request.app[OBJECTS],
        request.app[SETTINGS].data_dir,
        current_user(request),
    )
    return reply(HealthOut.of(found))


@routes.get(
    "/api/v1/admin/templates",
    answer=NetworkTemplatesOut,
    summary="The report templates of your network as its readers see them (the network's "
    "own and the shared ones), with those set aside",
)
async def list_network_templates(request: web.Request) -> web.Response:
    user = current_user(request)
    pool = request.app[POOL]
    found = await report_templates.network_templates(pool, user)
    return reply(
        NetworkTemplatesOut(
            may_change=await report_templates.may_change(pool, user),
            templates=[NetworkTemplateOut.of(t) for t in found],
        )
    )


@routes.post(
    "/api/v1/admin/templates",
    body=NewTemplateIn,
    answer=NetworkTemplateOut,
    status=201,
    summary="Add a report template of your network's own (an administrator of its top "
    "facility); its readers are offered it at once; audited",
)
async def create_network_template(request: web.Request) -> web.Response:
    body = await body_of(request, NewTemplateIn)
    made = await report_templates.create_template(
        request.app[POOL],
        current_user(request),
        TemplateText(
            specialty=body.specialty,
            modality=body.modality,
            name=body.name,
            language=body.language,
            findings=body.findings,
            impression=body.impression,
        ),
    )
    return reply(NetworkTemplateOut.of(made), status=201)


@routes.patch(
    "/api/v1/admin/templates/{id}",
    path=RecordPath,
    body=TemplateChangeIn,
    answer=NetworkTemplateOut,
    summary='Change a template for your network, or set it aside ({"active": false}) or '
    "take it back (a shared one: as the network's copy, its name kept); audited",
)
async def change_network_template(request: web.Request) -> web.Response:
    body = await body_of(request, TemplateChangeIn)
    change = TemplateChange(
        name=body.name,
        modality=body.modality,
        findings=body.findings,
        impression=body.impression,
        active=body.active,
        modality_given="modality" in body.model_fields_set,
    )
    changed = await report_templates.change_template(
        request.app[POOL], current_user(request), path_id(request), change
    )
    return reply(NetworkTemplateOut.of(changed))


@routes.post(
    "/api/v1/admin/notification-channels/{id}/test",
    path=RecordPath,
    answer=TrialOut,
    summary="Send a test message on a channel now (no patient or report in it) and answer "
    "how its receiver took it; audited",
)
async def test_channel(request: web.Request) -> web.Response:
    channel_id = path_id(request)
    settings = request.app[SETTINGS]
    link = (settings.public_base_url or str(request.url.origin())).rstrip("/") + "/"
    answer = await channels.send_trial(
        request.app[POOL],
        current_user(request),
        channel_id,
        carrier=request.app[NOTICE_CARRIER],
        link=link,
    )
    said = "已送达 (delivered)" if answer.ok else "未送达 (not delivered)"
    return reply(
        TrialOut(
            id=channel_id,
            ok=answer.ok,
            code=answer.code,
            answer=answer.text[:500],
            show=f"测试消息{said}: {answer.code} {answer.text[:200]}".strip(),
        )
    )


def add_routes(app: web.Application) -> None:
    routes.add_to(app)
