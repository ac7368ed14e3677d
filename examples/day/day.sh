#!/bin/sh
# A day with Qunflow, run from the repository's root after `make install`:
#
#     sh examples/day/day.sh
#
# It works on the database of QUNFLOW_DATABASE_URL (default: SQLite in the data directory);
# use a fresh one (e.g. QUNFLOW_DATA_DIR=$(mktemp -d)), since group and account names are
# unique. No step depends on an id from an earlier run: contacts are found by phone.
# The web app is started on 127.0.0.1:$DAY_PORT for the QR sign-up and the webhooks.
set -eu

Q=${QUNFLOW:-.venv/bin/qunflow}
PY=${PYTHON:-.venv/bin/python}
DAY=examples/day
PORT=${DAY_PORT:-8765}
SERVER=http://127.0.0.1:$PORT
OUT=${DAY_OUT:-$(mktemp -d)}     # QR images and the like
mkdir -p "$OUT"
step() { printf '\n== %s\n' "$*"; }

step "schema"
$Q db upgrade

step "an operator account and one group per tier, each with its QR code (群活码)"
$Q accounts add yunying_a01 --platform wechat --limit group_join=10
$Q groups add 粉丝交流1群 --tier open --qr-url https://weixin.qq.com/g/open-1 --qr-expires 7d --account yunying_a01
$Q groups add 活跃学员群 --tier active --qr-url https://weixin.qq.com/g/active-1 --qr-expires 7d --account yunying_a01
$Q groups add 试听意向群 --tier prospect --theme trial --qr-url https://weixin.qq.com/g/prospect-1 --qr-expires 7d --account yunying_a01
$Q groups add 年度学员群 --tier paid --theme paid --qr-url https://weixin.qq.com/g/paid-1 --qr-expires 7d --account yunying_a01

step "a peer group (同行群): plan today's join within the account's 10 a day, join, harvest"
$Q peers add 宝妈交流群3群 --community 某母婴社区 --join qr --ref https://weixin.qq.com/g/peer-3
$Q peers plan --purpose 亲子阅读营
$Q peers joined 宝妈交流群3群 --account yunying_a01
$Q ingest peer-group $DAY/members.csv --peer 宝妈交流群3群

step "self-media leads (自媒体) and activity events"
$Q ingest self-media $DAY/leads.jsonl --platform xiaohongshu
$Q ingest events $DAY/activity.jsonl

step "an in-person QR code (地推扫码), a phone signing up on its page, signed webhook pushes"
$Q qr create --promoter 小张 --location 南山科技园 --campaign open-day --expires 7d --out "$OUT/qr" --json >"$OUT/qr.json"
CODE_URL=$($PY -c 'import json,sys; print(json.load(sys.stdin)["url"])' <"$OUT/qr.json")
$Q web --port "$PORT" >"$OUT/web.log" 2>&1 &
WEB=$!
trap 'kill $WEB 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -fs "$SERVER/healthz" >/dev/null 2>&1 && break; sleep 0.2; done
$PY $DAY/client.py sign-up "$SERVER" "$CODE_URL" --name 周女士 --phone 13800138006 --answer goal=升学 --answer budget=有
$PY $DAY/client.py push "$SERVER" leads $DAY/hook-leads.json
$PY $DAY/client.py push "$SERVER" events $DAY/hook-events.json
kill $WEB && wait $WEB 2>/dev/null || true
trap - EXIT
$Q ingest qr-signups            # resolves the sign-up and the pushed leads and events
$Q quarantine list              # the bad rows, with file, row number and reason

step "the funnel: score and move one tier per run, invite to the tier's group, queue prospects"
$Q route --json                 # new -> open: everyone joins the open group
$Q route --json                 # open -> active (paid at once after a purchase)
$Q route --json                 # active -> prospect: the sales queue
$Q route --dry-run --rules $DAY/new-rules.toml --json   # back-test a rules change, writes nothing
LIN=$($Q contacts list --json --limit 10000 | $PY $DAY/client.py contact-id 13800138001)
WANG=$($Q contacts list --json --limit 10000 | $PY $DAY/client.py contact-id 13900138002)
$Q contacts show "$LIN"         # score breakdown in words, tier history with reasons
$Q contacts tag "$LIN" "$WANG" --tags 高意向、宝妈
$Q contacts list --tag 高意向

step "follow-ups within caps and send windows"
$Q campaign run welcome-new --json
$Q dispatch --until-idle --json # the rest is deferred, never dropped
$Q caps                         # today's usage and headroom per account
$Q peers yield                  # which peer groups are worth the joins

step "people and reports"
$Q users add alice --role sales --password-stdin <<EOF
${DAY_ALICE_PASSWORD:-correct-horse-battery}
EOF
FROM=$($PY -c 'import datetime as d; print(d.date.today() - d.timedelta(days=1))')
TO=$($PY -c 'import datetime as d; print(d.date.today() + d.timedelta(days=2))')
$Q report --from "$FROM" --to "$TO" --by promoter
