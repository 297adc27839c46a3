"""The night's outside world: the portal account when the night fetches, and, when a Prefect
server is configured, the deployment's next scheduled run. Nothing here waits long: a server
that does not answer within seconds is said to be so."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from learnhours.cli.doctor.base import Check, Office, Verdict, failed, passed
from learnhours.cli.output import printable

DEPLOYMENT = "learnhours-nightly/nightly"  # prefect.yaml: the flow's name / the deployment's
PREFECT_SECONDS = 3.0  # how long a doctor waits for the Prefect API


def portal_account(office: Office) -> Verdict:
    """When the night fetches (`doctor --fetch`): the site profile reads and its account is set
    (where the profile says; nothing is sent to the portal)."""
    from learnhours.extractors.site_profile import ProfileError, load_profile

    if not office.args.fetch:
        return passed("不從入口網站下載（要檢查下載用的帳號：learnhours doctor --fetch）")
    try:
        profile = load_profile(office.args.profile, office.settings.sites_dir)
    except ProfileError as exc:
        return failed(f"{printable(str(exc))}：請修正站台設定檔（docs/fetch.md）")
    spec = profile.credentials
    found = office.settings.credential_environ()
    if found.get(spec.user_env) and found.get(spec.password_env):
        return passed(f"{profile.name}：帳號與密碼已設定（{spec.user_env}、{spec.password_env}）")
    if spec.secret_block:
        return passed(f"{profile.name}：帳號與密碼在 Prefect Secret 區塊「{spec.secret_block}」")
    return failed(
        f"{profile.name} 沒有入口網站帳號：請設定環境變數 {spec.user_env} 與 {spec.password_env}"
        f"（或在站台設定檔的 credentials.secret_block 指定 Prefect Secret 區塊）"
    )


def next_run(office: Office) -> Verdict:
    """The nightly deployment's next scheduled run, when PREFECT_API_URL names a server."""
    from learnhours.taipei import TAIPEI, roc

    environ = office.settings.environ  # as read once, with the settings
    api = environ.get("PREFECT_API_URL", "").strip().rstrip("/")
    if not api:
        return passed(
            "沒有設定 Prefect 伺服器（PREFECT_API_URL）：以 systemd timer 或 cron 執行時不適用；"
            "用 Prefect 部署時，請先載入 deploy/prefect.env 再執行 doctor"
        )
    try:
        deployment = _api(environ, api, f"/deployments/name/{DEPLOYMENT}")
        runs = _api(environ, api, "/flow_runs/filter", {
            "deployments": {"id": {"any_": [deployment["id"]]}},
            "flow_runs": {"state": {"type": {"any_": ["SCHEDULED"]}}},
            "sort": "EXPECTED_START_TIME_ASC",
            "limit": 1,
        })  # fmt: skip
    except _NoAnswer as exc:
        return failed(f"Prefect 伺服器 {printable(api)} {exc}")
    if deployment.get("paused"):
        return failed(f"部署 {DEPLOYMENT} 已暫停：在 Prefect UI 恢復排程，夜間作業才會執行")
    if not runs:
        return failed(f"部署 {DEPLOYMENT} 沒有排定的執行：請確認其排程（prefect.yaml 的 schedules）")
    start = datetime.fromisoformat(runs[0]["expected_start_time"]).astimezone(TAIPEI)
    fetch = "，先從入口網站下載" if (deployment.get("parameters") or {}).get("fetch") else ""
    return passed(f"部署 {DEPLOYMENT} 下一次執行：{roc(start.date())} {start:%H:%M}（台北時間）{fetch}")


class _NoAnswer(Exception):
    """The Prefect API did not answer as expected: the words say how."""


def _api(environ: Mapping[str, str], api: str, path: str, body: dict | None = None) -> Any:
    request = urllib.request.Request(api + path, method="POST" if body is not None else "GET")
    request.add_header("Accept", "application/json")
    if body is not None:
        request.add_header("Content-Type", "application/json")
        request.data = json.dumps(body).encode()
    if auth := environ.get("PREFECT_API_AUTH_STRING"):
        request.add_header("Authorization", f"Basic {base64.b64encode(auth.encode()).decode()}")
    elif key := environ.get("PREFECT_API_KEY"):
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=PREFECT_SECONDS) as response:  # noqa: S310
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            raise _NoAnswer(
                f"上沒有部署 {DEPLOYMENT}：請在專案資料夾執行 prefect deploy --all"
            ) from None
        if exc.code in (401, 403):
            raise _NoAnswer(
                f"拒絕了這次查詢（{exc.code}）：請設定 PREFECT_API_AUTH_STRING（deploy/prefect.env）"
            ) from None
        raise _NoAnswer(f"回覆 {exc.code}") from None
    except (OSError, ValueError) as exc:  # refused, unreachable, timed out, not JSON
        reason = getattr(exc, "reason", exc)
        raise _NoAnswer(
            f"在 {PREFECT_SECONDS:g} 秒內沒有回應（{type(reason).__name__}）：請確認伺服器已啟動"
        ) from None


CHECKS = [
    Check("入口網站帳號", portal_account),
    Check("排程", next_run, required=False),
]
