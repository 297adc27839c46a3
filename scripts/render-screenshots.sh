#!/usr/bin/env bash
# Render the HR summary, a reminder and a unit digest from the demo data (the night of the stage
# before AS_OF's first, as `make demo` does) and screenshot them in headless Chromium, whole
# pages, so anyone can look at the mail as people will see it.
#   scripts/render-screenshots.sh [AS_OF]      (default 2026-11-23: the 30-day stage)
#   OUT=docs/screenshots scripts/render-screenshots.sh      (default: screenshots/, git-ignored)
# Needs /usr/bin/chromium (Debian: apt-get install -y chromium). The mail carries no image and no
# font: the reader's mail client draws the text and the chart bars in its own fonts. A server has
# no CJK font as a rule; the browser is then lent one as a reader's machine has it (Debian's
# fonts-wqy-microhei, unpacked in a temporary folder, nothing installed).
set -euo pipefail
cd "$(dirname "$0")/.."
AS_OF="${1:-2026-11-23}"
OUT="${OUT:-screenshots}"
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
WIDTH=900
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd)
[ -x "$CHROMIUM" ] || { echo "no $CHROMIUM: apt-get install -y chromium" >&2; exit 2; }

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
if ! fc-list :lang=zh-tw 2>/dev/null | grep -q .; then
  echo "no CJK font on this machine (as on a server): lending the browser one, as a reader has" >&2
  if (cd "$WORK" && apt-get download fonts-wqy-microhei >/dev/null 2>&1); then
    dpkg -x "$WORK"/fonts-wqy-microhei_*.deb "$WORK/fonts"
    cat > "$WORK/fonts.conf" <<CONF
<?xml version="1.0"?><!DOCTYPE fontconfig SYSTEM "fonts.dtd">
<fontconfig><include ignore_missing="yes">/etc/fonts/fonts.conf</include>
<dir>$WORK/fonts</dir><cachedir>$WORK/fontcache</cachedir></fontconfig>
CONF
    export FONTCONFIG_FILE="$WORK/fonts.conf"
  else
    echo "warning: could not fetch fonts-wqy-microhei; Chinese will show as boxes in the browser" >&2
  fi
fi

.venv/bin/python - "$AS_OF" "$WORK" <<'PY'
import sys
from datetime import date
from pathlib import Path

from learnhours.demo_data import build_sample, write_inbox
from learnhours.steps import Mail, ingest_paths, send_plan
from learnhours.notifiers.backends import MailSettings, MemoryBackend
from learnhours.plans import find_plan
from learnhours.steps.night import previous_stage_day
from learnhours.warehouse.db import connect

as_of, work = date.fromisoformat(sys.argv[1]), Path(sys.argv[2])
engine = connect(f"sqlite:///{work / 'warehouse.db'}")
plan = find_plan("current", day=as_of)
# As `make demo` does: the night of the stage before first, so the digests say how units moved.
earlier = previous_stage_day(plan, as_of)
for night in [earlier, as_of] if earlier else [as_of]:
    write_inbox(build_sample(as_of.year, night), work / "inbox")
    ingest_paths(engine, [work / "inbox"])
    backend = MemoryBackend()
    send_plan(engine, plan, night, Mail(MailSettings()), backend=backend)


def telling(prefix: str, *marks: str):
    """Tonight's first message of a kind whose text says the most: each mark it holds counts."""
    found = [m for m in backend.outbox if str(m["Subject"]).startswith(prefix)]
    text = [m.get_body(("plain",)).get_content() for m in found]
    best = max(range(len(found)), key=lambda i: (sum(k in text[i] for k in marks), -i), default=None)
    return None if best is None else found[best]


kinds = {
    "summary": ("【學習時數摘要】",),
    "reminder": ("【學習時數提醒】", "未採計的紀錄", "可能尚未登錄完成", "已採計"),
    "digest": ("【單位學習時數】", "新列入〕", "上升"),
}
for name, (prefix, *marks) in kinds.items():
    message = telling(prefix, *marks)
    if message is None:
        print(f"no {name} tonight ({as_of})", file=sys.stderr)
        continue
    html = message.get_body(("html",)).get_content()
    (work / f"{name}.html").write_text(html, encoding="utf-8")
    # The same page, telling its full height: the screenshot's window is then the whole page.
    probe = "<script>document.body.setAttribute('data-lh-height', document.documentElement.scrollHeight)</script>"
    (work / f"{name}.probe").write_text(html.replace("</body>", probe + "</body>"), encoding="utf-8")
PY
chromium() {
  "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --hide-scrollbars --user-data-dir="$WORK/profile" "$@" 2>/dev/null
}
for page in "$WORK"/*.html; do
  name=$(basename "$page" .html)
  cp "$WORK/$name.probe" "$WORK/$name-probe.html"
  height=$(chromium --window-size="$WIDTH,800" --dump-dom "file://$WORK/$name-probe.html" \
    | sed -n 's/.*data-lh-height="\([0-9]*\)".*/\1/p' | head -1)
  chromium --screenshot="$OUT/$name.png" --window-size="$WIDTH,${height:-1400}" "file://$page" >/dev/null
  echo "$OUT/$name.png (${WIDTH}x${height:-1400})"
done
