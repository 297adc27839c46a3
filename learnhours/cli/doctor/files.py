"""The office's folders and files: its settings file, its warehouse, its inbox, its plans."""

from __future__ import annotations

from learnhours.cli.doctor.base import Check, Office, Unchecked, Verdict, failed, passed
from learnhours.cli.output import printable


def settings_file(office: Office) -> Verdict:
    settings = office.settings
    if settings.config_file is None:
        raise Unchecked(
            "找不到 learnhours.toml（目前資料夾及其上層都沒有）：請以 learnhours init 資料夾 "
            "建立辦公室資料夾，並在其中執行；或以 --config 指定設定檔",
            "設定檔",
        )
    return passed(f"{printable(str(settings.config_file))}")


def warehouse(office: Office) -> Verdict:
    from sqlalchemy import make_url

    engine = office.engine
    shown = make_url(office.settings.database_url).render_as_string(hide_password=True)
    del engine
    return passed(f"{printable(shown)} 可以連線，結構為最新版本")


def inbox(office: Office) -> Verdict:
    folder = office.settings.inbox
    if not folder.is_dir():
        return failed(
            f"收件資料夾 {printable(str(folder))} 不存在：請建立它（learnhours init 會建立），"
            "或修正設定 inbox"
        )
    files = sum(1 for p in folder.rglob("*") if p.is_file())
    return passed(f"{printable(str(folder))}（{files} 個檔案）")


def plan_files(office: Office) -> Verdict:
    """Every plan file reads and holds for this year (and a recurring one for the next), and
    names only staff categories the code tables or the roster use."""
    from learnhours.plans import PlanError
    from learnhours.plans.vocabulary import unknown_categories
    from learnhours.steps.coverage import known_categories
    from learnhours.steps.inbox import roster_codes

    catalog = office.catalog
    year = office.today.year
    try:
        engine = office.engine
    except Unchecked:
        engine = None  # the code tables alone say which categories exist
    known = known_categories(engine, roster_codes(office.settings))
    problems = [f"{p.name}：{e}" for p, e in catalog.broken]
    for f in catalog.files:
        try:
            for y in (year, year + 1) if f.recurs else (None,):
                f.plan(y)
        except PlanError as exc:
            problems.append(f"{f.path.name}：{exc}")
            continue
        problems += [f"{f.path.name} {str(p).strip()}" for p in unknown_categories(f, known)]
    if not catalog.files and not problems:
        return failed(f"計畫資料夾 {printable(str(catalog.directory))} 沒有計畫檔")
    if problems:
        first = printable(problems[0].replace("\n", " "))
        more = f"（另有 {len(problems) - 1} 個）" if len(problems) > 1 else ""
        return failed(f"{first}{more}：請以 learnhours plan check 檢查並修正")
    return passed(f"{len(catalog.files)} 個計畫檔都正確（{printable(str(catalog.directory))}）")


CHECKS = [
    Check("設定檔", settings_file),
    Check("資料庫", warehouse),
    Check("收件資料夾", inbox),
    Check("計畫檔", plan_files),
]
