"""`learnhours init DIR`: an office's own folder, apart from the code — its settings, its plan to
edit, its inbox and its data, readable by its owner only — so that upgrading the code (`git
pull`) never touches what the office edited, and what it edited is never a file of the code."""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

from learnhours.cli.output import command_path, printable
from learnhours.settings import CONFIG_FILE, SettingsError

# The shipped files an office starts from: the national plan (its placeholders marked 請改) and
# the portal's site profiles (each with the agency code to set).
_PLAN = "national.yaml"

OFFICE_SETTINGS = """\
# 本機關的 learnhours 設定（由 learnhours init 建立，屬於機關，不屬於程式：更新程式不會動到它）。
# 在這個資料夾或其下的資料夾執行的每個 learnhours 命令都讀這個檔；在別處執行時以
# --config {config} 指定。相對路徑以這個資料夾為準。
# 密碼不寫在這裡：郵件伺服器的密碼放環境變數 LEARNHOURS_SMTP_PASSWORD，入口網站的放
# LEARNHOURS_PORTAL_PASSWORD。每個設定的說明見程式的 README「Configuration」。

database_url = "sqlite:///var/warehouse.db"   # 多機關或大型機關可改用 PostgreSQL（docs/operations.md）
plans_dir = "plans"      # 本機關的計畫檔
sites_dir = "sites"      # 入口網站設定（fetch 用）
inbox = "inbox"          # 每晚匯入的資料夾：人員名冊與學習紀錄匯出檔放這裡
outbox = "var/outbox"    # 沒有設定郵件伺服器時，郵件寫成 .eml 檔放這裡

# 請改：以下各項填好後，刪去行首的「# 」（learnhours doctor 會逐項檢查）
# smtp_url = "smtp+starttls://帳號@mail.township.example:587"   # 郵件伺服器
# mail_from = "人事室 <hr@township.example>"                    # 寄件者（不設則用計畫的 reminders.sender）
# admin_email = "it@township.example"                          # 夜間作業失敗時通知誰
# pilot_to = "hr@township.example"       # 試寄：每封郵件都只寄到這個信箱，主旨標明原收件人（建議先試寄一週）
"""


def cmd_init(args: argparse.Namespace) -> int:
    folder: Path = args.directory.expanduser().absolute()
    config = folder / CONFIG_FILE
    if config.exists():
        raise SettingsError(
            f"{config} 已經存在：這個資料夾已是辦公室資料夾，不覆寫機關自己的設定與計畫；"
            f"要檢查它請執行 learnhours doctor --config {config}"
        )
    if folder.exists() and not folder.is_dir():
        raise SettingsError(f"{folder} 已存在，但不是資料夾：請換一個名稱")
    made = create_office(folder)
    learnhours = command_path(anywhere=True)
    shown = printable(str(folder))
    print(f"已建立辦公室資料夾 {shown}（只有擁有者可讀寫）：")
    for path, what in made:
        name = str(path.relative_to(folder)) + ("/" if path.is_dir() else "")
        print(f"  {printable(name):22}{what}")
    print("接下來：")
    print(f"  1. 編輯 plans/{_PLAN} 中標示「請改」的地方：機關名稱、寄件者、人事室信箱、聯絡人")
    print(f"  2. 編輯 {CONFIG_FILE} 最後幾行：郵件伺服器、寄件者、失敗通知與試寄信箱（pilot_to）")
    print("  3. 把人員名冊與學習紀錄匯出檔放進 inbox/，再匯入：")
    print(f"       cd {shown} && {learnhours} ingest inbox")
    print("  4. 檢查是否可以開始第一晚（逐項說明還缺什麼）：")
    print(f"       cd {shown} && {learnhours} doctor")
    print("  5. 建議先試寄一週（pilot_to）：每封郵件只寄到人事室自己的信箱，確認無誤再正式寄出")
    return 0


def create_office(folder: Path) -> list[tuple[Path, str]]:
    """The office folder and what is in it, each file readable by its owner only; nothing that
    exists is overwritten. Returns what was made, with what it is for (in Chinese)."""
    from learnhours.extractors.site_profile import SHIPPED_SITES
    from learnhours.plans import SHIPPED_PLANS

    made: list[tuple[Path, str]] = []
    _folder(folder)
    made.append((_file(folder / CONFIG_FILE, OFFICE_SETTINGS.format(config=folder / CONFIG_FILE)),
                 "設定：資料庫、收件資料夾、郵件伺服器、寄件者"))  # fmt: skip
    plans = _folder(folder / "plans")
    made.append((_copy(SHIPPED_PLANS / _PLAN, plans / _PLAN),
                 "計畫：全國基準（每年 20 小時），標示「請改」的地方改成貴機關的"))  # fmt: skip
    sites = _folder(folder / "sites")
    for profile in sorted(SHIPPED_SITES.glob("*.yaml")):
        _copy(profile, sites / profile.name)
    made.append((sites, "入口網站設定（fetch 用）：agency_code 改成貴機關的服務機關代碼"))
    made.append((_folder(folder / "inbox"), "收件資料夾：每晚匯入其中的名冊與匯出檔"))
    made.append((_folder(folder / "var"), "資料庫、郵件檔（var/outbox）與紀錄：程式寫入，不必編輯"))
    return made


def _folder(path: Path) -> Path:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)  # mkdir's mode is narrowed by the umask, never widened: set it
    return path


def _file(path: Path, text: str) -> Path:
    if not path.exists():
        # Created private from the first byte: never readable by others, even for a moment.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
    return path


def _copy(source: Path, target: Path) -> Path:
    if not target.exists():
        _file(target, "")
        shutil.copyfile(source, target)
    return target
