"""A plan's agencies judged in shares side by side on a Dask cluster (this machine's processes or
other machines'): the night's one route (steps.send_plan) with its parts handed to workers.

A worker unpickles the task and the flow with every share it is sent, so both must be importable
by their package path on every worker: the task lives here, and prefect.yaml's entrypoint names
the flow `learnhours.flows.nightly:nightly` (loaded from its file, it would be module `nightly`,
which no worker has).
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import logging
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

from distributed.security import Security
from prefect import get_run_logger, task
from prefect.cache_policies import NONE
from prefect_dask import DaskTaskRunner
from sqlalchemy import Engine

from learnhours import steps
from learnhours.flows.failure import ExpectedFailuresSaidOnce, ScrubIds
from learnhours.notifiers.backends import MailBackend
from learnhours.plans import Plan, find_plan
from learnhours.private import owner_only
from learnhours.settings import Settings, SettingsError, env_name, load_settings
from learnhours.warehouse import share_store
from learnhours.warehouse.db import connect

# Shares per worker: agencies differ in size, so a worker done early takes another share.
SHARES_PER_WORKER = 2


@functools.cache
def _worker_engine(url: str, lock_wait: float) -> Engine:
    """One engine per worker process, whatever number of shares it judges."""
    return connect(url, lock_wait)


@functools.cache
def _failures_said_once_on_this_worker() -> None:
    """A worker process runs shares and nothing else: its task-run logger keeps an expected
    failure to the flow's one sentence for as long as the process lives (the task engine
    reports it after the task returned, outside anything the task could open)."""
    logging.getLogger("prefect.task_runs").addFilter(ExpectedFailuresSaidOnce())


@task(cache_policy=NONE)
def judge_share(
    overrides: dict[str, Any], job: steps.Job, part: steps.Part, night: str, number: int
) -> steps.PartReport:
    """One share of a plan's agencies, on whichever worker takes it: it reads the installation's
    settings where it runs (the run's own, no password among them, as `overrides`) and its share
    of the people the run judged (share_store, `night` and its `number`: the records are read
    once, by the run), sends their mail, and hands back its figures only (counts, units, its
    part of the roll-up), never its people."""
    _failures_said_once_on_this_worker()
    with product_logs_shipped(), owner_only():  # a worker's outbox files are private too
        settings = load_settings(**overrides)
        engine = _worker_engine(settings.database_url, settings.database_lock_wait_seconds)
        plan = find_plan(job.plan_id, settings.plans_dir, job.today)
        mail = steps.Mail.of(settings)
        with engine.connect() as connection:
            frame = share_store.take(connection, night, number)
        result = steps.judged_people(plan, job.as_of, frame, part)
        report = steps.judge_part(engine, plan, mail, job, result, mail.backend())
        get_run_logger().info(
            "%s: a share of %d agencies: %d queued; mail %s",
            plan.id, len(part or ()), report.queued, dict(report.delivered.counts) or "none",
        )  # fmt: skip
        return report.private()


def cluster_security(settings: Settings) -> Security | None:
    """How this machine proves itself to the Dask scheduler of `dask_address`, and checks the
    scheduler is the agency's: TLS with the agency's certificates. Whoever reaches a scheduler
    runs code on its workers, which read the warehouse and hold the mail password, so a `tcp://`
    scheduler off this machine is refused unless `dask_plain_tcp` says the network is closed.
    SettingsError naming the setting, checked where a run starts. None: no TLS (a local
    cluster, or a scheduler on loopback)."""
    address = (settings.dask_address or "").strip()
    files = {"dask_tls_ca_file": settings.dask_tls_ca_file,
             "dask_tls_cert_file": settings.dask_tls_cert_file,
             "dask_tls_key_file": settings.dask_tls_key_file}  # fmt: skip
    if not address:
        return None
    scheme, sep, rest = address.partition("://")
    scheme, host = (scheme.lower(), rest) if sep else ("tcp", address)
    host = host.rsplit(":", 1)[0].strip("[]") if ":" in host else host
    if scheme == "tls":
        missing = [env_name(n) for n, path in files.items() if path is None]
        if missing:
            raise SettingsError(
                f"{env_name('dask_address')} 是 tls://，但沒有設定 {'、'.join(missing)}："
                "請指定簽發叢集憑證的 CA、這台機器的憑證與私鑰（docs/privacy.md）"
            )
        for name, path in files.items():
            if path is not None and not path.is_file():
                raise SettingsError(f"{env_name(name)}：找不到檔案 {path}")
        return Security(
            tls_ca_file=str(files["dask_tls_ca_file"]),
            tls_client_cert=str(files["dask_tls_cert_file"]),
            tls_client_key=str(files["dask_tls_key_file"]),
            require_encryption=True,
        )
    if scheme != "tcp":
        raise SettingsError(
            f"{env_name('dask_address')} 開頭「{scheme}://」：應為 tls://主機:8786（或本機的 tcp://）"
        )
    if any(files.values()):
        raise SettingsError(
            f"設定了 Dask 的憑證，但 {env_name('dask_address')} 是 tcp://（不加密）：請改為 tls://"
        )
    if not _loopback(host) and not settings.dask_plain_tcp:
        raise SettingsError(
            f"{env_name('dask_address')} 是另一台機器的 tcp:// 排程器：不加密也不驗證身分，"
            "連得到它的人都能在工作機上執行程式、讀到資料庫與郵件密碼。請改用 tls://"
            f"（docs/privacy.md），或確定網路只有這些機器時設定 {env_name('dask_plain_tcp')}=true"
        )
    return None


def _loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _task_runner(settings: Settings) -> DaskTaskRunner:
    if settings.dask_address:
        security = cluster_security(settings)
        if security is not None:
            return DaskTaskRunner(address=settings.dask_address,
                                  client_kwargs={"security": security})  # fmt: skip
        return DaskTaskRunner(address=settings.dask_address)
    return DaskTaskRunner(
        cluster_kwargs={"n_workers": settings.workers, "threads_per_worker": 1,
                        "processes": True, "dashboard_address": None,
                        "silence_logs": logging.WARNING},
    )  # fmt: skip


def on_workers(
    engine: Engine,
    plan: Plan,
    mail: steps.Mail,
    settings: Settings,
    overrides: dict[str, Any],
    backend: MailBackend | None = None,
) -> steps.PartRunner:
    """The parts judged side by side on the task runner's workers (a plan of one part is judged
    here: no cluster is started for it). Each share's notices are keyed in the one ledger
    (PostgreSQL, shared by every worker), so a notice goes out once whichever worker sends it."""

    def run(
        job: steps.Job, judged: steps.Compliance, parts: Sequence[steps.Part]
    ) -> Iterator[steps.PartReport]:
        if len(parts) < 2:
            runner = steps.in_process(engine, plan, mail, backend or mail.backend())
            yield from runner(job, judged, parts)
            return
        # Each share's people, judged once here, written once where every worker reads (the
        # warehouse): a task carries the night's token and the share's number, never people.
        night = uuid.uuid4().hex
        with engine.begin() as connection:
            share_store.put(connection, plan.id, night, [judged.part(p).frame for p in parts])
        try:
            with _task_runner(settings) as runner:
                futures = [
                    runner.submit(judge_share, {"overrides": overrides, "job": job, "part": part,
                                                "night": night, "number": number})
                    for number, part in enumerate(parts)
                ]  # fmt: skip
                reports = [f.result() for f in futures]
        finally:
            with engine.begin() as connection:
                share_store.clear(connection, night)
        get_run_logger().info("%s: %d shares judged by the workers", plan.id, len(reports))
        yield from reports

    return run


@contextlib.contextmanager
def product_logs_shipped() -> Iterator[None]:
    """The product's own log lines (learnhours.*) into the run's logs in the Prefect UI, as
    Prefect's extra-loggers setting would, with anything shaped like an ID masked; for the
    run only (outside a run there is nowhere to send them)."""
    from prefect.logging.handlers import APILogHandler

    product = logging.getLogger("learnhours")
    handler = APILogHandler()
    handler.setLevel(logging.INFO)
    handler.addFilter(ScrubIds())
    level = product.level
    product.addHandler(handler)
    if level == logging.NOTSET or level > logging.INFO:
        product.setLevel(logging.INFO)
    try:
        yield
    finally:
        product.removeHandler(handler)
        product.setLevel(level)
