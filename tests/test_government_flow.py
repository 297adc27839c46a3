"""A whole government in one nightly flow: three agencies with same-named units, two plans (the
city's agencies and its schools), mail over real SMTP. Units never merge, each agency's HR gets
only its own people, the roll-up is right, headcount tiers show with their recipients by role,
and one plan's lock never holds up the other."""

from __future__ import annotations

import contextlib
import email
import email.policy
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from openpyxl import load_workbook

from learnhours.demo_data import write_csv
from learnhours.warehouse.db import connect
from learnhours.warehouse.lock import acquire, plan_lock, release
from tests.factories import export_file, unlocked
from tests.test_agencies import AGENCY_HEADER, CITY, DAY, DISTRICT, SCHOOL, _rows, government
from tests.test_mail_backends import Recorder, smtp_server

CITY_HR, SCHOOLS_HR = "hr@city.gov.tw", "schools@city.gov.tw"


def _plans(folder: Path) -> Path:
    """The city's plan (its agencies, tiers by headcount) and the schools' (teachers too)."""
    folder.mkdir()
    common = {
        "recurs": "yearly", "period": {"start": "01-01", "end": "12-31"}, "deadline": "12-31",
        "judge_date": "12-31", "registration_lag_working_days": 7,
        "requirements": [{"id": "total", "name": "年度學習時數", "codes": "all", "minimum": 20}],
    }  # fmt: skip
    reminders = {
        "stages": [60, 30, 14, 7], "freshness_days": 400, "sender": f"市府人事處 <{CITY_HR}>",
        "agency_hr": ["角色 contains 人事主辦人員"],
    }  # fmt: skip
    city = {
        "id": "city", "name": "{roc_year}年度市府學習時數", "agency": "示範市政府", **common,
        "population": ["編制內", "約聘", "約僱"], "who": [f"機關代碼 in [{CITY}, {DISTRICT}]"],
        "agency_tiers": [
            {"text": "記功一次", "recipients": ["機關首長", "人事主辦人員"], "min_rate": 1,
             "min_headcount": 3},
            {"text": "嘉獎二次", "recipients": ["機關首長", "人事主辦人員"], "min_rate": 1,
             "below_headcount": 3},
        ],
        "reminders": {**reminders, "hr_addresses": [CITY_HR]},
    }  # fmt: skip
    schools = {
        "id": "schools", "name": "{roc_year}年度所屬學校學習時數", "agency": "示範市政府", **common,
        "population": ["編制內", "教師"], "who": [f"機關代碼 = {SCHOOL}"],
        "reminders": {**reminders, "hr_addresses": [SCHOOLS_HR]},
    }  # fmt: skip
    for plan in (city, schools):
        (folder / f"{plan['id']}.yaml").write_text(
            yaml.safe_dump(plan, allow_unicode=True), "utf-8"
        )
    return folder


def _inbox(folder: Path, people: list[dict], met: set[str]) -> None:
    """The roster and one export in the inbox, as the nightly run finds them."""
    folder.mkdir()
    write_csv(folder / "roster.csv", AGENCY_HEADER, people, "utf-8-sig")
    export_file(folder, _rows(people, met))


def _by_recipient(handler: Recorder) -> dict[str, list]:
    out: dict[str, list] = {}
    for _sender, recipients, raw in handler.received:
        message = email.message_from_bytes(raw, policy=email.policy.default)
        for r in recipients:
            out.setdefault(r, []).append(message)
    return out


def _sheets(message) -> dict[str, list[tuple]]:
    (part,) = [p for p in message.iter_attachments() if p.get_filename().endswith(".xlsx")]
    book = load_workbook(unlocked(part.get_content()))
    return {s.title: list(s.iter_rows(min_row=3, values_only=True)) for s in book.worksheets}


@pytest.mark.slow
@pytest.mark.parametrize("part", [None, 3], ids=["whole", "a-part-at-a-time"])
def test_a_government_of_three_agencies_and_two_plans_in_one_nightly_run(
    prefect_harness, tmp_path, monkeypatch, part
):
    """The night of a whole government; and the same with its plans judged a part of whole
    agencies at a time (sending.NIGHT_PART_PEOPLE, for a nation: memory holds one part)."""
    from learnhours.flows.nightly import nightly
    from learnhours.steps import sending

    if part:
        monkeypatch.setattr(sending, "NIGHT_PART_PEOPLE", part)

    people = government()
    ids = {p["姓名"]: p["身分證字號"] for p in people}
    hr = {p["機關代碼"]: p["電子郵件"] for p in people if p["角色"]}
    # The district office's two people met: a whole agency under 3 people, so 嘉獎二次.
    _inbox(tmp_path / "inbox", people, met={"區人事主任", "區人事員", "市人事主任"})
    monkeypatch.setenv("LEARNHOURS_PLANS_DIR", str(_plans(tmp_path / "plans")))
    monkeypatch.delenv("LEARNHOURS_MAIL_BACKEND", raising=False)
    url = f"sqlite:///{tmp_path / 'w.db'}"
    run = {"plan_id": "current", "inbox": tmp_path / "inbox", "as_of": DAY, "database_url": url}
    handler = Recorder()
    engine = connect(url)
    with smtp_server(handler) as server:
        monkeypatch.setenv("LEARNHOURS_SMTP_URL", f"smtp://127.0.0.1:{server.port}?timeout=5")
        # Another run is judging the schools' plan: the city's plan goes ahead regardless.
        other = acquire(engine, plan_lock("schools-2026"))
        try:
            first = nightly(**run, return_state=True)
        finally:
            release(engine, other, plan_lock("schools-2026"))
        city_only = _by_recipient(handler)
        second = nightly(**run, return_state=True)  # now the schools' plan; the city's: nothing new
    assert first.is_failed() and "計畫 schools-2026 今晚未處理" in first.message
    assert second.is_completed(), second.message
    mails = _by_recipient(handler)

    assert SCHOOLS_HR not in city_only and hr[SCHOOL] not in city_only
    assert [m["Subject"] for m in mails[CITY_HR]] == [m["Subject"] for m in city_only[CITY_HR]]

    (rollup,) = mails[CITY_HR]
    sheets = _sheets(rollup)
    assert [r[:7] for r in sheets["各機關"]] == [
        (CITY, "示範市政府", 2, 4, 1, 0.25, None),  # an empty cell
        (DISTRICT, "示範區公所", 1, 2, 2, 1, "嘉獎二次（機關首長、人事主辦人員）"),
    ]
    assert [r[:5] for r in sheets["各單位"]] == [  # two 人事室, never one
        (CITY, "示範市政府", "人事室", 2, 1), (CITY, "示範市政府", "民政局", 2, 0),
        (DISTRICT, "示範區公所", "人事室", 2, 2),
    ]  # fmt: skip
    text = rollup.get_body(("plain",)).get_content()
    assert (
        "示範區公所（379680100B）：2/2 人，達成率 100.0%，嘉獎二次（機關首長、人事主辦人員）"
        in text
    )
    assert not any(pid in rollup.as_string() for pid in ids.values())

    for agency, own in ((CITY, {"市人事員", "市民政局長", "市民政科員"}),
                        (SCHOOL, {"校人事主任", "校教務主任", "校老師"})):  # fmt: skip
        (summary,) = [m for m in mails[hr[agency]] if "學習時數摘要" in m["Subject"]]
        assert {r[0] for r in _sheets(summary)["未達成名單"]} == {ids[n] for n in own}
        others = {pid for name, pid in ids.items() if name not in own}
        assert not any(pid in summary.as_string() for pid in others)  # never another agency's
    (district,) = [m for m in mails[hr[DISTRICT]] if "學習時數摘要" in m["Subject"]]
    district_text = district.get_body(("plain",)).get_content()
    assert "機關團體獎勵：目前可達「嘉獎二次（機關首長、人事主辦人員）」" in district_text

    # The schools' plan has one agency: one summary, to its HR office and the school's HR.
    (schools,) = mails[SCHOOLS_HR]
    assert "所屬學校" in schools["Subject"]
    assert schools["Subject"] == next(
        m["Subject"] for m in mails[hr[SCHOOL]] if "學習時數摘要" in m["Subject"]
    )


@contextlib.contextmanager
def _dask_cluster(workers: int, certs: dict[str, Path] | None = None):
    """A Dask scheduler and its workers as an operator starts them (`dask scheduler`, `dask
    worker`), in processes of their own on loopback: the address is all the flow is given.
    With `certs` (tests.cluster_certificates), over TLS as docs/privacy.md sets it up."""
    port = _free_port()
    bin_dir = Path(sys.executable).parent
    tls: list[str] = []
    security = None
    if certs:
        from distributed.security import Security

        tls = ["--tls-ca-file", str(certs["ca"]), "--tls-cert", str(certs["node"]),
               "--tls-key", str(certs["node_key"])]  # fmt: skip
        security = Security(tls_ca_file=str(certs["ca"]), tls_client_cert=str(certs["client"]),
                            tls_client_key=str(certs["client_key"]), require_encryption=True)  # fmt: skip
    address = f"{'tls' if certs else 'tcp'}://127.0.0.1:{port}"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    processes = [subprocess.Popen([bin_dir / "dask", "scheduler", "--host", "127.0.0.1",
                                   "--port", str(port), "--no-dashboard", *tls,
                                   *(["--protocol", "tls"] if certs else [])], **quiet)]  # fmt: skip
    try:
        processes.append(subprocess.Popen([bin_dir / "dask", "worker", address, "--nworkers",
                                           str(workers), "--nthreads", "1", "--no-dashboard",
                                           *tls], **quiet))  # fmt: skip
        from distributed import Client

        with Client(address, timeout=60, security=security) as client:
            client.wait_for_workers(workers, timeout=120)
        yield address
    finally:
        for process in reversed(processes):
            process.terminate()
            process.wait(30)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.parametrize("cluster", ["local", "address", "tls"])
def test_a_government_judged_in_shares_by_two_dask_workers(
    prefect_harness, pg_url, tmp_path, monkeypatch, cluster
):
    """LEARNHOURS_WORKERS=2: the city's agencies go in shares to two worker processes of a Dask
    cluster (one the run starts, or one already running at LEARNHOURS_DASK_ADDRESS, as on other
    machines), the warehouse and its ledger shared on PostgreSQL; each agency's HR gets its own,
    the roll-up comes once, and the next night sends nothing twice."""
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    from learnhours.flows.nightly import nightly

    people = government()
    hr = {p["機關代碼"]: p["電子郵件"] for p in people if p["角色"]}
    _inbox(tmp_path / "inbox", people, met={"區人事主任", "區人事員", "市人事主任"})
    monkeypatch.setenv("LEARNHOURS_PLANS_DIR", str(_plans(tmp_path / "plans")))
    monkeypatch.setenv("LEARNHOURS_WORKERS", "2")
    monkeypatch.delenv("LEARNHOURS_MAIL_BACKEND", raising=False)
    run = {"plan_id": "city", "inbox": tmp_path / "inbox", "as_of": DAY, "database_url": pg_url}
    handler = Recorder()
    with smtp_server(handler) as server, contextlib.ExitStack() as stack:
        monkeypatch.setenv("LEARNHOURS_SMTP_URL", f"smtp://127.0.0.1:{server.port}?timeout=5")
        if cluster == "address":  # its workers read the settings of their own environment
            monkeypatch.setenv("LEARNHOURS_DASK_ADDRESS", stack.enter_context(_dask_cluster(2)))
        if cluster == "tls":  # issue 31: the cluster as docs/privacy.md sets it up
            from tests.cluster_certificates import cluster_certificates

            certs = cluster_certificates(tmp_path / "certs")
            for name, key in (("CA", "ca"), ("CERT", "client"), ("KEY", "client_key")):
                monkeypatch.setenv(f"LEARNHOURS_DASK_TLS_{name}_FILE", str(certs[key]))
            monkeypatch.setenv("LEARNHOURS_DASK_ADDRESS",
                               stack.enter_context(_dask_cluster(2, certs)))  # fmt: skip
        first = nightly(**run, return_state=True)
        sent_first = len(handler.received)
        second = nightly(**run, return_state=True)
    assert first.is_completed(), first.message
    assert second.is_completed(), second.message
    assert len(handler.received) == sent_first  # nothing twice
    mails = _by_recipient(handler)
    (rollup,) = mails[CITY_HR]
    assert [r[:5] for r in _sheets(rollup)["各機關"]] == [
        (CITY, "示範市政府", 2, 4, 1), (DISTRICT, "示範區公所", 1, 2, 2),
    ]  # fmt: skip
    for agency in (CITY, DISTRICT):
        assert len([m for m in mails[hr[agency]] if "學習時數摘要" in m["Subject"]]) == 1
    assert hr[SCHOOL] not in mails  # the schools' plan was not judged

    async def shares_run() -> list[str]:
        async with get_client() as client:
            runs = await client.read_task_runs(
                flow_run_filter=FlowRunFilter(
                    id=FlowRunFilterId(any_=[first.state_details.flow_run_id])
                )
            )
        return [r.name for r in runs if r.state and r.state.is_completed()]

    names = asyncio.run(shares_run())
    # The plan's people are of two of the roster's three agencies (the school's plan is
    # another): 2 x 2 shares at most, an agency each.
    assert sum(n.startswith("judge_share") for n in names) == 2
