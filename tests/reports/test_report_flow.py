"""The funnel-report flow publishes the report's own figures as artifacts and chart images."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from sqlalchemy import Engine

from crm.core.db import transaction
from crm.reports import funnel_report
from tests.helpers.report_history import END, NOW, START, build_history


def _artifact(key: str) -> object:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key]))
        )
    assert found, key
    return max(found, key=lambda a: a.created).data


def _rows(key: str) -> list[dict[str, str]]:
    data = _artifact(key)
    return json.loads(data) if isinstance(data, str) else data  # type: ignore[return-value]


def test_flow_publishes_summary_tables_and_charts(
    engine: Engine, db_url: str, prefect_harness: None
) -> None:
    from flows.report import funnel_report_flow

    build_history(engine)
    # The last 7 complete local days before 2026-03-09 09:00 Shanghai: the test week.
    as_of = NOW.replace(month=3, day=9, hour=1)
    result = funnel_report_flow(days=7, as_of=as_of, database_url=db_url)

    with transaction(engine) as session:
        expected = funnel_report(session, start=START, end=END, now=as_of)
    assert result["report"] == expected
    assert "funnel-report-retention" in result["artifacts"]

    summary = str(_artifact("funnel-report-summary"))
    assert "到达：8 次接触，6 个独立联系人，其中新联系人 5" in summary
    assert "## 新联系人漏斗，2026-03-02 至 2026-03-08" in summary
    assert summary.count("](data:image/png;base64,") == 3
    png = base64.b64decode(summary.split("](data:image/png;base64,")[1].split(")")[0])
    assert png.startswith(b"\x89PNG")

    funnel_rows = _rows("funnel-report-funnel")
    assert {"阶段": "付费", "人数": "1", "占上一阶段": "50.0%"} in funnel_rows
    assert all(set(row) == {"阶段", "人数", "占上一阶段"} for row in funnel_rows)
    sales = str(_artifact("funnel-report-sales"))
    assert "wang" in sales and "li" in sales

    funnel_report_flow(days=7, as_of=as_of, database_url=db_url, lang="en")
    assert "Arrivals: 8 touches, 6 unique contacts, 5 new" in str(
        _artifact("funnel-report-summary")
    )
    assert {"Stage": "Paid", "Contacts": "1", "Of previous stage": "50.0%"} in _rows(
        "funnel-report-funnel"
    )

    for name in ("funnel", "retention", "arrivals"):
        path = Path(result["charts"][name])
        assert path.read_bytes().startswith(b"\x89PNG")
        assert path.parent.parent.name == "reports"
