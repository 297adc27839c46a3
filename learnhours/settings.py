"""The installation's settings, read once: defaults < learnhours.toml < LEARNHOURS_* < command line.

Only this module reads the environment. The command line and the flow build one `Settings` at
start and hand each layer what it needs (a URL, a folder, an address); nothing below them looks
at the environment or at the working directory.

learnhours.toml is found upward from the working directory (like git finds .git), or named by
`--config` / LEARNHOURS_CONFIG, so a command typed in a subfolder opens the same warehouse as one
typed in the project folder. Relative paths and SQLite URLs in the file, and the defaults, are
relative to the file's folder (the project folder); relative ones in the environment or on the
command line are relative to the working directory, as a shell user expects.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

if TYPE_CHECKING:
    from learnhours.notifiers.backends.config import MailSettings

CONFIG_FILE = "learnhours.toml"
ENV_PREFIX = "LEARNHOURS_"
ENV_CONFIG = "LEARNHOURS_CONFIG"
MailBackendName = Literal["file", "console", "memory", "smtp"]


class SettingsError(ValueError):
    """A setting that cannot be used; the message names where it was set and what is expected."""


class Settings(BaseModel):
    """Every setting an operator can make. Field descriptions are the README's configuration table."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    database_url: str = Field(
        "sqlite:///var/warehouse.db",
        description="the warehouse (`postgresql+psycopg://user@host:5432/db` for real deployments; "
        "password in `~/.pgpass` or `PGPASSWORD`, not in the URL)",
    )
    plans_dir: Path = Field(Path("plans"), description="where plan files live")
    sites_dir: Path = Field(Path("sites"), description="where portal site profiles live (`fetch`)")
    roster_codes: Path | None = Field(
        None,
        description="the office's own roster code table, added to the shipped ones "
        "(docs/rosters.md)",
    )
    inbox: Path = Field(Path("var/inbox"), description="the folder `learnhours run` ingests")
    outbox: Path = Field(
        Path("var/outbox"), description="the file outbox: `.eml` files when no SMTP is configured"
    )
    smtp_url: str | None = Field(
        None,
        description="unset: the file outbox. `smtp://host:25`, `smtp+starttls://user@host:587`, "
        "`smtps://user@host:465`",
    )
    smtp_password: SecretStr | None = Field(None, description="never printed; environment only")
    smtp_password_block: str | None = Field(
        None, description="or the name of a Prefect Secret block holding the SMTP password"
    )
    workbook_password: SecretStr | None = Field(
        None,
        description="the password HR opens the summary's workbook with (Excel asks for it; "
        "docs/privacy.md); unset: the summary goes without its workbook. Environment only",
    )
    workbook_password_block: str | None = Field(
        None, description="or the name of a Prefect Secret block holding the workbook password"
    )
    mail_backend: MailBackendName | None = Field(
        None, description="force `file`, `console`, `memory` or `smtp`"
    )
    mail_from: str | None = Field(
        None, description="the sender of every mail (else the plan's `reminders.sender`)"
    )
    hr_addresses: str = Field(
        "", description="HR recipients, comma-separated (else the plan's `hr_addresses`)"
    )
    templates_dir: Path | None = Field(
        None,
        description="a folder of the agency's own mail templates: a file named as a shipped one "
        "(`reminder.html`, `digest.txt` …) replaces it (docs/templates.md); unset: the shipped ones",
    )
    admin_email: str | None = Field(
        None, description="who gets the notice when a nightly run fails"
    )
    syslog_address: str = Field(
        "/dev/log",
        description="a failed night is also written here for the machine's monitoring, priority "
        "err, as `learnhours` (`journalctl -t learnhours`): the syslog socket of the journal or "
        "rsyslog; empty: nowhere",
    )
    pilot_to: str | None = Field(
        None,
        description="pilot mode for the first nights: every mail of the night goes to this one "
        "address instead, its subject naming the real recipient; pilot mail is recorded apart and "
        "never counts as sent, so the first real night sends everything (docs/operations.md)",
    )
    portal_user: str | None = Field(
        None, description="the agency's portal account for `fetch` (docs/fetch.md)"
    )
    portal_password: SecretStr | None = Field(None, description="its password; environment only")

    ingest_wait_seconds: float = Field(
        3600,
        ge=0,
        description="how long a run waits for another run's ingest to finish before it fails",
    )
    database_lock_wait_seconds: float = Field(
        30,
        ge=0,
        description="SQLite: how long a statement waits for another program writing the "
        "warehouse before the command stops and says so",
    )
    workers: int = Field(
        1,
        ge=1,
        le=64,
        description="how many workers judge a plan of several agencies side by side, each a share "
        "of its agencies (a Dask cluster of that many processes on this machine; "
        "docs/operations.md); 1: the whole plan in the run's own process",
    )
    dask_address: str | None = Field(
        None,
        description="a Dask scheduler (`tls://host:8786`) whose workers, on other machines, judge "
        "the shares; they need learnhours installed and the same settings (PostgreSQL, mail)",
    )
    dask_tls_ca_file: Path | None = Field(
        None, description="the CA that signed the Dask scheduler's, workers' and this machine's "
        "certificates (docs/privacy.md)",
    )
    dask_tls_cert_file: Path | None = Field(
        None, description="this machine's certificate for the Dask cluster (PEM)"
    )
    dask_tls_key_file: Path | None = Field(
        None, description="its private key (PEM), readable by the learnhours user only"
    )
    dask_plain_tcp: bool = Field(
        False, description="accept a `tcp://` scheduler that is not on this machine: no "
        "encryption and no login, for a network no one else can reach",
    )
    # How long what the product holds is kept (docs/privacy.md: each default and its reason);
    # `learnhours purge` and the nightly run let go of what is older.
    keep_inbox_days: int = Field(
        30, ge=1, description="inbox files once loaded, counted from the last time their content "
        "was delivered (the roster and contacts list in force stay)",
    )
    keep_source_rows_days: int = Field(
        730, ge=1, description="each file's rows as delivered (`explain --source`), counted from "
        "the file's last delivery",
    )
    keep_rejected_rows_days: int = Field(
        730, ge=1, description="rows refused at load, counted from their file's last delivery"
    )
    keep_left_people_days: int = Field(
        730, ge=1, description="people no longer on the roster, with their records, counted from "
        "the last roster that listed them",
    )
    keep_notices_days: int = Field(
        730, ge=400, description="notices delivered, set aside or refused (the record that a "
        "person was reminded); at least 400, past any plan year, so none goes out twice",
    )
    keep_outbox_days: int = Field(400, ge=1, description="`.eml` files in the file outbox")
    keep_run_logs_days: int = Field(
        400, ge=1, description="`learnhours runs` and the entries of var/log/errors.log"
    )
    # Where the settings came from: the project folder and the file, for messages.
    root: Path = Field(Path("."), exclude=True)
    config_file: Path | None = Field(None, exclude=True)
    # The environment as read, for the one thing named by data rather than by this module: the
    # variables a site profile names for its portal account (credentials.user_env).
    environ: dict[str, str] = Field(default_factory=dict, exclude=True, repr=False)

    @property
    def hr_list(self) -> tuple[str, ...]:
        parts = self.hr_addresses.replace(";", ",").split(",")
        return tuple(a.strip() for a in parts if a.strip())

    @property
    def prefect_home(self) -> Path:
        return self.root / "var" / "prefect"

    @property
    def errors_log(self) -> Path:
        """Where a command's unexpected errors are written in full, IDs masked."""
        return self.root / "var" / "log" / "errors.log"

    def mail(self) -> MailSettings:
        """What the mail backends need (notifiers.backends.config), checked: a mistake in the
        SMTP settings is a MailConfigError naming the setting, raised when a command that sends
        mail starts rather than when its mail is due."""
        from learnhours.notifiers.backends.config import MailSettings, checked

        mail = MailSettings(
            outbox_dir=self.outbox,
            backend=self.mail_backend,
            smtp_url=self.smtp_url,
            password=self.smtp_password.get_secret_value() if self.smtp_password else None,
            password_block=self.smtp_password_block,
        )
        checked(mail)
        return mail

    def credential_environ(self) -> dict[str, str]:
        """What a site profile's credential variables are looked up in: the environment, with
        the portal account set here under the default names."""
        found = dict(self.environ)
        if self.portal_user:
            found["LEARNHOURS_PORTAL_USER"] = self.portal_user
        if self.portal_password:
            found["LEARNHOURS_PORTAL_PASSWORD"] = self.portal_password.get_secret_value()
        return found


# Settings that may only come from the environment: a file in a project folder is readable by more
# people and ends up in backups and version control.
SECRET = frozenset({"smtp_password", "portal_password", "workbook_password"})
# What the notice of a failed night needs (mail_admin, the syslog line): read alone when the
# settings as a whole cannot be (load_settings(only=…)), so a mistake elsewhere is told too.
NOTICE = frozenset({"outbox", "smtp_url", "smtp_password", "smtp_password_block", "mail_backend",
                    "mail_from", "admin_email", "syslog_address"})  # fmt: skip
_PATHS = frozenset({"plans_dir", "sites_dir", "roster_codes", "inbox", "outbox", "templates_dir",
                    "dask_tls_ca_file", "dask_tls_cert_file", "dask_tls_key_file"})
SETTING_NAMES = tuple(
    n for n in Settings.model_fields if n not in ("root", "config_file", "environ")
)


def env_name(field: str) -> str:
    return ENV_PREFIX + field.upper()


@dataclass(frozen=True)
class Source:
    """Values from one place, with how to name that place in an error."""

    where: str
    base: Path  # what relative paths in it are relative to
    values: Mapping[str, Any]


def find_config(start: Path) -> Path | None:
    """learnhours.toml in `start` or the nearest folder above it."""
    for folder in (start, *start.parents):
        candidate = folder / CONFIG_FILE
        if candidate.is_file():
            return candidate
    return None


def _read_toml(path: Path, only: frozenset[str] | None = None) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SettingsError(f"{path}: 無法讀取設定檔（{exc.strerror or exc}）") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{path}: 設定檔格式錯誤（TOML）：{exc}") from None
    if only is not None:
        data = {k: v for k, v in data.items() if k in only}
    unknown = sorted(set(data) - set(SETTING_NAMES))
    if unknown:
        raise SettingsError(
            f"{path}: 不認得的設定「{unknown[0]}」；可設定：{'、'.join(SETTING_NAMES)}"
        )
    secret = sorted(set(data) & SECRET)
    if secret:
        raise SettingsError(
            f"{path}: 「{secret[0]}」是密碼，不可寫在設定檔；請改用環境變數 {env_name(secret[0])}"
        )
    return data


# An empty environment variable is no setting, but for these, where empty is a value of its own.
_EMPTY_IS_A_VALUE = frozenset({"syslog_address"})  # empty: a failed night written nowhere


def _from_env(environ: Mapping[str, str]) -> dict[str, str]:
    found = {}
    for name in SETTING_NAMES:
        value = environ.get(env_name(name))
        if value is not None and (value.strip() or name in _EMPTY_IS_A_VALUE):
            found[name] = value.strip()
    return found


def _resolved(name: str, value: Any, base: Path) -> Any:
    """A relative path or SQLite file, made relative to `base` instead of the working directory."""
    if name in _PATHS and value not in (None, ""):
        path = Path(value).expanduser()
        return path if path.is_absolute() else base / path
    if name == "database_url" and isinstance(value, str) and value.startswith("sqlite:///"):
        file = value.removeprefix("sqlite:///")
        head, sep, query = file.partition("?")
        if head and not head.startswith(("/", ":memory:", "file:")):
            return f"sqlite:///{base / head}{sep}{query}"
    return value


def load_settings(
    *,
    config: Path | None = None,
    cwd: Path | None = None,
    environ: Mapping[str, str] | None = None,
    only: frozenset[str] | None = None,
    read_config: bool = True,
    **overrides: Any,
) -> Settings:
    """The settings for a command started in `cwd` (default: the working directory).

    `overrides` are the command line's (None: not given). Raises SettingsError naming the file or
    variable of a value that cannot be used. `only`: these settings read, the others left at
    their defaults (NOTICE: what tells a person that the settings as a whole are wrong).
    `read_config` False: no learnhours.toml read (one that cannot be is what went wrong).
    """
    environ = os.environ if environ is None else environ
    cwd = (cwd or Path.cwd()).resolve()
    named = config or (Path(environ[ENV_CONFIG]) if environ.get(ENV_CONFIG) else None)
    config_file: Path | None
    if named is not None:
        config_file = (cwd / named).resolve() if not named.is_absolute() else named
        if not config_file.is_file():
            raise SettingsError(f"{config_file}: 找不到設定檔（--config / {ENV_CONFIG}）")
    else:
        config_file = find_config(cwd) if read_config else None
    root = config_file.parent if config_file else cwd
    defaults = {
        name: field.default
        for name, field in Settings.model_fields.items()
        if name in SETTING_NAMES
    }
    sources = [Source("預設值", root, defaults)]
    if config_file is not None:
        sources.append(Source(str(config_file), root, _read_toml(config_file, only)))
    sources.append(Source("環境變數", cwd, _from_env(environ)))
    sources.append(Source("命令列", cwd, {k: v for k, v in overrides.items() if v is not None}))
    if only is not None:
        sources = [Source(s.where, s.base, {k: v for k, v in s.values.items() if k in only})
                   for s in sources]  # fmt: skip
    merged: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for source in sources:
        for name, value in source.values.items():
            merged[name] = _resolved(name, value, source.base)
            origin[name] = source.where
    try:
        return Settings.model_validate(
            {**merged, "root": root, "config_file": config_file, "environ": dict(environ)}
        )
    except ValidationError as exc:
        err = exc.errors()[0]
        name = str(err["loc"][0]) if err["loc"] else ""
        where = origin.get(name, "")
        label = env_name(name) if where == "環境變數" else name
        raise SettingsError(f"設定 {label}（來自{where}）無法使用：{_expected(err)}") from None


# Where the password of a URL setting belongs instead of the URL.
_URL_PASSWORD_HOME = {
    "database_url": "請把密碼放在 ~/.pgpass 或環境變數 PGPASSWORD，位址只寫使用者"
    "（postgresql+psycopg://user@host:5432/db）",
    "smtp_url": f"請把密碼放在環境變數 {env_name('smtp_password')}，位址只寫使用者"
    "（smtps://user@host:465）",
}


def parameter_overrides(given: Mapping[str, Any]) -> dict[str, Any]:
    """Settings a flow run is given as its parameter, checked, as load_settings' keyword
    arguments: setting names, and `config` (the learnhours.toml to read); None is not given.

    Never a password: Prefect keeps a run's parameters and shows them in its UI. A secret setting
    or a URL carrying a password is refused (SettingsError, the password never repeated); the run
    reads passwords from the environment where it executes.
    """
    overrides: dict[str, Any] = {}
    for name, value in given.items():
        if value is None:
            continue
        if name == "config":
            overrides["config"] = Path(value)
            continue
        if name in SECRET:
            raise SettingsError(
                f"「{name}」是密碼，不可做為夜間作業的參數（Prefect 會保存並顯示參數）；"
                f"請改用環境變數 {env_name(name)}"
            )
        if name not in SETTING_NAMES:
            raise SettingsError(f"不認得的設定「{name}」；可設定：{'、'.join(SETTING_NAMES)}")
        if name in _URL_PASSWORD_HOME and _carries_password(str(value)):
            raise SettingsError(
                f"設定 {name} 的位址含有密碼，不可做為夜間作業的參數（Prefect 會保存並顯示參數）；"
                f"{_URL_PASSWORD_HOME[name]}"
            )
        overrides[name] = value
    return overrides


def _carries_password(url: str) -> bool:
    """`scheme://user:password@host/…`, or a password in the query (libpq reads `?password=`)."""
    _scheme, sep, rest = url.partition("://")
    where, _, query = rest.partition("?")
    userinfo, at, _host = where.split("/", 1)[0].rpartition("@")
    in_userinfo = bool(sep and at and userinfo.partition(":")[2])
    return in_userinfo or any(
        part.partition("=")[0].strip().lower() == "password" for part in query.split("&")
    )


def _expected(err: Mapping[str, Any]) -> str:
    wrote = f"，但寫的是「{err.get('input')}」"
    if err["type"] == "literal_error":
        return f"應為 {'、'.join(get_args(MailBackendName))} 之一{wrote}"
    if err["type"] in ("string_type", "path_type"):
        return f"應為文字{wrote}"
    return f"{err['msg']}{wrote}"


def configuration_table() -> list[tuple[str, str, str]]:
    """(variable, default, meaning) for each setting: the README's configuration table."""
    rows = []
    for name in SETTING_NAMES:
        field = Settings.model_fields[name]
        default = field.default
        shown = "" if default in (None, "") else f"`{default}`"
        rows.append((f"`{env_name(name)}`", shown, field.description or ""))
    return rows
