"""Site profiles: everything site-specific about fetching exports over HTTP, read from YAML."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any

import yaml

KINDS = ("agency-export", "elearn-records")
EXPORT_MODES = ("once", "per_page")
FORMATS = ("csv", "xlsx", "html")

# Columns a downloaded file must carry to count as a complete export of its kind. Kept small on
# purpose: the portal's column order varies and columns come and go (DOMAIN.md), so only the
# columns nothing downstream can do without are checked.
DEFAULT_REQUIRED_COLUMNS = {
    "agency-export": ("身分證字號", "姓名", "課程名稱", "課程類別代碼"),
    "elearn-records": ("身分證字號", "課程名稱", "認證時數", "閱讀時數", "問卷狀態"),
}
DEFAULT_SUFFIX = {"csv": ".csv", "xlsx": ".xlsx", "html": ".xls"}

# A profile given by name (e.g. "lifelong-portal") is looked for in the installation's sites
# folder (the sites_dir setting), then among the shipped ones.
_REPO_SITES_DIR = Path(__file__).resolve().parents[2] / "sites"
SHIPPED_SITES = _REPO_SITES_DIR  # what `learnhours init` copies into an office's own folder


class ProfileError(ValueError):
    """A site profile file is missing, unreadable or has a missing/invalid key."""


@dataclass(frozen=True)
class NetworkSpec:
    connect_timeout_seconds: float = 10.0
    read_timeout_seconds: float = 60.0
    retries: int = 3  # extra attempts after the first, on 429 / 5xx / timeouts / connection errors
    backoff_seconds: float = 5.0  # wait before retry n is backoff_seconds * 2**(n-1), ±25 %
    retry_after_max_seconds: float = 300.0  # a 429/503's Retry-After is waited up to this long
    min_interval_seconds: float = 2.0  # politeness: at least this long between two requests
    user_agent: str = "learnhours (HR office learning-hours check)"


@dataclass(frozen=True)
class CredentialSpec:
    user_env: str = "LEARNHOURS_PORTAL_USER"
    password_env: str = "LEARNHOURS_PORTAL_PASSWORD"
    secret_block: str = ""  # Prefect Secret block holding {"user": ..., "password": ...}


@dataclass(frozen=True)
class LoginSpec:
    url: str
    form: str
    user_field: str
    password_field: str
    success_selector: str
    error_selector: str
    captcha_selector: str
    wrong_password_text: tuple[str, ...]
    extra_fields: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class QuerySpec:
    url: str
    form: str
    fields: dict[str, str]
    date_format: str
    results_selector: str
    empty_selector: str
    extra_fields: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PagesSpec:
    export: str  # "once": one export link for the whole query; "per_page": one per result page
    export_link: str
    next_page: str  # "" when the site never paginates
    postback_form: str = "form"
    max_pages: int = 500


@dataclass(frozen=True)
class ExportSpec:
    format: str
    encodings: tuple[str, ...]
    required_columns: tuple[str, ...]
    suffix: str


@dataclass(frozen=True)
class SiteProfile:
    name: str
    kind: str
    base_url: str
    agency_code: str
    login: LoginSpec
    query: QuerySpec
    pages: PagesSpec
    export: ExportSpec
    network: NetworkSpec = NetworkSpec()
    credentials: CredentialSpec = CredentialSpec()
    source: str = ""  # the file it was read from, for messages

    def with_network(self, **changes: Any) -> SiteProfile:
        """A copy with some network settings changed (tests, the demo against the emulator)."""
        return replace(self, network=replace(self.network, **changes))


def format_query_date(fmt: str, day: date) -> str:
    """Render a date with a profile's date_format ({year}, {roc_year}, {month}, {day})."""
    return fmt.format(year=day.year, roc_year=day.year - 1911, month=day.month, day=day.day)


def load_profile(path_or_name: str | Path, sites_dir: Path | None = None) -> SiteProfile:
    """Read and validate a site profile from a YAML path or a name under `sites_dir` (or the
    shipped sites/)."""
    path = _resolve(path_or_name, sites_dir)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ProfileError(f"{path}: cannot read the site profile ({exc.strerror})") from exc
    except yaml.YAMLError as exc:
        raise ProfileError(f"{path}: not valid YAML: {exc}") from exc
    return profile_from_dict(data, source=str(path))


def profile_from_dict(data: Any, *, source: str = "<dict>") -> SiteProfile:
    """Validate a parsed profile; every error names the file and the key."""
    top = _Section(data, "", source)
    kind = top.text("kind", choices=KINDS)
    net = top.section("network", optional=True)
    network = NetworkSpec(
        connect_timeout_seconds=net.number("connect_timeout_seconds", 10.0, positive=True),
        read_timeout_seconds=net.number("read_timeout_seconds", 60.0, positive=True),
        retries=int(net.number("retries", 3, integer=True)),
        backoff_seconds=net.number("backoff_seconds", 5.0),
        retry_after_max_seconds=net.number("retry_after_max_seconds", 300.0),
        min_interval_seconds=net.number("min_interval_seconds", 2.0),
        user_agent=net.text("user_agent", NetworkSpec.user_agent),
    )
    if not network.user_agent.isascii():
        raise ProfileError(
            f"{source}: key 'network.user_agent' must be plain ASCII (an HTTP header)"
        )
    net.done()
    cred = top.section("credentials", optional=True)
    credentials = CredentialSpec(
        user_env=cred.text("user_env", CredentialSpec.user_env),
        password_env=cred.text("password_env", CredentialSpec.password_env),
        secret_block=cred.text("secret_block", "", allow_empty=True),
    )
    cred.done()
    lg = top.section("login")
    login = LoginSpec(
        url=lg.text("url"),
        form=lg.text("form"),
        user_field=lg.text("user_field"),
        password_field=lg.text("password_field"),
        success_selector=lg.text("success_selector"),
        error_selector=lg.text("error_selector"),
        captcha_selector=lg.text("captcha_selector"),
        wrong_password_text=lg.texts("wrong_password_text"),
        extra_fields=lg.mapping("extra_fields"),
    )
    lg.done()
    q = top.section("query")
    query = QuerySpec(
        url=q.text("url"),
        form=q.text("form"),
        fields=q.mapping("fields", required=True),
        date_format=q.text("date_format"),
        results_selector=q.text("results_selector"),
        empty_selector=q.text("empty_selector"),
        extra_fields=q.mapping("extra_fields"),
    )
    try:
        format_query_date(query.date_format, date(2023, 1, 2))
    except (KeyError, ValueError, IndexError) as exc:
        raise ProfileError(
            f"{source}: key 'query.date_format' is invalid ({exc}); use fields {{year}}, "
            "{roc_year}, {month}, {day}, e.g. '{roc_year:03d}/{month:02d}/{day:02d}'"
        ) from exc
    for name, template in query.fields.items():
        try:
            template.format(agency_code="", date_from="", date_to="")
        except (KeyError, ValueError, IndexError) as exc:
            raise ProfileError(
                f"{source}: key 'query.fields.{name}' is invalid ({exc}); only {{agency_code}}, "
                "{date_from} and {date_to} can be filled in"
            ) from exc
    q.done()
    pg = top.section("pages")
    pages = PagesSpec(
        export=pg.text("export", choices=EXPORT_MODES),
        export_link=pg.text("export_link"),
        next_page=pg.text("next_page", "", allow_empty=True),
        postback_form=pg.text("postback_form", "form"),
        max_pages=int(pg.number("max_pages", 500, integer=True, positive=True)),
    )
    pg.done()
    ex = top.section("export")
    fmt = ex.text("format", "csv", choices=FORMATS)
    export = ExportSpec(
        format=fmt,
        encodings=ex.texts("encodings", ("utf-8-sig", "cp950")),
        required_columns=ex.texts("required_columns", DEFAULT_REQUIRED_COLUMNS[kind]),
        suffix=ex.text("suffix", DEFAULT_SUFFIX[fmt]),
    )
    for enc in export.encodings:
        try:
            "".encode(enc)
        except LookupError as exc:
            raise ProfileError(
                f"{source}: key 'export.encodings' names an unknown encoding {enc!r}"
            ) from exc
    ex.done()
    profile = SiteProfile(
        name=top.text("name"),
        kind=kind,
        base_url=top.text("base_url"),
        agency_code=str(top.text("agency_code", "", allow_empty=True)),
        login=login,
        query=query,
        pages=pages,
        export=export,
        network=network,
        credentials=credentials,
        source=source,
    )
    if not profile.base_url.startswith(("http://", "https://")):
        raise ProfileError(f"{source}: key 'base_url' must start with http:// or https://")
    top.done()
    return profile


def profile_folders(sites_dir: Path | None) -> list[Path]:
    """Where profiles are looked for, each folder once."""
    folders = [sites_dir] if sites_dir else []
    if _REPO_SITES_DIR.resolve() not in [f.resolve() for f in folders]:
        folders.append(_REPO_SITES_DIR)
    return folders


def profile_names(sites_dir: Path | None) -> list[str]:
    return sorted({p.stem for folder in profile_folders(sites_dir) for p in folder.glob("*.y*ml")})


def _resolve(path_or_name: str | Path, sites_dir: Path | None) -> Path:
    path = Path(path_or_name)
    if path.suffix in (".yaml", ".yml") or len(path.parts) > 1:
        if not path.is_file():
            raise ProfileError(f"{path}：找不到此站台設定檔")
        return path
    folders = profile_folders(sites_dir)
    for folder in folders:
        for suffix in (".yaml", ".yml"):
            found = folder / f"{path_or_name}{suffix}"
            if found.is_file():
                return found
    looked = "、".join(str(c) for c in folders)
    known = "、".join(profile_names(sites_dir)) or "（沒有）"
    raise ProfileError(
        f"找不到名為「{path_or_name}」的站台設定檔（找過 {looked}）；可用的有：{known}"
        "（--profile 寫名稱，或 .yaml 檔的路徑）"
    )


_MISSING = object()


class _Section:
    """One mapping of the YAML file; remembers what was read so unknown keys (typos) are caught."""

    def __init__(self, data: Any, where: str, source: str) -> None:
        if not isinstance(data, dict):
            what = f"key '{where}'" if where else "the file"
            raise ProfileError(f"{source}: {what} must be a mapping of keys to values")
        self.data, self.where, self.source = data, where, source
        self.seen: set[str] = set()

    def _key(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def _fail(self, key: str, problem: str) -> ProfileError:
        return ProfileError(f"{self.source}: key '{self._key(key)}' {problem}")

    def _get(self, key: str, default: Any) -> Any:
        self.seen.add(key)
        if key not in self.data or self.data[key] is None:
            if default is _MISSING:
                raise self._fail(key, "is missing")
            return default
        return self.data[key]

    def section(self, key: str, *, optional: bool = False) -> _Section:
        value = self._get(key, {} if optional else _MISSING)
        return _Section(value, self._key(key), self.source)

    def text(
        self,
        key: str,
        default: Any = _MISSING,
        *,
        choices: tuple[str, ...] = (),
        allow_empty: bool = False,
    ) -> str:
        value = self._get(key, default)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            raise self._fail(key, f"must be text, not {type(value).__name__}")
        value = value.strip()
        if not value and not allow_empty:
            raise self._fail(key, "is empty")
        if choices and value not in choices:
            raise self._fail(key, f"is {value!r}; expected one of {', '.join(choices)}")
        return value

    def texts(self, key: str, default: Any = _MISSING) -> tuple[str, ...]:
        value = self._get(key, default)
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise self._fail(key, "must be a list of texts")
        if not value:
            raise self._fail(key, "is an empty list")
        return tuple(v.strip() for v in value)

    def mapping(self, key: str, *, required: bool = False) -> dict[str, str]:
        value = self._get(key, _MISSING if required else {})
        if not isinstance(value, dict):
            raise self._fail(key, "must be a mapping of form field names to values")
        if required and not value:
            raise self._fail(key, "is empty")
        return {str(k): "" if v is None else str(v) for k, v in value.items()}

    def number(
        self,
        key: str,
        default: Any = _MISSING,
        *,
        integer: bool = False,
        positive: bool = False,
    ) -> float:
        value = self._get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self._fail(key, f"must be a number, not {value!r}")
        if integer and value != int(value):
            raise self._fail(key, f"must be a whole number, not {value!r}")
        if value < 0 or (positive and value == 0):
            raise self._fail(key, f"must be {'above' if positive else 'at least'} 0, not {value}")
        return float(value)

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.seen)
        if unknown:
            raise self._fail(unknown[0], "is not a known profile key (a typo?); see docs/fetch.md")
