"""The pages' routes, and the landing page each role arrives on."""

from __future__ import annotations

from collections.abc import Iterable

from aiohttp import web

from storage.records import (
    Role,
)
from teleradiology.http import sse as events
from teleradiology.http.api import accounts as accounts_api
from teleradiology.http.api import admin as admin_api
from teleradiology.http.api import audit as audit_api
from teleradiology.http.api import cases as api
from teleradiology.http.api import casework
from teleradiology.http.api import console as console_api
from teleradiology.http.api import dashboard as dashboard_api
from teleradiology.http.api import ecg as ecg_api
from teleradiology.http.api import identity as identity_api
from teleradiology.http.api import notices as notices_api
from teleradiology.http.api import operations as operations_api
from teleradiology.http.api import orders as orders_api
from teleradiology.http.api import patients as patients_api
from teleradiology.http.api import referrals as referrals_api
from teleradiology.http.api import rosters as rosters_api
from teleradiology.http.web import (
    accounts,
    console,
    identity_pages,
    orders_page,
    referral_pages,
    routing_admin,
)
from teleradiology.http.web import operations_pages as operations_web
from teleradiology.http.web.admin import admin_page
from teleradiology.http.web.audit_page import audit_page
from teleradiology.http.web.case import case_page
from teleradiology.http.web.common import PageHandler, page, page_action, signed_in
from teleradiology.http.web.ecg_case import ecg_case_page
from teleradiology.http.web.inbox import inbox_page
from teleradiology.http.web.signin import choose_language, login_page, login_submit, logout
from teleradiology.http.web.worklist import worklist_page


async def landing(request: web.Request) -> web.StreamResponse:
    user = await signed_in(request)
    if user.role is Role.CLINIC:
        return await inbox_page(request, user)
    return await worklist_page(request, user)


def _all(handlers: Iterable[tuple[str, str, PageHandler]], app: web.Application) -> None:
    for method, path, handler in handlers:
        app.router.add_route(method, path, handler)


def add_routes(app: web.Application) -> None:
    case = "/cases/{id:\\d+}"
    referral = "/referrals/{id:\\d+}"
    _all(
        [
            ("GET", "/", landing),
            ("GET", "/login", login_page),
            ("POST", "/login", login_submit),
            ("POST", "/logout", logout),
            ("POST", "/language", choose_language),
            # the pages' live updates: the signed-in user's notifications, as /api/v1/events
            ("GET", "/events", page_action(events.stream)),
            # the reader's radiology case
            ("GET", case, page(case_page)),
            ("POST", "/worklist/next", page_action(casework.claim_next)),
            ("POST", case + "/claim", page_action(api.claim)),
            ("POST", case + "/release", page_action(api.release)),
            ("POST", case + "/report", page_action(api.report)),
            ("POST", case + "/escalate", page_action(casework.escalate)),
            ("POST", case + "/return", page_action(casework.return_to_clinic)),
            ("POST", case + "/second-read", page_action(casework.second_read)),
            # reports: the clinic's acknowledgement and PDF, the reader's addendum
            ("GET", "/reports/{id:\\d+}/pdf", page_action(casework.report_pdf)),
            ("POST", "/reports/{id:\\d+}/acknowledge", page_action(api.acknowledge)),
            ("POST", "/reports/{id:\\d+}/addendum", page_action(casework.addendum)),
            # the clinic's exam orders (the modality's worklist)
            ("GET", "/orders", page(orders_page.orders_page)),
            ("POST", "/orders", page_action(orders_api.create)),
            ("PATCH", "/orders/{id:\\d+}", page_action(orders_api.change)),
            # two-way referral: the list, the clinic's form, a referral and its steps
            ("GET", "/referrals", page(referral_pages.referrals_page)),
            ("GET", "/referrals/new", page(referral_pages.new_referral_page)),
            ("POST", "/referrals", page_action(referrals_api.create)),
            ("GET", referral, page(referral_pages.referral_page)),
            ("POST", referral + "/respond", page_action(referrals_api.respond)),
            ("POST", referral + "/arrive", page_action(referrals_api.arrive)),
            ("POST", referral + "/return", page_action(referrals_api.return_down)),
            ("GET", referral + "/documents/{kind}", page_action(referrals_api.document)),
            # an ECG's sheet outside a case (one attached to a referral, in the user's scope)
            ("GET", "/ecg/{sop}/sheet.{kind:png|pdf}", page_action(ecg_api.sheet)),
            *_admin_routes(),
            ("GET", "/password", accounts.password_page),
            # each user's own account: their password and their tokens
            ("GET", "/account", page(accounts.account_page)),
            ("POST", "/account/password", page_action(accounts_api.change_password)),
            ("PUT", "/account/language", page_action(accounts_api.set_language)),
            ("POST", "/account/tokens/{id:\\d+}/revoke", page_action(accounts_api.revoke_token)),
            ("POST", "/account/notification-channels", page_action(notices_api.add_own_email)),
            (
                "POST",
                "/account/notification-channels/{id:\\d+}/remove",
                page_action(notices_api.remove_own),
            ),
            # the ECG reading page
            ("GET", "/ecg/cases/{id:\\d+}", page(ecg_case_page)),
            (
                "GET",
                "/ecg/cases/{id:\\d+}/sheets/{sop}.{kind:png|pdf}",
                page_action(ecg_api.sheet),
            ),
            ("PATCH", "/ecg/cases/{id:\\d+}/ecg/{sop}", page_action(ecg_api.edit_ecg)),
            ("POST", "/ecg/cases/{id:\\d+}/claim", page_action(api.claim)),
            ("POST", "/ecg/cases/{id:\\d+}/report", page_action(api.report)),
        ],
        app,
    )


def _admin_routes() -> list[tuple[str, str, PageHandler]]:
    """The administrator's pages: the dashboard, the audit, accounts and the console."""
    return [
        # the administrator's dashboard
        ("GET", "/admin", page(admin_page)),
        ("GET", "/admin/turnaround.csv", page_action(api.turnaround_csv)),
        ("GET", "/admin/dashboard/{table}.csv", page_action(dashboard_api.dashboard_csv)),
        ("GET", "/admin/audit", page(audit_page)),
        ("GET", "/admin/audit/export", page_action(audit_api.export)),
        (
            "POST",
            "/admin/deliveries/failed/{kind}/{id:\\d+}/retry",
            page_action(admin_api.retry_failed_delivery),
        ),
        *routing_pages(),
        *identity_routes(),
        # the administrator's accounts page, and the page of a one-time password link
        ("GET", "/admin/accounts", page(accounts.accounts_page)),
        ("POST", "/admin/users/{username}/deactivate", page_action(accounts.deactivate)),
        ("POST", "/admin/users/{username}/activate", page_action(accounts.activate)),
        (
            "POST",
            "/admin/users/{username}/password-reset",
            page_action(accounts_api.reset_password),
        ),
        ("POST", "/admin/users/{username}/unlock", page_action(accounts_api.unlock)),
        ("POST", "/admin/tokens/{id:\\d+}/revoke", page_action(accounts_api.revoke_token)),
        # the administrator's console: facilities, users, DICOM nodes
        ("GET", "/admin/facilities", page(console.facilities_page)),
        ("POST", "/admin/facilities", page_action(console_api.create_facility)),
        ("PATCH", "/admin/facilities/{code}", page_action(console_api.change_facility)),
        (
            "PUT",
            "/admin/facilities/{code}/report-destination",
            page_action(admin_api.put_destination),
        ),
        ("GET", "/admin/users", page(console.users_page)),
        ("POST", "/admin/users", page_action(accounts_api.create_user)),
        ("GET", "/admin/users/{username}", page(console.user_page)),
        ("PATCH", "/admin/users/{username}", page_action(accounts_api.change_user)),
        ("GET", "/admin/dicom-nodes", page(console.dicom_nodes_page)),
        ("POST", "/admin/dicom-nodes", page_action(console_api.create_node)),
        ("PATCH", "/admin/dicom-nodes/{id:\\d+}", page_action(console_api.change_node)),
        ("DELETE", "/admin/dicom-nodes/{id:\\d+}", page_action(console_api.delete_node)),
        *operations_pages(),
    ]


def operations_pages() -> list[tuple[str, str, PageHandler]]:
    """The operations page and its retry, the report templates, the notification channels."""
    return [
        ("GET", "/admin/operations", page(operations_web.operations_page)),
        ("POST", "/admin/jobs/{id:\\d+}/retry", page_action(operations_api.retry_job)),
        ("GET", "/admin/templates", page(operations_web.templates_page)),
        ("POST", "/admin/templates", page_action(operations_api.create_network_template)),
        (
            "PATCH",
            "/admin/templates/{id:\\d+}",
            page_action(operations_api.change_network_template),
        ),
        ("GET", "/admin/notification-channels", page(operations_web.channels_page)),
        ("POST", "/admin/notification-channels", page_action(notices_api.add_channel)),
        (
            "PATCH",
            "/admin/notification-channels/{id:\\d+}",
            page_action(notices_api.change_channel),
        ),
        (
            "POST",
            "/admin/notification-channels/{id:\\d+}/test",
            page_action(operations_api.test_channel),
        ),
    ]


def identity_routes() -> list[tuple[str, str, PageHandler]]:
    """The console's patient identity: candidate duplicates, the merge screen (merging and
    unmerging through the patient index's own handlers), identity conflicts at ingest."""
    return [
        ("GET", "/admin/patients/duplicates", page(identity_pages.duplicates_page)),
        ("POST", "/admin/patients/duplicates/dismiss", page_action(identity_api.dismiss)),
        (
            "DELETE",
            "/admin/patients/dismissals/{a:\\d+}/{b:\\d+}",
            page_action(identity_api.undismiss),
        ),
        ("GET", "/admin/patients/merge", page(identity_pages.merge_page)),
        ("POST", "/admin/patients/merge", page_action(patients_api.merge)),
        ("POST", "/admin/patients/{id:\\d+}/unmerge", page_action(patients_api.unmerge)),
        ("GET", "/admin/identity-conflicts", page(identity_pages.conflicts_page)),
        (
            "POST",
            "/admin/identity-conflicts/{id:\\d+}/resolve",
            page_action(identity_api.resolve),
        ),
    ]


def routing_pages() -> list[tuple[str, str, PageHandler]]:
    """The administrator's routing: pools, rules and the preview, each pool's roster."""
    return [
        ("GET", "/admin/routing", page(routing_admin.routing_page)),
        ("POST", "/admin/routing/pools", page_action(rosters_api.create_pool)),
        ("POST", "/admin/routing/pools/{code}", page_action(rosters_api.update_pool)),
        ("GET", "/admin/routing/pools/{code}/roster", page(routing_admin.roster_page)),
        (
            "POST",
            "/admin/routing/facilities/{code}/routes",
            page_action(rosters_api.add_route),
        ),
        (
            "POST",
            "/admin/routing/facilities/{code}/policy",
            page_action(routing_admin.policy_submit),
        ),
        ("POST", "/admin/routing/users/{username}/shifts", page_action(rosters_api.add_shift)),
        (
            "POST",
            "/admin/routing/users/{username}/duty-exceptions",
            page_action(rosters_api.add_exception),
        ),
        (
            "POST",
            "/admin/routing/duty-exceptions/{id:\\d+}/delete",
            page_action(rosters_api.delete_exception),
        ),
    ]
