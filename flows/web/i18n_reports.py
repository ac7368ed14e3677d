"""The manager pages' words: report headings, columns, summary, charts, periods, reasons."""

from __future__ import annotations

_COLUMNS = {
    # column: (zh, en)
    "account": ("账号", "Account"),
    "account_id": ("账号编号", "Account id"),
    "action": ("动作", "Action"),
    "active": ("活跃", "Active"),
    "active_14": ("14 天活跃", "Active d14"),
    "active_14_rate": ("14 天活跃率", "Active d14 rate"),
    "active_30": ("30 天活跃", "Active d30"),
    "active_30_rate": ("30 天活跃率", "Active d30 rate"),
    "arrived": ("到达", "Arrived"),
    "assigned": ("被分配", "Assigned"),
    "awaiting_confirmation": ("待确认", "Awaiting confirmation"),
    "campaign": ("跟进活动", "Campaign"),
    "cap": ("上限", "Cap"),
    "channel": ("渠道", "Channel"),
    "claimed": ("已领取", "Claimed"),
    "claims": ("认领", "Claims"),
    "community_id": ("群编号", "Group id"),
    "contact_id": ("联系人编号", "Contact id"),
    "contacts": ("人数", "Contacts"),
    "contributors": ("贡献人数", "Contributors"),
    "count": ("次数", "Count"),
    "day": ("日期", "Day"),
    "deferred": ("顺延", "Deferred"),
    "failed": ("失败", "Failed"),
    "from": ("从", "From"),
    "headroom": ("剩余", "Headroom"),
    "holding": ("持有中", "Holding"),
    "joined": ("入群", "Joined"),
    "key": ("编号", "Key"),
    "kind": ("来源类型", "Source kind"),
    "label": ("名称", "Name"),
    "lost": ("流失", "Lost"),
    "matured_14": ("满 14 天", "Reached d14"),
    "matured_30": ("满 30 天", "Reached d30"),
    "median_hours": ("中位小时数", "Median hours"),
    "messages": ("发言", "Messages"),
    "n": ("人数", "Contacts"),
    "name": ("名称", "Name"),
    "new_contacts": ("新联系人", "New contacts"),
    "no_consent": ("未同意", "No consent"),
    "open": ("普通", "Open"),
    "opted_out": ("已退订", "Opted out"),
    "paid": ("付费", "Paid"),
    "paid_rate": ("付费率（占到达）", "Paid / arrived"),
    "planned": ("计划", "Planned"),
    "platform": ("平台", "Platform"),
    "present_14": ("14 天在群", "Present d14"),
    "present_14_rate": ("14 天留存率", "Present d14 rate"),
    "present_30": ("30 天在群", "Present d30"),
    "present_30_rate": ("30 天留存率", "Present d30 rate"),
    "prospect": ("意向", "Prospect"),
    "rate": ("占上一阶段", "Of previous stage"),
    "rate_active": ("普通→活跃", "Active / open"),
    "rate_open": ("到达→普通", "Open / arrived"),
    "rate_paid": ("意向→付费", "Paid / prospect"),
    "rate_prospect": ("活跃→意向", "Prospect / active"),
    "referrals": ("推荐", "Referrals"),
    "sent": ("已发送", "Sent"),
    "shares": ("分享", "Shares"),
    "skipped": ("跳过", "Skipped"),
    "sla_breaches": ("超时次数", "SLA breaches"),
    "stage": ("阶段", "Stage"),
    "step": ("阶段", "Step"),
    "to": ("到", "To"),
    "total": ("合计", "Total"),
    "touches": ("接触次数", "Touches"),
    "used": ("已用", "Used"),
    "user_id": ("用户编号", "User id"),
    "username": ("销售", "Salesperson"),
    "uv": ("独立联系人", "Unique contacts"),
    "week": ("周", "Week"),
    "win_rate": ("成交率", "Win rate"),
    "won": ("成交", "Won"),
}

_TABLES = {
    "arrivals_by_kind": ("按来源类型的到达", "Arrivals by source kind"),
    "arrivals_by_source": ("按来源的到达", "Arrivals by source"),
    "arrivals_by_day": ("每日到达", "Arrivals by day"),
    "contribution_by_source": ("按来源的群内贡献", "Contribution by source"),
    "contribution_by_group": ("按群的贡献", "Contribution by group"),
    "top_contributors": ("贡献最多的联系人", "Top contributors"),
    "funnel": ("新联系人漏斗", "Funnel of new contacts"),
    "conversion_by_source": ("按来源的转化", "Conversion by source"),
    "conversion_by_week": ("按周的转化", "Conversion by week"),
    "tier_moves": ("等级变化", "Tier moves"),
    "tier_step_hours": ("各阶段用时（小时）", "Hours per tier step"),
    "retention": ("按入群周的留存", "Retention by join week"),
    "retention_by_source": ("按来源的留存", "Retention by source"),
    "sales": ("销售跟进", "Sales"),
    "followups": ("跟进消息", "Follow-ups"),
    "cap_headroom": ("账号额度剩余", "Account cap headroom"),
}

_WORDS = {
    # stages, actions, platforms
    "stage.arrived": ("到达", "Arrived"),
    "action.friend_add": ("加好友", "Add friend"),
    "action.group_join": ("进群", "Join group"),
    "action.group_invite": ("邀请进群", "Invite to group"),
    "action.message": ("发消息", "Message"),
    "platform.wechat": ("微信", "WeChat"),
    "platform.wecom": ("企业微信", "WeCom"),
    "platform.douyin": ("抖音", "Douyin"),
    "platform.xhs": ("小红书", "Xiaohongshu"),
    "platform.email": ("邮件", "Email"),
    "platform.webhook": ("网络回调", "Webhook"),
    # the period picker
    "period": ("时间段", "Period"),
    "period.today": ("今天", "Today"),
    "period.7d": ("最近 7 天", "Last 7 days"),
    "period.30d": ("最近 30 天", "Last 30 days"),
    "period.custom": ("自定义", "Custom range"),
    "period.named": ("特殊时段", "Special periods"),
    "period_from": ("从", "From"),
    "period_to": ("到（含）", "To (inclusive)"),
    "by.source": ("来源", "Source"),
    "by.kind": ("来源类型", "Source kind"),
    "by.promoter": ("推广员", "Promoter"),
    "by.post": ("帖子", "Post"),
    "by.group": ("群", "Group"),
    "by.location": ("地点", "Location"),
    "by.campaign": ("跟进活动", "Campaign"),
    "download_csv": ("下载 CSV", "Download CSV"),
    "summary": ("概览", "Summary"),
    "no_data": ("这段时间没有数据", "No data for this period"),
    # the summary, one line each
    "sum.title": (
        "漏斗报告 {label}（{timezone}），按{by}",
        "Funnel report {label} ({timezone}), by {by}",
    ),
    "sum.arrivals": (
        "到达：{touches} 次接触，{uv} 个独立联系人，其中新联系人 {new}",
        "Arrivals: {touches} touches, {uv} unique contacts, {new} new",
    ),
    "sum.contribution": (
        "群内贡献：{contributors} 人发言 {messages} 条、分享 {shares} 次、推荐 {referrals} 人",
        "Contribution from {contributors} contacts: messages {messages}, shares {shares},"
        " referrals {referrals}",
    ),
    "sum.funnel": (
        "新联系人漏斗：{steps}（付费率 {paid_rate}）",
        "New contacts: {steps} (paid rate {paid_rate})",
    ),
    "sum.sales": (
        "销售：公海 {pool}，持有 {holding}，认领 {claims}，成交 {won}，流失 {lost}，"
        "成交率 {win_rate}，超时 {sla_breaches} 次",
        "Sales: pool {pool}, holding {holding}, claims {claims}, won {won}, lost {lost},"
        " win rate {win_rate}, SLA breaches {sla_breaches}",
    ),
    "sum.followups": (
        "跟进消息：应发 {total}，已发 {sent}，顺延 {deferred}，失败 {failed}，跳过 {skipped}"
        "（其中退订 {opted_out}）",
        "Follow-ups: {total} due, {sent} sent, {deferred} deferred, {failed} failed,"
        " {skipped} skipped ({opted_out} opted out)",
    ),
    # charts
    "chart.funnel": (
        "新联系人漏斗，{first} 至 {last}",
        "Funnel of new contacts, {first} to {last}",
    ),
    "chart.retention": ("按入群周的留存（占入群人数的 %）", "Retention by join week (% of joined)"),
    "chart.arrivals": ("每日独立联系人，按来源类型", "Unique contacts by day and source kind"),
    "chart.contacts": ("人数", "Contacts"),
    "chart.percent": ("%", "%"),
    "chart.present_14": ("14 天在群", "Present d14"),
    "chart.active_14": ("14 天活跃", "Active d14"),
    "chart.present_30": ("30 天在群", "Present d30"),
    "chart.active_30": ("30 天活跃", "Active d30"),
    "resolution.corrected": ("已修正", "Corrected"),
    "resolution.dismissed": ("已忽略", "Dismissed"),
    "resolution.superseded": ("已被新记录取代", "Superseded"),
    # accounts page
    "day": ("日期", "Day"),
    "platform": ("平台", "Platform"),
}

# Quarantine and skip reasons: a regular expression over the stored text → a catalog key,
# whose {placeholders} are the expression's named groups.
_REASONS = {
    "reason.oversized_field": (
        "字段过长：{field}（{size} 个字符，上限 {limit}）",
        "oversized field: {field} ({size} characters, limit {limit})",
    ),
    "reason.oversized_fields": ("字段过长：{fields}", "oversized field: {fields}"),
    "reason.unknown_event": ("未知的事件类型：{kind}", "unknown event kind: {kind}"),
    "reason.no_identity": (
        "没有可用的身份：没有手机号、微信号、邮箱或平台账号",
        "no usable identity: no phone, WeChat id, email or handle",
    ),
    "reason.bad_identity": ("没有可用的身份（{detail}）", "no usable identity ({detail})"),
    "reason.unreadable_time": ("无法识别的时间：{value}", "unreadable time: {value}"),
    "reason.undecodable": ("无法解码的字节（{encoding}）", "undecodable bytes ({encoding})"),
    "reason.unreadable_csv": ("无法读取的 CSV 行：{detail}", "unreadable CSV row: {detail}"),
    "reason.line_too_long": ("行超过 {limit} 个字符", "line longer than {limit} characters"),
    "reason.not_object": ("不是 JSON 对象", "not a JSON object"),
    "reason.not_json": ("不是合法的 JSON：{detail}", "not valid JSON: {detail}"),
    "reason.nan": (
        "非标准 JSON 数字（NaN 或 Infinity）",
        "non-standard JSON number (NaN or Infinity)",
    ),
    "reason.no_platform": (
        "自媒体线索缺少平台（用 --platform 或“平台”列指定）",
        "self-media lead without a platform (give --platform or a 平台 column)",
    ),
}


def _split(*tables: dict[str, tuple[str, str]], prefix: str = "") -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {"zh": {}, "en": {}}
    for table in tables:
        for key, (zh, en) in table.items():
            out["zh"][prefix + key] = zh
            out["en"][prefix + key] = en
    return out


REPORT_MESSAGES = _split(_WORDS, _REASONS)
for _lang, _words in _split(_COLUMNS, prefix="col.").items():
    REPORT_MESSAGES[_lang].update(_words)
for _lang, _words in _split(_TABLES, prefix="table.").items():
    REPORT_MESSAGES[_lang].update(_words)
