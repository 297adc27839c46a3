"""Benchmark: the nightly flow against the same steps from the CLI, and one worker against two.

    .venv/bin/python bench/flow_night.py --scale 0.1 --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test
    .venv/bin/python bench/flow_night.py --database-url ...     # 400k people, 10M records
    .venv/bin/python bench/flow_night.py --scale 0.01            # SQLite, quick

The warehouse is filled as in bench/national.py (`--scale` x 400,000 people in 1,000 agencies x
20 units, x 10,000,000 records; the month's export already loaded and left in the inbox, so each
night's ingest skips it by its hash). Each side is the night of a 30-day reminder stage, from an
empty ledger, run as an operator runs it, in its own process, mail to an aiosmtpd sink on
loopback:
  (a) the CLI steps: `learnhours ingest <inbox>`, then `learnhours notify` (recompute + notify);
  (b) the flow, one worker: `learnhours run` against a real `prefect server` (started once);
  (c) the flow, `LEARNHOURS_WORKERS=2`: the national plan's agencies in shares on a local Dask
      cluster of two worker processes, then the roll-up.
Then each side again on the full ledger: a no-op night (nothing new to send). Peak RSS: the
largest process of the side (its run or one of its workers; getrusage of the children).
Goals (issue: national scale): (b) within 1.2x (a); (c) faster than (b) on two cores.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
from sqlalchemy import delete, func, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.national import _free_port, _sink, filled, thirty_days_before, warehouse  # noqa: E402
from learnhours.ingest import ingest_file  # noqa: E402
from learnhours.plans import find_plan  # noqa: E402
from learnhours.warehouse.db import connect  # noqa: E402
from learnhours.warehouse.schema import notice  # noqa: E402

LEARNHOURS = str(ROOT / ".venv" / "bin" / "learnhours")
PREFECT = str(ROOT / ".venv" / "bin" / "prefect")


def _prefect_server(home: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env.pop("PREFECT_API_URL", None)
    process = subprocess.Popen(
        [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    for _ in range(300):
        with contextlib.suppress(requests.RequestException):
            if requests.get(f"http://127.0.0.1:{port}/api/health", timeout=1).ok:
                return process
        time.sleep(0.5)
    process.terminate()
    raise SystemExit("the Prefect server did not start")


def _side(commands: list[list[str]], env: dict[str, str]) -> tuple[float, float]:
    """(seconds, the largest process's peak RSS in MB) of commands run one after the other."""
    wrapper = (
        "import resource, subprocess, sys\n"
        "code = subprocess.call(sys.argv[1:], stdout=subprocess.DEVNULL)\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
        "sys.exit(code)\n"
    )
    seconds, peak = 0.0, 0.0
    for command in commands:
        t0 = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", wrapper, *command], env=env, cwd=ROOT,
                              capture_output=True, text=True)  # fmt: skip
        seconds += time.perf_counter() - t0
        if done.returncode not in (0, 3):
            raise SystemExit(f"{' '.join(command[:2])} failed ({done.returncode}): {done.stderr}")
        peak = max(peak, int(done.stdout.split()[-1]) / 1024)
    return seconds, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="1.0: 400k people, 10M records")
    parser.add_argument("--database-url", help="PostgreSQL server URL (default: a SQLite file)")
    parser.add_argument("--sides", default="abc", help="which sides to run: any of a, b, c")
    args = parser.parse_args()
    plan = find_plan("national-2026")
    as_of = thirty_days_before(plan)
    with tempfile.TemporaryDirectory() as tmp, warehouse(args.database_url, Path(tmp)) as url:
        smtp_port, api_port = _free_port(), _free_port()
        sink = _sink(smtp_port)
        server = _prefect_server(Path(tmp) / "prefect", api_port)
        try:
            t0 = time.perf_counter()
            inbox = Path(tmp) / "inbox"
            inbox.mkdir()
            export = filled(url, args.scale, inbox / "export-10.csv", agencies=2)
            engine = connect(url)
            ingest_file(engine, export)
            print(f"{url.split(':')[0]}: {int(400_000 * args.scale)} people, "
                  f"{int(10_000_000 * args.scale)} records, filled in "
                  f"{time.perf_counter() - t0:.0f} s; as of {as_of}; "
                  f"load {os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
            env = {
                **os.environ,
                "LEARNHOURS_DATABASE_URL": url,
                "LEARNHOURS_SMTP_URL": f"smtp://127.0.0.1:{smtp_port}",
                "LEARNHOURS_MAIL_FROM": "人事處 <hr@example.gov.tw>",
                "LEARNHOURS_HR_ADDRESSES": "hr@example.gov.tw",
                "LEARNHOURS_WORKERS": "1",
                "PREFECT_HOME": str(Path(tmp) / "prefect"),
                "PREFECT_API_URL": f"http://127.0.0.1:{api_port}/api",
            }
            day = as_of.isoformat()
            sides = {
                "(a) CLI: ingest, then notify": (
                    [[LEARNHOURS, "ingest", str(inbox)],
                     [LEARNHOURS, "notify", "--plan", plan.id, "--as-of", day]],
                    env,
                ),
                "(b) flow, one worker: learnhours run": (
                    [[LEARNHOURS, "run", "--plan", plan.id, "--inbox", str(inbox), "--as-of", day]],
                    env,
                ),
                "(c) flow, LEARNHOURS_WORKERS=2": (
                    [[LEARNHOURS, "run", "--plan", plan.id, "--inbox", str(inbox), "--as-of", day]],
                    {**env, "LEARNHOURS_WORKERS": "2"},
                ),
            }  # fmt: skip
            sides = {name: side for name, side in sides.items() if name[1] in args.sides}
            figures: dict[str, list[tuple[float, float, int]]] = {}
            for night in ("the night (an empty ledger)", "a no-op night (nothing new)"):
                print(night, flush=True)
                for name, (commands, side_env) in sides.items():
                    if night.startswith("the night"):
                        with engine.begin() as c:
                            c.execute(delete(notice))
                    seconds, peak = _side(commands, side_env)
                    with engine.connect() as c:
                        sent = c.execute(
                            select(func.count()).where(notice.c.status == "sent")
                        ).scalar_one()
                    figures.setdefault(name, []).append((seconds, peak, sent))
                    print(f"  {name:<40} {seconds:8.1f} s   peak RSS {peak:7.0f} MB   "
                          f"{sent} sent   load {os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
            engine.dispose()
            for i, night in enumerate(("night", "no-op night")):
                took = {name[1]: figures[name][i][0] for name in sides}
                if "a" in took and "b" in took:
                    print(f"{night}: flow / CLI = {took['b']:.1f} / {took['a']:.1f} s = "
                          f"{took['b'] / took['a']:.2f}x (goal <= 1.2x)")  # fmt: skip
                if "b" in took and "c" in took:
                    print(f"{night}: two workers / one = {took['c']:.1f} / {took['b']:.1f} s = "
                          f"{took['c'] / took['b']:.2f}x")  # fmt: skip
            print(
                f"children's peak RSS overall {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024:.0f} MB"
            )
        finally:
            server.terminate()
            sink.terminate()


if __name__ == "__main__":
    main()
