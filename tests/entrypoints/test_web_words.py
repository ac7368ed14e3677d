"""Every workspace page, as every role that sees it, reads in words: in zh-CN no catalog key,
snake_case token or code name shows in the visible text; in en no catalog key shows."""

from __future__ import annotations

import html
import re
import warnings
from html.parser import HTMLParser
from pathlib import Path

import pytest

from crm.compliance.optout import unsubscribe_token
from crm.core import vocabulary
from crm.core.settings import get_settings
from crm.outreach.campaign_file import load_campaigns
from flows.i18n import translator
from flows.web.app import create_app
from tests.entrypoints.test_web import api_routes, login
from tests.helpers import workspace_world

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

SECRET = "test-secret-key-0123456789"
ROLES = ("alice", "mia", "root")  # sales, manager, admin
# GET routes that are no page a person reads: programs, downloads, redirects.
NOT_PAGES = {
    "/": "redirects to /queue",
    "/healthz": "liveness for programs",
    "/hooks/wecom": "WeCom's URL check",
    "/manage/funnel.csv": "a CSV download",
    "/admin/contacts/{contact_id}/export": "a JSON export",
}
# Words that may show as they are: brand and platform names, and user data of the world.
ALLOWED = {"Qunflow", "WeChat", "WeCom", "CSV", "wx_xiaoyu01", "wx_ajie02", "yunying_a01", "xhs:1"}
ENUMS = [
    obj
    for obj in vars(vocabulary).values()
    if isinstance(obj, type)
    and issubclass(obj, vocabulary.StrEnum)
    and obj is not vocabulary.StrEnum
]
CODES = {str(m.value) for enum in ENUMS for m in enum} | {"xhs", "douyin", "system", "cli"}
SNAKE = re.compile(r"\b[a-z0-9]+(?:_[a-z0-9]+)+\b")
# Step names as campaign files spell them (step-0, nudge-1): the pages say 第 1 步 instead.
# (Single words such as "welcome" are left out: a campaign of that name is the team's data.)
STEPS = {s.name for c in load_campaigns().values() for s in c.steps if "-" in s.name}
STEP_CODE = re.compile(r"step-\d+")
RAW_JSON = re.compile(r'[{\[]\s*"|"\s*:\s*[\[{"\d]')  # {"tier": …} as stored
DOTTED = re.compile(r"[a-z][a-z0-9_]*(?:\.[a-z0-9_]+)+")
URL = re.compile(r"https?://\S+|(?:/[\w.-]+){3,}")  # links and file paths are data
WORD = re.compile(r"[A-Za-z][A-Za-z0-9_.-]*")
KEYS = re.compile(r'msgid "([^"]+)"')
CATALOG = Path(__file__).resolve().parents[2] / "flows/i18n/locale/en/LC_MESSAGES/qunflow.po"


class VisibleText(HTMLParser):
    """The text a reader sees: no script/style, no attributes but title, placeholder,
    aria-label; <pre> blocks (rows as they came in) left out."""

    SKIP = frozenset({"script", "style", "pre"})
    SHOWN = frozenset({"title", "placeholder", "aria-label"})

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIP:
            self._skip += 1
        for name, value in attrs:
            if name in self.SHOWN and value:
                self.parts.append(value)

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip and data.strip():
            self.parts.append(data.strip())


def visible_text(html: str) -> list[str]:
    parser = VisibleText()
    parser.feed(html)
    return parser.parts


@pytest.fixture
def world(engine, tmp_path):
    settings = get_settings(secret_key=SECRET, public_base_url="http://testserver")
    built = workspace_world.build(engine, settings, tmp_path)
    return {"app": create_app(settings, engine), "settings": settings, **built}


def page_urls(world) -> dict[str, list[str]]:
    """The URLs that show each page route, with every view and the world's data in it."""
    contacts = [i["contact_id"] for i in world["items"]]
    unsub = unsubscribe_token(contacts[0], "wechat", settings=world["settings"])
    return {
        "/login": ["/login"],
        "/queue": [
            "/queue",
            "/queue?view=pool",
            "/queue?view=team",
            "/queue?view=pool&sort=sla",
            "/queue?view=pool&sort=score",
        ],
        "/prospects/{contact_id}": [f"/prospects/{c}" for c in contacts],
        "/manage/team": ["/manage/team"],
        "/manage/accounts": ["/manage/accounts"],
        "/manage/audit": ["/manage/audit"],
        "/manage/quarantine": ["/manage/quarantine"],
        "/manage/funnel": [
            "/manage/funnel",
            "/manage/funnel?period=custom&start=2026-03-01&end=2026-03-07&by=source",
            "/manage/funnel?period=custom&start=2026-03-01&end=2026-03-31&by=promoter",
        ],
        "/peers": ["/peers"],
        "/s/{token}": [world["qr_url"].removeprefix(world["settings"].public_base_url)],
        "/u/{token}": [f"/u/{unsub}"],
    }


# The pages the browser photographs: name -> (route, which of its URLs, who looks at it).
SCREENS = {
    "login": ("/login", 0, None),
    "queue-mine": ("/queue", 0, "alice"),
    "queue-pool": ("/queue", 1, "alice"),
    "queue-team": ("/queue", 2, "mia"),
    "prospect": ("/prospects/{contact_id}", 0, "alice"),
    "team": ("/manage/team", 0, "mia"),
    "accounts": ("/manage/accounts", 0, "mia"),
    "audit": ("/manage/audit", 0, "mia"),
    "quarantine": ("/manage/quarantine", 0, "mia"),
    "funnel": ("/manage/funnel", 1, "mia"),
    "peers": ("/peers", 0, "alice"),
    "signup": ("/s/{token}", 0, None),
    "unsubscribe": ("/u/{token}", 0, None),
}


def page_routes(app) -> set[str]:
    paths = {path for path, route in api_routes(app.routes) if "GET" in route.methods}
    return paths - set(NOT_PAGES)


def catalog_keys() -> set[str]:
    return set(KEYS.findall(CATALOG.read_text("utf-8"))) - {""}


def problems_in(parts: list[str], lang: str, keys: set[str]) -> list[str]:
    found = []
    for part in parts:
        if part in keys and translator(lang)(part) != part:
            found.append(f"key {part!r}")
        if RAW_JSON.search(part):
            found.append(f"raw JSON {part!r}")
        if part in ALLOWED:
            continue
        for word in WORD.findall(URL.sub("", part)):
            if word in ALLOWED:
                continue
            if DOTTED.fullmatch(word):
                found.append(f"key {word!r} in {part!r}")  # a key built at run time, not found
            if lang != "zh":
                continue
            if STEP_CODE.fullmatch(word.lower()) or word.split("@")[0] in STEPS:
                found.append(f"step name {word!r} in {part!r}")
            elif SNAKE.fullmatch(word.lower()):
                found.append(f"snake {word!r} in {part!r}")
            elif word.lower() in CODES:
                found.append(f"code {word!r} in {part!r}")
    return found


def _walk(world, lang: str) -> dict[str, list[str]]:
    app = world["app"]
    urls = page_urls(world)
    missing = page_routes(app) - set(urls)
    assert not missing, (
        f"GET routes with no page in this walk (add them or to NOT_PAGES): {missing}"
    )
    keys = catalog_keys()
    seen: dict[str, int] = {}
    problems: dict[str, list[str]] = {}
    anonymous = TestClient(app, base_url="http://testserver")
    clients = {name: login(app, name)[0] for name in ROLES}
    for route, paths in urls.items():
        for path in paths:
            sep = "&" if "?" in path else "?"
            who = (
                {"anonymous": anonymous}
                if route in ("/login", "/s/{token}", "/u/{token}")
                else clients
            )
            for name, client in who.items():
                r = client.get(f"{path}{sep}lang={lang}", follow_redirects=False)
                if r.status_code in (303, 403):
                    continue  # not this role's page
                assert r.status_code == 200, (path, name, r.status_code, r.text[:300])
                seen[route] = seen.get(route, 0) + 1
                found = problems_in(visible_text(r.text), lang, keys)
                if found:
                    problems[f"{path} as {name}"] = sorted(set(found))
    assert set(seen) == set(urls), set(urls) - set(seen)
    return problems


def test_every_page_reads_in_chinese(world):
    problems = _walk(world, "zh")
    assert not problems, "\n".join(f"{k}: {v}" for k, v in problems.items())


def test_every_page_reads_in_english(world):
    problems = _walk(world, "en")
    assert not problems, "\n".join(f"{k}: {v}" for k, v in problems.items())


def _history(world, lang: str) -> tuple[list[str], str]:
    """The follow-up history rows' notes on the first prospect's page, and the lost item's
    closing reason, as the manager reads them."""
    client = login(world["app"], "mia")[0]
    first, lost = world["items"][0]["contact_id"], world["items"][-1]["contact_id"]
    page = client.get(f"/prospects/{first}?lang={lang}").text
    table = page.split('id="queue-history"', 1)[1].split("</table>", 1)[0]
    notes = re.findall(r'<td class="note">([^<]*)</td>', table)
    closed = client.get(f"/prospects/{lost}?lang={lang}").text
    why = re.search(r'<span id="closed-why">([^<]*)</span>', closed)
    assert why is not None
    return [html.unescape(n) for n in notes if n], html.unescape(why.group(1))


def test_the_follow_up_history_says_what_the_system_wrote_in_the_readers_words(world):
    notes, why = _history(world, "zh")
    assert set(notes) == {
        "租约到期，退回公海池",
        "由 mia 分配",
        "自动分配（轮流）",
        "自动分配（按来源负责人）",
        "自动分配（按当前负载）",
        workspace_world.TYPED_NOTE,
    }
    system = [n for n in notes if n != workspace_world.TYPED_NOTE]
    assert not [n for n in system if re.search(r"[A-Za-z]", n.replace("mia", ""))], system
    assert why == "客户已合并"
    notes, why = _history(world, "en")
    assert set(notes) == {
        "lease ran out",
        "by mia",
        "auto-assigned (round robin)",
        "auto-assigned (source owner)",
        "auto-assigned (current load)",
        workspace_world.TYPED_NOTE,
    }
    assert why == "contact merged"
