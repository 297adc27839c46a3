"""`learnhours db`: the warehouse's migrations, applied or shown."""

from __future__ import annotations

import argparse

from learnhours.cli.installation import _settings


def cmd_db(args: argparse.Namespace) -> int:
    from learnhours.warehouse import db

    engine = db.create_engine_for(_settings(args).database_url)
    if args.db_command == "upgrade":
        db.upgrade(engine, args.revision)
    current, head = db.revisions(engine)
    print(
        f"{engine.url.render_as_string(hide_password=True)}：版本 {current or '（空的資料庫）'}"
        + ("（最新）" if current == head else f"，最新為 {head}：請執行 `learnhours db upgrade`")
    )
    return 0
