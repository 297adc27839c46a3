"""The API checks of scripts/smoke-deploy.sh: what the Prefect server itself did.

    smoke_deploy.py scheduled DEPLOYMENT       the server scheduled runs at 02:00 Asia/Taipei
    smoke_deploy.py bring-forward DEPLOYMENT   the first scheduled run starts now (its id)
    smoke_deploy.py completed RUN_ID           the run ended Completed (exit 1 otherwise)
    smoke_deploy.py inbox FOLDER               a demo agency's files for today, to ingest
    smoke_deploy.py healthy API_URL            the server answers (with the API auth string)
    smoke_deploy.py refuses-strangers API_URL  without the auth string the API answers 401
"""

from __future__ import annotations

import asyncio
import sys
import time
from datetime import UTC, datetime

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterName,
    FlowFilter,
    FlowFilterName,
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import StateType
from prefect.client.schemas.sorting import FlowRunSort
from prefect.states import Scheduled

from learnhours.taipei import TAIPEI, taipei_today


async def _scheduled(deployment: str) -> list:
    flow_name, _, name = deployment.partition("/")
    async with get_client() as client:
        return await client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=[flow_name])),
            deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[name])),
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED]))
            ),
            sort=FlowRunSort.EXPECTED_START_TIME_ASC,
        )


def scheduled(deployment: str) -> int:
    """Waits (up to 120 s) for the server's scheduler to create the deployment's runs."""
    deadline = time.monotonic() + 120
    runs: list = []
    while time.monotonic() < deadline:
        runs = [r for r in asyncio.run(_scheduled(deployment)) if r.auto_scheduled]
        if len(runs) >= 3:
            break
        time.sleep(2)
    if not runs:
        print(f"the server scheduled no run of {deployment} in 120 s", file=sys.stderr)
        return 1
    for run in runs[:5]:
        local = run.expected_start_time.astimezone(TAIPEI)
        print(f"  scheduled by the server: {run.name} at {local:%Y-%m-%d %H:%M %Z}")
    wrong = [r for r in runs if r.expected_start_time.astimezone(TAIPEI).strftime("%H:%M") != "02:00"]
    if wrong:
        print(f"{len(wrong)} scheduled run(s) not at 02:00 Asia/Taipei", file=sys.stderr)
        return 1
    print(f"ok: {len(runs)} runs scheduled by the server, each at 02:00 Asia/Taipei")
    return 0


async def _bring_forward(deployment: str) -> str:
    (first, *_rest) = [r for r in await _scheduled(deployment) if r.auto_scheduled]
    async with get_client() as client:
        # The run the scheduler made, moved to now: the worker then runs exactly what 02:00 would.
        await client.set_flow_run_state(
            first.id, Scheduled(scheduled_time=datetime.now(UTC)), force=True
        )
    return str(first.id)


def bring_forward(deployment: str) -> int:
    print(asyncio.run(_bring_forward(deployment)))
    return 0


async def _state(run_id: str):  # noqa: ANN202
    async with get_client() as client:
        return await client.read_flow_run(run_id)


def completed(run_id: str) -> int:
    run = asyncio.run(_state(run_id))
    how = "scheduled by the server" if run.auto_scheduled else "started by hand"
    print(f"flow run {run.name} ({how}): {run.state.type.value} {run.state.message or ''}")
    return 0 if run.state.is_completed() else 1


def inbox(folder: str) -> int:
    from pathlib import Path

    from learnhours.demo_data import build_sample, write_inbox

    today = taipei_today()
    write_inbox(build_sample(today.year, today, people=40), Path(folder))
    return 0


def _get(url: str, auth: bool) -> int:
    import base64
    import os
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url)
    if auth:
        token = base64.b64encode(os.environ["PREFECT_API_AUTH_STRING"].encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def healthy(api: str) -> int:
    return 0 if _get(f"{api}/health", auth=True) == 200 else 1


def refuses_strangers(api: str) -> int:
    status = _get(f"{api}/deployments/name/learnhours-nightly/nightly", auth=False)
    print(f"ok: without the API auth string the server answers {status}")
    return 0 if status == 401 else 1


if __name__ == "__main__":
    command, argument = sys.argv[1], sys.argv[2]
    sys.exit(
        {
            "scheduled": scheduled,
            "bring-forward": bring_forward,
            "completed": completed,
            "inbox": inbox,
            "healthy": healthy,
            "refuses-strangers": refuses_strangers,
        }[command](argument)
    )
