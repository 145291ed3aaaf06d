"""The words people read for the service's named values, in zh-CN and English: one table,
keyed by enum member, that the pages, the printable report, the DICOM SR and the CSV
export all take their words from.

:func:`word` gives a member's word in one language (zh-CN unless told). Every member of
every enum in :data:`TABLES` has its word in each language (a test checks it), so a lookup
never falls back to the code.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum, StrEnum
from typing import Any, NamedTuple

from ecg.record import Sex
from ecg.render import SheetFilter
from storage.records import (
    AttachmentKind,
    CaseStatus,
    ChannelKind,
    Conclusion,
    EventKind,
    NoticeKind,
    NotificationKind,
    OrderStatus,
    OrderUrgency,
    OutboundStatus,
    Priority,
    ReferralDirection,
    ReferralDocumentKind,
    ReferralStatus,
    ReportStatus,
    ReturnKind,
    ReturnReason,
    Role,
    Specialty,
    StepStatus,
    Tier,
    TurnaroundSegment,
    Urgency,
)
from teleradiology.core.progress import StudyProgress


class Language(StrEnum):
    """A language the words are written in (BCP 47)."""

    ZH = "zh-CN"
    EN = "en"


class Words(NamedTuple):
    """A value's word in zh-CN and in English."""

    zh: str
    en: str

    def of(self, lang: Language) -> str:
        return self.zh if lang is Language.ZH else self.en


class WorklistFilter(StrEnum):
    """The worklist's filters: every open case, by status, or the reader's own."""

    ALL = "all"
    SCHEDULED = "scheduled"
    IN_PROGRESS = "in_progress"
    MINE = "mine"


class DashboardTable(StrEnum):
    """A table of the administrator's dashboard, each downloadable as CSV by this name."""

    TIER = "tier"
    FACILITY = "facility"
    SPECIALTY = "specialty"
    MODALITY = "modality"
    PRIORITY = "priority"
    READER = "reader"
    TREND = "trend"
    VOLUMES = "volumes"
    RETURNS = "returns"
    REFERRALS = "referrals"
    ESCALATIONS = "escalations"
    SECOND_READS = "second_reads"


class EcgMeasurement(StrEnum):
    """The global ECG measurements a reader sees, by their keys in an analysis' result
    (``ecg.record.MEASUREMENT_KEYS``, QTc by both formulas)."""

    HEART_RATE = "heart_rate_bpm"
    RR = "rr_ms"
    P = "p_ms"
    PR = "pr_ms"
    QRS = "qrs_ms"
    QT = "qt_ms"
    QTC_BAZETT = "qtc_bazett_ms"
    QTC_FRIDERICIA = "qtc_fridericia_ms"
    P_AXIS = "p_axis_deg"
    QRS_AXIS = "qrs_axis_deg"
    T_AXIS = "t_axis_deg"


class EcgUnit(StrEnum):
    """The units of the ECG measurements, as ``ecg.record.MEASUREMENT_KEYS`` names them."""

    BPM = "beats per minute"
    MS = "ms"
    DEGREES = "degrees"


_PRIORITY = {
    Priority.HIGH: Words("紧急", "urgent"),
    Priority.MEDIUM: Words("常规", "routine"),
    Priority.LOW: Words("低", "low"),
}
_CASE_STATUS = {
    CaseStatus.SCHEDULED: Words("待领取", "scheduled"),
    CaseStatus.IN_PROGRESS: Words("判读中", "in progress"),
    CaseStatus.COMPLETED: Words("已完成", "completed"),
    CaseStatus.CANCELED: Words("已取消", "canceled"),
}
#: As the clinic's printed report words them.
_CONCLUSION = {
    Conclusion.NORMAL: Words("未见异常", "normal"),
    Conclusion.ABNORMAL: Words("异常", "abnormal"),
    Conclusion.CRITICAL: Words("危急值", "critical"),
}
_REPORT_STATUS = {
    ReportStatus.PRELIMINARY: Words("初步报告", "preliminary"),
    ReportStatus.FINAL: Words("正式报告", "final"),
}
_RETURN_REASON = {
    ReturnReason.MOTION: Words("运动伪影", "motion"),
    ReturnReason.POSITIONING: Words("体位不正", "positioning"),
    ReturnReason.EXPOSURE: Words("曝光不当", "exposure"),
    ReturnReason.INCOMPLETE: Words("检查不完整，缺序列或导联", "incomplete"),
    ReturnReason.ARTIFACT: Words("伪影、干扰", "artifact"),
    ReturnReason.WRONG_PATIENT: Words("患者信息错误", "wrong patient"),
    ReturnReason.NOISE: Words("基线漂移、肌电干扰", "noise"),
    ReturnReason.OTHER: Words("其他", "other"),
}
_EVENT = {
    EventKind.RECEIVED: Words("接收", "received"),
    EventKind.IDENTITY_CONFLICT: Words("患者信息不一致", "identity conflict"),
    EventKind.LATE_INSTANCE: Words("补传图像", "late instance"),
    EventKind.COMPLETE: Words("接收完整", "complete"),
    EventKind.ROUTED: Words("分配", "routed"),
    EventKind.PRIORITY: Words("申请判读", "reading requested"),
    EventKind.STEMI_SUSPECTED: Words("疑似STEMI", "suspected STEMI"),
    EventKind.CLAIMED: Words("领取", "claimed"),
    EventKind.RELEASED: Words("释放", "released"),
    EventKind.LEASE_EXPIRED: Words("领取超时", "lease expired"),
    EventKind.ESCALATED: Words("上转会诊", "escalated"),
    EventKind.RETURNED: Words("退回", "returned"),
    EventKind.SECOND_READ: Words("申请复核", "second read"),
    EventKind.DEADLINE_AT_RISK: Words("即将超时", "deadline at risk"),
    EventKind.PRELIMINARY: Words("初步报告", "preliminary"),
    EventKind.FINAL: Words("正式报告", "final"),
    EventKind.ADDENDUM: Words("补充报告", "addendum"),
    EventKind.DELIVERED: Words("已送达", "delivered"),
    EventKind.ACKNOWLEDGED: Words("已确认", "acknowledged"),
    EventKind.CRITICAL_RESENT: Words("危急值重发", "critical result re-sent"),
    EventKind.CRITICAL_ALERT: Words(
        "危急值未确认，已告知管理员", "critical result: administrators alerted"
    ),
    EventKind.REFERRAL_REQUESTED: Words("申请转诊", "referral requested"),
    EventKind.REFERRAL_ACCEPTED: Words("转诊已接诊", "referral accepted"),
    EventKind.REFERRAL_DECLINED: Words("转诊被拒", "referral declined"),
    EventKind.REFERRAL_ARRIVED: Words("转诊患者已到诊", "referred patient arrived"),
    EventKind.REFERRAL_RETURNED: Words("转诊患者已转回", "referred patient returned down"),
}
#: What arrived, as a live page says it.
_NOTIFICATION = {
    NotificationKind.CASE: Words("新病例", "new case"),
    NotificationKind.ESCALATED: Words("上级会诊", "escalated case"),
    NotificationKind.RETURNED: Words("退回检查", "returned study"),
    NotificationKind.STEMI: Words("STEMI 急诊心电图", "STEMI ECG"),
    NotificationKind.LATE_INSTANCE: Words("补传图像", "late instance"),
    NotificationKind.DEADLINE_AT_RISK: Words("即将超时", "deadline at risk"),
    NotificationKind.REPORT: Words("新报告", "new report"),
    NotificationKind.CRITICAL: Words("危急值报告", "critical result"),
    NotificationKind.ADDENDUM: Words("报告补充", "addendum"),
    NotificationKind.CRITICAL_ALERT: Words("危急值未确认", "critical result not acknowledged"),
    NotificationKind.REFERRAL: Words("转诊", "referral"),
    NotificationKind.REFERRAL_ACCEPTED: Words("转诊已接收", "referral accepted"),
    NotificationKind.REFERRAL_DECLINED: Words("转诊被拒", "referral declined"),
    NotificationKind.REFERRAL_ARRIVED: Words("转诊患者已到诊", "referred patient arrived"),
    NotificationKind.REFERRAL_RETURNED: Words("转诊患者转回", "referred patient returned down"),
    NotificationKind.STUDY_PROGRESS: Words("检查进展", "study progress"),
}
_STUDY_PROGRESS = {
    StudyProgress.SENDING: Words("发送中", "sending"),
    StudyProgress.RECEIVED: Words("已接收", "received"),
    StudyProgress.COMPLETE: Words("接收完整", "complete"),
    StudyProgress.WAITING: Words("等待判读", "waiting for a reader"),
    StudyProgress.READING: Words("判读中", "in reading"),
    StudyProgress.REPORTED: Words("已报告", "reported"),
    StudyProgress.RETURNED: Words("已退回", "returned"),
}
_REFERRAL_STATUS = {
    ReferralStatus.REQUESTED: Words("待接诊", "requested"),
    ReferralStatus.ACCEPTED: Words("已接诊", "accepted"),
    ReferralStatus.DECLINED: Words("已拒绝", "declined"),
    ReferralStatus.ARRIVED: Words("已到诊", "arrived"),
    ReferralStatus.RETURNED: Words("已转回", "returned down"),
}
_RETURN_KIND = {
    ReturnKind.OUTPATIENT: Words("门诊小结", "outpatient summary"),
    ReturnKind.DISCHARGE: Words("出院小结", "discharge summary"),
}
_ATTACHMENT_KIND = {
    AttachmentKind.STUDY: Words("影像检查", "study"),
    AttachmentKind.ECG: Words("心电图", "ECG"),
    AttachmentKind.REPORT: Words("诊断报告", "report"),
}
_REFERRAL_DOCUMENT = {
    ReferralDocumentKind.FORM: Words("转诊单", "referral form"),
    ReferralDocumentKind.ANSWER: Words("接诊单", "acceptance form"),
    ReferralDocumentKind.RETURN: Words("转回单", "return form"),
}
_URGENCY = {
    Urgency.ROUTINE: Words("常规", "routine"),
    Urgency.URGENT: Words("紧急", "urgent"),
    Urgency.EMERGENCY: Words("急诊", "emergency"),
}
_DIRECTION = {
    ReferralDirection.UP: Words("上转", "up"),
    ReferralDirection.DOWN: Words("下转", "down"),
}
_SPECIALTY = {
    Specialty.RADIOLOGY: Words("影像", "radiology"),
    Specialty.ECG: Words("心电", "ECG"),
}
_TIER = {
    Tier.VILLAGE: Words("村卫生室", "village"),
    Tier.TOWNSHIP: Words("乡镇卫生院", "township"),
    Tier.COUNTY: Words("县级医院", "county"),
    Tier.CITY: Words("市级医院", "city"),
}
_ROLE = {
    Role.CLINIC: Words("基层机构", "clinic"),
    Role.READER: Words("阅片医生", "reader"),
    Role.ADMIN: Words("管理员", "administrator"),
}
_DASHBOARD_TABLE = {
    DashboardTable.TIER: Words("按送检机构级别", "by sending tier"),
    DashboardTable.FACILITY: Words("按送检机构", "by sending facility"),
    DashboardTable.SPECIALTY: Words("按专业", "by specialty"),
    DashboardTable.MODALITY: Words("按检查类型", "by modality"),
    DashboardTable.PRIORITY: Words("按优先级", "by priority"),
    DashboardTable.READER: Words("医生工作量", "workload per reader"),
    DashboardTable.TREND: Words("周转趋势", "turnaround trend"),
    DashboardTable.VOLUMES: Words("检查量", "volumes"),
    DashboardTable.RETURNS: Words("质量退回率", "returned for quality"),
    DashboardTable.REFERRALS: Words("双向转诊", "referrals up and down"),
    DashboardTable.ESCALATIONS: Words("上转上级阅片", "escalations to the city"),
    DashboardTable.SECOND_READS: Words("复核不符率", "second-read discrepancies"),
}
_SEGMENT = {
    TurnaroundSegment.RECEIVED_TO_COMPLETE: Words("接收→完整", "received→complete"),
    TurnaroundSegment.COMPLETE_TO_ROUTED: Words("完整→分配", "complete→routed"),
    TurnaroundSegment.ROUTED_TO_CLAIMED: Words("分配→领取", "routed→claimed"),
    TurnaroundSegment.CLAIMED_TO_ESCALATED: Words("领取→上转", "claimed→escalated"),
    TurnaroundSegment.CLAIMED_TO_PRELIMINARY: Words("领取→初步报告", "claimed→preliminary"),
    TurnaroundSegment.ESCALATED_TO_FINAL: Words("上转→正式报告", "escalated→final"),
    TurnaroundSegment.CLAIMED_TO_FINAL: Words("领取→正式报告", "claimed→final"),
    TurnaroundSegment.FINAL_TO_DELIVERED: Words("签发→送达", "final→delivered"),
    TurnaroundSegment.DELIVERED_TO_ACKNOWLEDGED: Words("送达→确认", "delivered→acknowledged"),
    TurnaroundSegment.RECEIVED_TO_FINAL: Words("接收→正式报告", "received→final"),
    TurnaroundSegment.RECEIVED_TO_ACKNOWLEDGED: Words("接收→确认", "received→acknowledged"),
}
_WORKLIST_FILTER = {
    WorklistFilter.ALL: Words("全部", "all"),
    WorklistFilter.SCHEDULED: Words("待领取", "scheduled"),
    WorklistFilter.IN_PROGRESS: Words("判读中", "in progress"),
    WorklistFilter.MINE: Words("我领取的", "mine"),
}
_SHEET_FILTER = {
    SheetFilter.DIAGNOSTIC: Words("诊断滤波", "diagnostic"),
    SheetFilter.MUSCLE: Words("肌电滤波", "muscle"),
    SheetFilter.NONE: Words("原始信号", "unfiltered"),
}
_MEASUREMENT = {
    EcgMeasurement.HEART_RATE: Words("心率", "heart rate"),
    EcgMeasurement.RR: Words("RR间期", "RR"),
    EcgMeasurement.P: Words("P波时限", "P"),
    EcgMeasurement.PR: Words("PR间期", "PR"),
    EcgMeasurement.QRS: Words("QRS时限", "QRS"),
    EcgMeasurement.QT: Words("QT间期", "QT"),
    EcgMeasurement.QTC_BAZETT: Words("QTc (Bazett)", "QTc (Bazett)"),
    EcgMeasurement.QTC_FRIDERICIA: Words("QTc (Fridericia)", "QTc (Fridericia)"),
    EcgMeasurement.P_AXIS: Words("P电轴", "P axis"),
    EcgMeasurement.QRS_AXIS: Words("QRS电轴", "QRS axis"),
    EcgMeasurement.T_AXIS: Words("T电轴", "T axis"),
}
_UNIT = {
    EcgUnit.BPM: Words("次/分", "bpm"),
    EcgUnit.MS: Words("ms", "ms"),
    EcgUnit.DEGREES: Words("°", "°"),
}
_SEX = {
    Sex.MALE: Words("男", "male"),
    Sex.FEMALE: Words("女", "female"),
    Sex.OTHER: Words("其他", "other"),
}
_NOTICE = {
    NoticeKind.REPORT: Words("报告已出", "report ready"),
    NoticeKind.ADDENDUM: Words("补充报告", "addendum"),
    NoticeKind.CRITICAL: Words("危急值，请立即确认", "critical result: acknowledge now"),
    NoticeKind.CRITICAL_RESEND: Words("危急值未确认，重发", "critical result not acknowledged"),
    NoticeKind.CRITICAL_ALERT: Words("危急值超时未确认", "critical result overdue"),
}
_CHANNEL = {
    ChannelKind.EMAIL: Words("电子邮件", "e-mail"),
    ChannelKind.WECHAT_WORK: Words("企业微信群机器人", "WeChat Work robot"),
    ChannelKind.DINGTALK: Words("钉钉群机器人", "DingTalk robot"),
    ChannelKind.WEBHOOK: Words("通用网络回调", "webhook"),
}
_OUTBOUND = {
    OutboundStatus.PENDING: Words("待发送", "pending"),
    OutboundStatus.SENT: Words("已发送", "sent"),
    OutboundStatus.FAILED: Words("发送失败", "failed"),
    OutboundStatus.SKIPPED: Words("已确认，未发送", "skipped"),
}
_ORDER_STATUS = {
    OrderStatus.SCHEDULED: Words("已预约", "scheduled"),
    OrderStatus.IN_PROGRESS: Words("检查中", "in progress"),
    OrderStatus.COMPLETED: Words("已完成", "completed"),
    OrderStatus.DISCONTINUED: Words("已中止", "discontinued"),
    OrderStatus.CANCELED: Words("已取消", "canceled"),
}
_ORDER_URGENCY = {
    OrderUrgency.ROUTINE: Words("常规", "routine"),
    OrderUrgency.URGENT: Words("紧急", "urgent"),
}
_STEP_STATUS = {
    StepStatus.IN_PROGRESS: Words("检查进行中", "in progress"),
    StepStatus.COMPLETED: Words("检查已完成", "completed"),
    StepStatus.DISCONTINUED: Words("检查中止", "discontinued"),
}

#: Every enum people read, with the words of each of its members.
TABLES: Mapping[type[Enum], Mapping[Any, Words]] = {
    Priority: _PRIORITY,
    CaseStatus: _CASE_STATUS,
    Conclusion: _CONCLUSION,
    ReportStatus: _REPORT_STATUS,
    ReturnReason: _RETURN_REASON,
    EventKind: _EVENT,
    NotificationKind: _NOTIFICATION,
    ReferralStatus: _REFERRAL_STATUS,
    ReturnKind: _RETURN_KIND,
    AttachmentKind: _ATTACHMENT_KIND,
    ReferralDocumentKind: _REFERRAL_DOCUMENT,
    Urgency: _URGENCY,
    ReferralDirection: _DIRECTION,
    Specialty: _SPECIALTY,
    Tier: _TIER,
    Role: _ROLE,
    DashboardTable: _DASHBOARD_TABLE,
    TurnaroundSegment: _SEGMENT,
    WorklistFilter: _WORKLIST_FILTER,
    SheetFilter: _SHEET_FILTER,
    EcgMeasurement: _MEASUREMENT,
    EcgUnit: _UNIT,
    Sex: _SEX,
    StudyProgress: _STUDY_PROGRESS,
    NoticeKind: _NOTICE,
    ChannelKind: _CHANNEL,
    OutboundStatus: _OUTBOUND,
    OrderStatus: _ORDER_STATUS,
    OrderUrgency: _ORDER_URGENCY,
    StepStatus: _STEP_STATUS,
}


def word(member: Enum, lang: Language = Language.ZH) -> str:
    """The word for ``member`` in ``lang``."""
    return TABLES[type(member)][member].of(lang)
