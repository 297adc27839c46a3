"""Personal data (docs/privacy.md): the HR workbook's password set, the office's files readable
by their owner only, the Dask cluster reached over TLS."""

from __future__ import annotations

import stat

from learnhours.cli.doctor.base import Check, Office, Verdict, failed, passed
from learnhours.cli.output import printable

# Files listed by name when some are open to others; the rest are counted.
SHOWN_FILES = 3


def workbook_password(office: Office) -> Verdict:
    """Set or not (never shown), and where from; without it the summary goes without its
    workbook, which the night can do."""
    settings = office.settings
    if office.mail.workbook_password is None:
        return failed(
            "沒有設定活頁簿密碼：人事室摘要會寄出，但不附未達成名單（含身分證字號）的活頁簿。"
            "請設定環境變數 LEARNHOURS_WORKBOOK_PASSWORD（或以 LEARNHOURS_WORKBOOK_PASSWORD_BLOCK "
            "指定 Prefect Secret 區塊），並當面或電話告知人事室（docs/privacy.md）"
        )
    where = ("環境變數 LEARNHOURS_WORKBOOK_PASSWORD" if settings.workbook_password
             else f"Prefect Secret 區塊「{settings.workbook_password_block}」")  # fmt: skip
    return passed(f"已設定（{printable(where)}）：人事室摘要的活頁簿以此密碼加密")


def private_files(office: Office) -> Verdict:
    """What learnhours has written so far (var/: the warehouse, logs, Prefect's home; the
    outbox) readable by its owner only: files made before learnhours made them private keep
    their old mode. The inbox is the clerks' to fill, with files of their own making."""
    settings = office.settings
    folders = [settings.root / "var", settings.outbox]
    open_to_others: list[str] = []
    for folder in dict.fromkeys(folders):
        if not folder.exists():
            continue
        for path in [folder, *folder.rglob("*")]:
            try:
                mode = path.lstat().st_mode
            except OSError:
                continue
            if not stat.S_ISLNK(mode) and mode & 0o077:
                open_to_others.append(f"{path}（{stat.filemode(mode)}）")
    if open_to_others:
        shown = "、".join(open_to_others[:SHOWN_FILES])
        more = f"等 {len(open_to_others)} 個" if len(open_to_others) > SHOWN_FILES else ""
        return failed(
            f"{printable(shown)}{more}其他使用者也能讀取（含個人資料）：請執行 "
            f"chmod -R go= {printable(str(settings.root / 'var'))}（郵件資料夾在別處時也一樣）"
        )
    return passed("資料庫、郵件資料夾與紀錄只有擁有者可讀取")


def dask_cluster(office: Office) -> Verdict:
    """A scheduler elsewhere is reached over TLS, or explicitly accepted in clear."""
    from learnhours.flows.workers import cluster_security
    from learnhours.settings import SettingsError

    settings = office.settings
    if not settings.dask_address:
        return passed("不使用其他機器的 Dask 叢集")
    try:
        security = cluster_security(settings)
    except SettingsError as exc:
        return failed(printable(str(exc)))
    if security is not None:
        return passed(f"{printable(settings.dask_address)}：以 TLS 與機關的憑證連線")
    if settings.dask_plain_tcp:
        return passed(f"{printable(settings.dask_address)}：未加密（已設定 dask_plain_tcp，"
                      "網路須只有這些機器）")  # fmt: skip
    return passed(f"{printable(settings.dask_address)}：本機")


CHECKS = [
    Check("活頁簿密碼", workbook_password, required=False),
    Check("檔案權限", private_files, required=False),
    Check("Dask 叢集", dask_cluster),
]
