#!/usr/bin/env bash
# Render the HR summary, a reminder and a unit digest from the demo data and screenshot them in
# headless Chromium, so anyone can look at the mail as people will see it: screenshots/*.png.
#   scripts/render-screenshots.sh [AS_OF]      (default 2026-11-23: the 30-day stage)
# Needs /usr/bin/chromium (Debian: apt-get install -y chromium) and, for Chinese text in the
# browser, a CJK font (apt-get install -y fonts-wqy-microhei or fonts-noto-cjk).
set -euo pipefail
cd "$(dirname "$0")/.."
AS_OF="${1:-2026-11-23}"
OUT=screenshots
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
mkdir -p "$OUT"
[ -x "$CHROMIUM" ] || { echo "no $CHROMIUM: apt-get install -y chromium" >&2; exit 2; }
fc-list :lang=zh | grep -q . || echo "warning: no CJK font; Chinese will show as boxes in the browser" >&2

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
.venv/bin/python - "$AS_OF" "$WORK" "$OUT" <<'PY'
import base64, email, email.policy, sys
from datetime import date
from pathlib import Path

from learnhours.demo_data import build_sample, write_inbox
from learnhours.flows.steps import Mail, compute, ingest_paths, notify
from learnhours.notifiers.backends import MailSettings, MemoryBackend
from learnhours.plans import find_plan
from learnhours.warehouse.db import connect

as_of, work, out = date.fromisoformat(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
engine = connect(f"sqlite:///{work / 'warehouse.db'}")
write_inbox(build_sample(as_of.year, as_of), work / "inbox")
ingest_paths(engine, [work / "inbox"])
backend = MemoryBackend()
notify(engine, compute(engine, find_plan("current", day=as_of), as_of), as_of, Mail(MailSettings()), backend)

def html_of(message):
    parsed = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
    html = parsed.get_body(("html",)).get_content()
    for part in parsed.walk():  # inline images: cid: -> data: so a browser shows them
        cid = part.get("Content-ID")
        if cid:
            data = base64.b64encode(part.get_payload(decode=True)).decode()
            html = html.replace(f"cid:{cid.strip('<>')}", f"data:{part.get_content_type()};base64,{data}")
    return html

kinds = {"summary": "【學習時數摘要】", "reminder": "【學習時數提醒】", "digest": "【單位學習時數】"}
for name, prefix in kinds.items():
    message = next((m for m in backend.outbox if str(m["Subject"]).startswith(prefix)), None)
    if message is None:
        print(f"no {name} tonight ({as_of})", file=sys.stderr)
        continue
    (work / f"{name}.html").write_text(html_of(message), encoding="utf-8")
    print(name)
PY
for page in "$WORK"/*.html; do
  name=$(basename "$page" .html)
  "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$(mktemp -d)" --screenshot="$PWD/$OUT/$name.png" --window-size=900,1400 \
    "file://$page" >/dev/null 2>&1
  echo "$OUT/$name.png"
done
