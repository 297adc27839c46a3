"""Prefect automations that tell a person about the nightly deployment, through a webhook (the
agency's chat or monitoring), so that neither the mail server nor the night's own process has to
be up for it:

- a night that ended Failed or Crashed: the run's name, its state and the cause, with a link;
- no night completed in 26 hours: the worker, the server's scheduler or the machine stopped, the
  schedule was paused, or a run hangs; nothing else would say so.

    .venv/bin/python deploy/prefect_automations.py https://chat.example.gov.tw/hooks/learnhours

Run it with the Prefect settings in the environment (deploy/prefect.env: PREFECT_API_URL and
PREFECT_API_AUTH_STRING); again after a change: the webhook block `learnhours-alert` and the
automations of the same names are replaced. `prefect automation ls` shows them afterwards.
docs/operations.md, "When a night fails".
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import timedelta

from prefect.automations import (
    AutomationCore,
    EventTrigger,
    Posture,
    ResourceSpecification,
    SendNotification,
)
from prefect.blocks.notifications import CustomWebhookNotificationBlock
from prefect.client.orchestration import get_client

FLOW = "learnhours-nightly"  # the flow's name (learnhours/flows/nightly.py)
BLOCK = "learnhours-alert"
FAILED = "learnhours: a night failed"
MISSED = "learnhours: no night completed"

# Every event of a run of the nightly flow, whichever deployment started it.
_RUNS = {
    "match": ResourceSpecification({"prefect.resource.id": "prefect.flow-run.*"}),
    "match_related": ResourceSpecification(
        {"prefect.resource.role": "flow", "prefect.resource.name": FLOW}
    ),
}


def automations(block_id: object, hours: float) -> list[AutomationCore]:
    failed = AutomationCore(
        name=FAILED,
        description="A run of the nightly flow ended Failed or Crashed.",
        trigger=EventTrigger(
            **_RUNS,
            expect={"prefect.flow-run.Failed", "prefect.flow-run.Crashed"},
            posture=Posture.Reactive,
            threshold=1,
        ),
        actions=[
            SendNotification(
                block_document_id=block_id,
                subject="learnhours 夜間作業失敗：{{ flow_run.name }}",
                body=(
                    "learnhours 夜間作業 {{ flow_run.name }} 結束於 {{ flow_run.state.name }}："
                    "{{ flow_run.state.message }}\n詳情：{{ flow_run|ui_url }}"
                ),
            )
        ],
    )
    missed = AutomationCore(
        name=MISSED,
        description=f"No run of the nightly flow completed in {hours:g} hours.",
        trigger=EventTrigger(
            **_RUNS,
            # A night that ends as a Warning (the portal down, a closed plan named) completed.
            expect={"prefect.flow-run.Completed", "prefect.flow-run.Warning"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(hours=hours),
        ),
        actions=[
            SendNotification(
                block_document_id=block_id,
                subject=f"learnhours：{hours:g} 小時內沒有完成的夜間作業",
                body=(
                    f"learnhours 已 {hours:g} 小時沒有完成的夜間作業。請檢查 Prefect worker 與 "
                    "server 是否在執行（systemctl status learnhours-worker "
                    "learnhours-prefect-server）、部署的排程是否暫停，以及 `learnhours runs`。"
                ),
            )
        ],
    )
    return [failed, missed]


async def install(url: str, hours: float) -> None:
    block = CustomWebhookNotificationBlock(
        name=BLOCK, url=url, json_data={"text": "{{subject}}\n{{body}}"}
    )
    block_id = await block.asave(BLOCK, overwrite=True)
    async with get_client() as client:
        for automation in automations(block_id, hours):
            for old in await client.read_automations_by_name(automation.name):
                await client.delete_automation(old.id)
            await client.create_automation(automation)
            print(f"automation「{automation.name}」→ {BLOCK} ({url})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("webhook_url", help="where to POST {'text': subject and body}")
    parser.add_argument(
        "--hours", type=float, default=26, help="without a completed night for this long (26)"
    )
    args = parser.parse_args()
    asyncio.run(install(args.webhook_url, args.hours))


if __name__ == "__main__":
    main()
