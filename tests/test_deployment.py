"""The deployment as an operator builds it from docs/operations.md, for real on loopback: a
`prefect server` with API auth, `prefect deploy --all` from prefect.yaml, a `dask scheduler` and
two `dask worker` processes given what a compute machine is given, a Prefect worker pointed at
the cluster, PostgreSQL for the warehouse and its ledger, an SMTP server for the mail."""

from __future__ import annotations

import base64
import contextlib
import email
import email.policy
import json
import os
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from learnhours.demo_data import write_csv
from learnhours.warehouse.db import connect
from learnhours.warehouse.schema import notice
from tests.conftest import ROOT
from tests.factories import export_file
from tests.test_agencies import AGENCY_HEADER, CITY, DAY, DISTRICT, SCHOOL, _rows, member
from tests.test_government_flow import _free_port
from tests.test_mail_backends import Recorder, smtp_server
from tests.test_operator_kit import _sourced_by_bash

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

BIN = Path(sys.executable).parent
DEPLOYMENT = "learnhours-nightly/nightly"
POOL = "learnhours"  # prefect.yaml's
HR = "hr@city.gov.tw"  # not a reserved name: the night mails through a real SMTP server


def _base_environment(home: Path) -> dict[str, str]:
    """A machine's own environment: no setting of the test session's (its Prefect home, its
    warehouse), only what each process below is given."""
    kept = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "LEARNHOURS_"))}
    return {**kept, "HOME": str(home), "PREFECT_HOME": str(home / "prefect"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_CLI_PROMPT": "false",
            "COLUMNS": "200"}  # fmt: skip


class Server:
    """A running `prefect server` with API auth, and how to reach it."""

    def __init__(self, api: str, auth: str, folder: Path) -> None:
        self.api, self.auth, self.folder = api, auth, folder

    def environment(self, home: Path) -> dict[str, str]:
        """A client's Prefect settings (the worker's, the CLI's, a compute machine's)."""
        home.mkdir(parents=True, exist_ok=True)
        return {**_base_environment(home), "PREFECT_API_URL": self.api,
                "PREFECT_API_AUTH_STRING": self.auth}  # fmt: skip

    def prefect(self, *words: str, env: dict[str, str] | None = None) -> str:
        """A `prefect` command from the project folder, as docs/operations.md has it typed."""
        done = subprocess.run(
            [str(BIN / "prefect"), *words], cwd=ROOT, capture_output=True, text=True,
            env=env or self.environment(self.folder / "cli"), timeout=600,
        )  # fmt: skip
        assert done.returncode == 0, f"prefect {' '.join(words)}:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def get(self, path: str) -> dict:
        return self._call(urllib.request.Request(f"{self.api}{path}"))

    def post(self, path: str, body: dict) -> object:
        request = urllib.request.Request(
            f"{self.api}{path}", data=json.dumps(body).encode(), method="POST",
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        return self._call(request)

    def _call(self, request: urllib.request.Request):  # noqa: ANN202 - JSON
        token = base64.b64encode(self.auth.encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"null")

    def healthy(self) -> bool:
        try:
            self.get("/health")
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False
        return True


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    """The server, the work pool and the deployment, as docs/operations.md Option A says."""
    folder = tmp_path_factory.mktemp("prefect-server")
    port = _free_port()
    auth = f"test:{secrets.token_hex(16)}"
    up = Server(f"http://127.0.0.1:{port}/api", auth, folder)
    env = {**_base_environment(folder), "PREFECT_SERVER_API_AUTH_STRING": auth}
    with open(folder / "server.log", "wb") as log:
        process = subprocess.Popen(
            [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 180
        while not up.healthy():
            assert process.poll() is None, (folder / "server.log").read_text()
            assert time.monotonic() < deadline, "the Prefect server did not start in 180 s"
            time.sleep(0.5)
        up.prefect("work-pool", "create", POOL, "--type", "process")
        up.prefect("--no-prompt", "deploy", "--all")
        yield up
    finally:
        process.terminate()
        process.wait(60)


def _plan(folder: Path) -> Path:
    """One plan of three agencies: the city hall, a district office and a school."""
    folder.mkdir()
    plan = {
        "id": "government", "name": "{roc_year}年度示範市學習時數", "agency": "示範市政府",
        "recurs": "yearly", "period": {"start": "01-01", "end": "12-31"}, "deadline": "12-31",
        "judge_date": "12-31", "registration_lag_working_days": 7,
        "requirements": [{"id": "total", "name": "年度學習時數", "codes": "all", "minimum": 20}],
        "population": ["編制內", "教師"], "who": [f"機關代碼 in [{CITY}, {DISTRICT}, {SCHOOL}]"],
        "reminders": {"stages": [60, 30, 14, 7], "freshness_days": 400,
                      "sender": f"市府人事處 <{HR}>", "hr_addresses": [HR],
                      "agency_hr": ["角色 contains 人事主辦人員"]},
    }  # fmt: skip
    (folder / "government.yaml").write_text(yaml.safe_dump(plan, allow_unicode=True), "utf-8")
    return folder


def _inbox(folder: Path) -> None:
    """Each agency's HR office and a few people, most of them short: every share mails."""
    people = []
    for agency in (CITY, DISTRICT, SCHOOL):
        people.append(member(agency, "人事室", f"{agency[-2:]}人事主任", head=True, hr=True))
        people += [member(agency, "總務處", f"{agency[-2:]}總務{i}", head=i == 0) for i in range(3)]
    folder.mkdir()
    write_csv(folder / "roster.csv", AGENCY_HEADER, people, "utf-8-sig")
    export_file(folder, _rows(people, {people[0]["姓名"]}))


def _compute_environment(server: Server, home: Path, values: dict[str, str]) -> dict[str, str]:
    """A compute machine's environment: the names deploy/compute.env.example lists (the
    Prefect API and its auth string among them), with this test's values; nothing else."""
    listed = set(_sourced_by_bash(ROOT / "deploy" / "compute.env.example"))
    environment = {**server.environment(home), **values}
    given = {k for k in environment if k.startswith(("LEARNHOURS_", "PREFECT_API"))}
    assert given <= listed, given - listed
    return environment


@contextlib.contextmanager
def _dask_cluster(
    folder: Path, compute: dict[str, str], checkout: str
) -> Iterator[tuple[str, list[str]]]:
    """`dask scheduler` and two `dask worker` processes, each as on a compute machine of its
    own: started in its checkout (its `learnhours.toml`), with only a compute machine's
    environment."""
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    processes = []
    try:
        with open(folder / "scheduler.log", "wb") as log:
            processes.append(subprocess.Popen(
                [str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port),
                 "--no-dashboard"], stdout=log, stderr=subprocess.STDOUT, cwd=folder,
            ))  # fmt: skip
        for n in (1, 2):
            machine = folder / f"compute-{n}"
            machine.mkdir()
            (machine / "learnhours.toml").write_text(checkout, encoding="utf-8")
            with open(machine / "worker.log", "wb") as log:
                processes.append(subprocess.Popen(
                    [str(BIN / "dask"), "worker", address, "--nworkers", "1", "--nthreads", "1",
                     "--no-dashboard", "--name", f"compute-{n}"],
                    env={**compute, "HOME": str(machine)}, cwd=machine, stdout=log,
                    stderr=subprocess.STDOUT,
                ))  # fmt: skip
        from distributed import Client

        with Client(address, timeout=120) as client:
            client.wait_for_workers(2, timeout=180)
            workers = sorted(client.scheduler_info()["workers"])
        yield address, workers
    finally:
        for process in reversed(processes):
            process.terminate()
            process.wait(60)


def _flow_run(server: Server, deployment: str, parameters: dict) -> str:
    """A run of the deployment started now (`prefect deployment run`); its id."""
    out = server.prefect("deployment", "run", deployment,
                         *[w for k, v in parameters.items() for w in ("--param", f"{k}={v}")])  # fmt: skip
    (run_id,) = {w.strip("'\".,") for w in out.split() if w.count("-") == 4 and len(w) >= 36}
    return run_id


def test_the_deployment_judges_a_plan_of_several_agencies_in_shares_on_a_dask_cluster(
    server, pg_url, tmp_path
):
    """Point 3 of issue 33: as documented, with `LEARNHOURS_DASK_ADDRESS` the deployment's run
    hands the plan's shares to the Dask workers, which import its tasks by their package path
    (a flow loaded from its file pickled as module `nightly`, which no worker has); every notice
    in the ledger goes out once, and both workers judged shares."""
    from distributed import Client

    plans = _plan(tmp_path / "plans")
    _inbox(tmp_path / "inbox")
    handler = Recorder()
    with smtp_server(handler) as smtp:
        mail = {"LEARNHOURS_SMTP_URL": f"smtp://127.0.0.1:{smtp.port}?timeout=10"}
        # A compute machine is given what deploy/compute.env.example lists (this relay asks
        # for no login, the summaries' workbooks go without a password here), and runs in a
        # checkout whose learnhours.toml names the plans.
        compute = _compute_environment(server, tmp_path / "compute", {
            **mail, "LEARNHOURS_DATABASE_URL": pg_url,
            "LEARNHOURS_MAIL_FROM": f"市府人事處 <{HR}>",
        })  # fmt: skip
        checkout = f'plans_dir = "{plans}"\n'
        with _dask_cluster(tmp_path, compute, checkout) as (address, workers):
            run_id = _flow_run(server, DEPLOYMENT, {"plan_id": "current", "as_of": DAY})
            orchestrator = {
                **compute, **server.environment(tmp_path / "orchestrator"),
                "LEARNHOURS_INBOX": str(tmp_path / "inbox"), "LEARNHOURS_PLANS_DIR": str(plans),
                "LEARNHOURS_OUTBOX": str(tmp_path / "outbox"),
                "LEARNHOURS_DASK_ADDRESS": address, "LEARNHOURS_WORKERS": "2",
            }  # fmt: skip
            with Client(address, timeout=60) as client:
                client.get_task_stream()  # the scheduler records from now on
                server.prefect("worker", "start", "--pool", POOL, "--run-once", env=orchestrator)
                stream = client.get_task_stream()
    run = server.get(f"/flow_runs/{run_id}")
    assert run["state"]["type"] == "COMPLETED", run["state"]["message"]
    shares = [t for t in stream if "judge_share" in str(t["key"])]
    assert sorted({t["worker"] for t in shares}) == workers  # both machines judged shares

    engine = connect(pg_url)
    with engine.connect() as connection:
        ledger = connection.execute(select(notice.c.message_id, notice.c.status)).all()
    engine.dispose()
    received = [
        email.message_from_bytes(raw, policy=email.policy.default)["Message-ID"]
        for _sender, _to, raw in handler.received
    ]
    assert ledger and {status for _id, status in ledger} == {"sent"}
    assert sorted(received) == sorted(message_id for message_id, _status in ledger)  # once each


class Webhook:
    """An HTTP endpoint on loopback that keeps what is POSTed to it: the agency's chat."""

    def __init__(self) -> None:
        import http.server
        import threading

        received = self.received = []

        class Hook(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append(json.loads(body)["text"])
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_args: object) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hooks/learnhours"
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()

    def wait_for(self, words: str, seconds: float = 180) -> str:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if said := [t for t in self.received if words in t]:
                return said[0]
            time.sleep(0.5)
        raise AssertionError(f"no webhook call with {words!r} in {seconds:g} s: {self.received}")

    def close(self) -> None:
        self._server.shutdown()


def test_a_failed_night_and_a_missed_one_reach_the_webhook_of_the_documented_automations(
    server, tmp_path, syslog
):
    """Point 1 and 2 of issue 33: deploy/prefect_automations.py, as docs/operations.md has it
    run, makes automations the server accepts and fires: a run that ended Failed is posted with
    its cause, and so is a stretch without a completed night (here a few seconds, not 26 h).
    The failed run also wrote its line to the machine's syslog (its worker's environment)."""
    hook = Webhook()
    try:
        cli = server.environment(tmp_path / "cli")
        done = subprocess.run(
            [sys.executable, "deploy/prefect_automations.py", hook.url, "--hours", "0.004"],
            cwd=ROOT, env=cli, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        listed = server.prefect("automation", "ls")
        assert "learnhours: a night failed" in listed and "learnhours: no night completed" in listed

        run_id = _flow_run(server, DEPLOYMENT, {"plan_id": "no-such-plan"})
        worker = {**server.environment(tmp_path / "orchestrator"),
                  "LEARNHOURS_DATABASE_URL": f"sqlite:///{tmp_path / 'w.db'}",
                  "LEARNHOURS_INBOX": str(tmp_path), "LEARNHOURS_PLANS_DIR": str(ROOT / "plans"),
                  "LEARNHOURS_SYSLOG_ADDRESS": str(syslog.path)}  # fmt: skip
        server.prefect("worker", "start", "--pool", POOL, "--run-once", env=worker)
        assert server.get(f"/flow_runs/{run_id}")["state"]["type"] == "FAILED"

        failed = hook.wait_for("夜間作業失敗")
        assert "Failed" in failed and "no-such-plan" in failed
        assert "沒有完成的夜間作業" in hook.wait_for("沒有完成的夜間作業")
        (line,) = syslog.lines()
        assert line.startswith("<27>learnhours[") and "no-such-plan" in line
    finally:
        hook.close()
