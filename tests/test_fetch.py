"""Fetching exports over HTTP, against the local portal emulator with injected faults."""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import sys
import types
from contextlib import ExitStack
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from learnhours.emulator import (
    AGENCY_EXPORT_HEADER,
    ELEARN_HEADER,
    FaultPlan,
    PortalEmulator,
    make_national_id,
    sample_elearn_rows,
    serve,
)
from learnhours.extractors.portal import (
    CaptchaRequired,
    Credentials,
    DownloadCorrupt,
    FetchError,
    LayoutChanged,
    LoginError,
    LoginPageChanged,
    MissingCredentials,
    PortalUnavailable,
    WrongPassword,
    check_export,
    fetch_exports,
    resolve_credentials,
)
from learnhours.extractors.site_profile import ProfileError, load_profile, profile_from_dict
from tests.factories import FakeClock

AGENCY = "379680000A"
USER, PASSWORD = "hr-zhunan", "s3cret-pw!"
CREDS = Credentials(USER, PASSWORD)
YEAR = (date(2023, 1, 1), date(2023, 12, 31))


# -- factories --------------------------------------------------------------------------------
def agency_row(person: int, course: int, *, agency: str = AGENCY, ended: str = "112/05/10") -> dict:
    return {
        "身分證字號": make_national_id("A", 1 + person % 2, 100 + person),
        "姓名": f"測試員{person}",
        "服務機關代碼": agency,
        "服務機關": "苗栗縣竹南鎮公所",
        "課程代碼": f"C{course:03d}",
        "課程名稱": f"環境教育課程{course}",
        "期別": "1",
        "開課機關": "公務人力發展學院",
        "課程類別代碼": "337",
        "課程類別": "環境教育",
        "學習性質": "2",
        "數位時數": "0",
        "實體時數": "2",
        "認證時數": "2",
        "開課起始日期": ended,
        "開課結束日期": ended,
        "上課起始日期": ended,
        "上課結束日期": ended,
        "訓練成績": "",
        "出勤上課狀況": "全勤",
        "登錄日期": "112/05/20",
    }


def agency_rows(people: int = 6, courses: int = 2) -> list[dict]:
    return [agency_row(p, c) for p in range(people) for c in range(courses)]


@pytest.fixture
def portal():
    """Start an emulator: portal(records=..., faults=..., **options) -> (emulator, base_url)."""
    with ExitStack() as stack:

        def start(records=None, elearn_records=None, faults=None, **options):
            emulator = PortalEmulator(
                {USER: PASSWORD},
                agency_rows() if records is None else records,
                sample_elearn_rows(people=4) if elearn_records is None else elearn_records,
                faults,
                **options,
            )
            return emulator, stack.enter_context(serve(emulator))

        yield start


def profile(name: str, base_url: str, **network):
    """A shipped profile pointed at the emulator, with fast timeouts and no waiting."""
    settings = dict(
        connect_timeout_seconds=0.3,
        read_timeout_seconds=0.3,
        retries=2,
        backoff_seconds=0,
        min_interval_seconds=0,
    )
    settings.update(network)
    return replace(load_profile(name), base_url=base_url).with_network(**settings)


def per_page(p):
    return replace(p, pages=replace(p.pages, export="per_page", export_link="a.export-page"))


def read_csv(path: Path, encoding: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_bytes().decode(encoding), newline="")))


def inbox_files(inbox: Path) -> list[str]:
    return sorted(p.name for p in inbox.iterdir()) if inbox.exists() else []


def sha256(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


# -- happy paths ------------------------------------------------------------------------------
def test_portal_export_saved_under_a_readable_name_and_second_fetch_skips_it(
    portal, tmp_path, caplog
):
    other_agency = agency_row(99, 1, agency="376440000A")
    outside_range = agency_row(98, 1, ended="111/12/31")
    emulator, url = portal(records=[*agency_rows(), other_agency, outside_range], encoding="cp950")
    p = profile("lifelong-portal", url)
    caplog.set_level(logging.DEBUG)

    first = fetch_exports(p, tmp_path, *YEAR, credentials=CREDS)

    assert len(first.saved) == 1 and not first.skipped
    saved = first.saved[0]
    body = saved.path.read_bytes()
    # What HR sees in the rejected-row list: profile, query dates, page, short content hash.
    assert saved.path.name == f"lifelong-portal-2023-01-01_2023-12-31-p1-{sha256(body)[:12]}.csv"
    assert saved.sha256 == sha256(body) and saved.bytes == len(body)
    rows = read_csv(saved.path, "cp950")  # Big5 as served
    assert tuple(rows[0]) == AGENCY_EXPORT_HEADER
    assert len(rows) - 1 == 12  # the other agency's row and the 2022 row are not in the query

    second = fetch_exports(p, tmp_path, *YEAR, credentials=CREDS)
    assert not second.saved
    assert [(s.sha256, s.reason) for s in second.skipped] == [
        (saved.sha256, "already in the inbox")
    ]
    assert inbox_files(tmp_path) == [saved.path.name]
    # Personal data stays out of the logs: no password, no account, no national ID.
    assert PASSWORD not in caplog.text and USER not in caplog.text
    assert make_national_id("A", 1, 100) not in caplog.text


def test_elearn_records_per_page_saved_and_skipped_when_seen(portal, tmp_path):
    emulator, url = portal(elearn_records=sample_elearn_rows(people=5), page_size=4)
    p = profile("elearn-plus", url)

    report = fetch_exports(p, tmp_path / "inbox", *YEAR, credentials=CREDS)

    assert report.pages == 4 and len(report.saved) == 4  # 15 rows, 4 a page
    rows = [r for f in report.saved for r in read_csv(f.path, "utf-8-sig")[1:]]
    assert tuple(read_csv(report.saved[0].path, "utf-8-sig")[0]) == ELEARN_HEADER
    assert len(rows) == 15
    seen = {f.sha256 for f in report.saved}
    again = fetch_exports(p, tmp_path / "other-inbox", *YEAR, credentials=CREDS, seen_hashes=seen)
    assert not again.saved and {s.reason for s in again.skipped} == {"seen before"}
    assert inbox_files(tmp_path / "other-inbox") == []


def test_portal_postback_paging_with_an_export_per_page(portal, tmp_path):
    emulator, url = portal(records=agency_rows(people=10, courses=2), page_size=6)
    report = fetch_exports(
        per_page(profile("lifelong-portal", url)), tmp_path, *YEAR, credentials=CREDS
    )
    assert report.pages == 4 and len(report.saved) == 4
    assert sum(len(read_csv(f.path, "utf-8-sig")) - 1 for f in report.saved) == 20
    assert [f.path.name for f in report.saved] == [
        f"lifelong-portal-2023-01-01_2023-12-31-p{n}-{f.sha256[:12]}.csv"
        for n, f in enumerate(report.saved, 1)
    ]


def test_saved_names_carry_no_personal_data_and_no_portal_file_name(portal, tmp_path):
    emulator, url = portal(records=agency_rows(people=3))
    p = replace(profile("lifelong-portal", url), name="終身學習 入口/網站")
    report = fetch_exports(p, tmp_path, date(2023, 3, 1), date(2023, 8, 31), credentials=CREDS)
    name = report.saved[0].path.name
    assert name == f"終身學習-入口-網站-2023-03-01_2023-08-31-p1-{report.saved[0].sha256[:12]}.csv"
    assert "LearnRecord" not in name  # the portal's Content-Disposition name is not used
    assert USER not in name and make_national_id("A", 1, 100) not in name


def test_file_already_in_inbox_under_another_name_is_skipped(portal, tmp_path):
    emulator, url = portal()
    p = profile("lifelong-portal", url)
    first = fetch_exports(p, tmp_path / "a", *YEAR, credentials=CREDS)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "downloaded-by-hand.csv").write_bytes(first.saved[0].path.read_bytes())
    again = fetch_exports(p, tmp_path / "b", *YEAR, credentials=CREDS)
    assert not again.saved and again.skipped[0].reason == "already in the inbox"


def test_a_name_that_looks_like_a_hash_is_not_trusted_only_the_content(portal, tmp_path):
    emulator, url = portal()
    p = profile("lifelong-portal", url)
    export = fetch_exports(p, tmp_path / "a", *YEAR, credentials=CREDS).saved[0]
    inbox = tmp_path / "b"
    inbox.mkdir()
    # Files named as an older fetcher named them, and as this one does, but holding other bytes
    # (edited by hand, or cut short by a copy): the export is still missing from this inbox.
    (inbox / f"{export.sha256}.csv").write_bytes(b"edited by hand")
    (inbox / export.path.name).write_bytes(b"cut short")

    report = fetch_exports(p, inbox, *YEAR, credentials=CREDS)

    assert not report.skipped and len(report.saved) == 1
    assert report.saved[0].path.read_bytes() == export.path.read_bytes()
    assert report.saved[0].path.name == export.path.name.replace(".csv", "-2.csv")
    assert (inbox / export.path.name).read_bytes() == b"cut short"  # never overwritten


def test_empty_query_is_reported_not_a_layout_change(portal, tmp_path):
    emulator, url = portal(records=[])
    report = fetch_exports(profile("lifelong-portal", url), tmp_path, *YEAR, credentials=CREDS)
    assert report.no_records and not report.saved and inbox_files(tmp_path) == []


# -- transient failures -----------------------------------------------------------------------
def test_server_errors_are_retried_until_success(portal, tmp_path):
    emulator, url = portal(faults=FaultPlan(server_errors=2))
    report = fetch_exports(
        profile("lifelong-portal", url, retries=2), tmp_path, *YEAR, credentials=CREDS
    )
    assert len(report.saved) == 1
    assert [path for _, _, path in emulator.request_log[:3]] == ["/Login.aspx"] * 3


def test_server_errors_beyond_the_retries_raise_portal_unavailable(portal, tmp_path):
    emulator, url = portal(faults=FaultPlan(server_errors=50))
    with pytest.raises(PortalUnavailable, match="login page .* failed 3 time.*HTTP 500"):
        fetch_exports(
            profile("lifelong-portal", url, retries=2), tmp_path, *YEAR, credentials=CREDS
        )
    assert len(emulator.request_log) == 3


def test_client_errors_are_not_retried(portal, tmp_path):
    emulator, url = portal()
    p = profile("lifelong-portal", url, retries=3)
    p = replace(p, query=replace(p.query, url="/Agency/Moved.aspx"))
    with pytest.raises(LayoutChanged, match="404"):
        fetch_exports(p, tmp_path, *YEAR, credentials=CREDS)
    assert [path for _, _, path in emulator.request_log].count("/Agency/Moved.aspx") == 1


def test_response_slower_than_the_timeout_is_retried(portal, tmp_path):
    emulator, url = portal(faults=FaultPlan(slow_requests=1, delay_seconds=0.8))
    report = fetch_exports(
        profile("lifelong-portal", url, read_timeout_seconds=0.3),
        tmp_path,
        *YEAR,
        credentials=CREDS,
    )
    assert len(report.saved) == 1
    assert [path for _, _, path in emulator.request_log[:2]] == ["/Login.aspx"] * 2


def test_portal_always_slower_than_the_timeout_is_unavailable(portal, tmp_path):
    emulator, url = portal(faults=FaultPlan(slow_requests=10, delay_seconds=0.8))
    with pytest.raises(PortalUnavailable, match="no answer within 0.3 s"):
        fetch_exports(
            profile("lifelong-portal", url, read_timeout_seconds=0.3, retries=1),
            tmp_path,
            *YEAR,
            credentials=CREDS,
        )


def test_requests_keep_the_profiles_minimum_interval(portal, tmp_path):
    emulator, url = portal()
    clock = FakeClock()  # stands still between requests: every gap must be slept in full
    fetch_exports(
        profile("lifelong-portal", url, min_interval_seconds=0.1),
        tmp_path,
        *YEAR,
        credentials=CREDS,
        clock=clock,
        sleep=clock.sleep,
    )
    requests = len(emulator.request_log)
    assert requests >= 4
    assert clock.sleeps == pytest.approx([0.1] * (requests - 1))


def test_minimum_interval_sleeps_only_the_time_left(portal, tmp_path):
    emulator, url = portal()
    clock = FakeClock(step=0.03)  # each clock read is 30 ms later: part of the gap has passed
    fetch_exports(
        profile("lifelong-portal", url, min_interval_seconds=0.1),
        tmp_path,
        *YEAR,
        credentials=CREDS,
        clock=clock,
        sleep=clock.sleep,
    )
    assert clock.sleeps == pytest.approx([0.07] * (len(emulator.request_log) - 1))


def test_retries_wait_a_doubling_backoff(portal, tmp_path):
    emulator, url = portal(faults=FaultPlan(server_errors=2))
    clock = FakeClock()
    report = fetch_exports(
        profile("lifelong-portal", url, retries=2, backoff_seconds=1.5),
        tmp_path,
        *YEAR,
        credentials=CREDS,
        clock=clock,
        sleep=clock.sleep,
        rand=lambda: 0.5,  # the middle of the jitter: the plain doubling
    )
    assert len(report.saved) == 1
    assert clock.sleeps == pytest.approx([1.5, 3.0])  # before retry 1 and retry 2 (no jitter)


@pytest.mark.parametrize("status", [429, 503])
def test_i15_13_busy_portal_429_503_is_retried_with_jittered_backoff(portal, tmp_path, status):
    emulator, url = portal(faults=FaultPlan(busy_answers=2, busy_status=status))
    clock, draws = FakeClock(), iter([0.0, 1.0])
    report = fetch_exports(
        profile("lifelong-portal", url, retries=2, backoff_seconds=2),
        tmp_path,
        *YEAR,
        credentials=CREDS,
        clock=clock,
        sleep=clock.sleep,
        rand=lambda: next(draws),
    )
    assert len(report.saved) == 1
    # 2 s and 4 s, each drawn within ±25 %: the lowest and the highest draw.
    assert clock.sleeps == pytest.approx([1.5, 5.0])
    assert [path for _, _, path in emulator.request_log[:3]] == ["/Login.aspx"] * 3


@pytest.mark.parametrize(
    ("asked", "bound", "waits"),
    [("40", 300, [40.0, 40.0]), ("86400", 60, [60.0, 60.0]), ("0", 300, [1.0, 2.0])],
    ids=["honoured", "bounded", "zero-is-backoff"],
)
def test_i15_13_retry_after_is_honoured_within_the_bound(portal, tmp_path, asked, bound, waits):
    emulator, url = portal(faults=FaultPlan(busy_answers=2, busy_status=429, retry_after=asked))
    clock = FakeClock()
    report = fetch_exports(
        profile(
            "lifelong-portal", url, retries=2, backoff_seconds=1, retry_after_max_seconds=bound
        ),
        tmp_path,
        *YEAR,
        credentials=CREDS,
        clock=clock,
        sleep=clock.sleep,
        rand=lambda: 0.5,
    )
    assert len(report.saved) == 1
    assert clock.sleeps == pytest.approx(waits)


def test_i15_13_retry_after_as_an_http_date():
    from datetime import UTC, datetime

    from learnhours.extractors.portal.client import retry_after

    now = datetime(2026, 12, 2, 3, 0, 0, tzinfo=UTC)
    assert retry_after("Wed, 02 Dec 2026 03:00:30 GMT", now) == 30
    assert retry_after("Wed, 02 Dec 2026 02:59:00 GMT", now) == 0  # already past: no wait
    assert retry_after("soon", now) == 0 and retry_after(None, now) == 0


def test_i15_13_portal_busy_through_every_retry_is_portal_unavailable(portal, tmp_path):
    emulator, url = portal(faults=FaultPlan(busy_answers=50, busy_status=429, retry_after="5"))
    clock = FakeClock()
    with pytest.raises(PortalUnavailable, match="HTTP 429, Retry-After 5 s.*stayed busy"):
        fetch_exports(
            profile("lifelong-portal", url, retries=2),
            tmp_path,
            *YEAR,
            credentials=CREDS,
            clock=clock,
            sleep=clock.sleep,
        )
    assert len(emulator.request_log) == 3 and clock.sleeps == pytest.approx([5.0, 5.0])


def test_i15_13_profile_sets_the_retry_after_bound():
    data = _profile_dict()
    data.setdefault("network", {})["retry_after_max_seconds"] = 45
    assert profile_from_dict(data, source="sites/t.yaml").network.retry_after_max_seconds == 45


# -- login failures ---------------------------------------------------------------------------
def test_wrong_password_is_named_and_never_logged(portal, tmp_path, caplog):
    emulator, url = portal()
    caplog.set_level(logging.DEBUG)
    with pytest.raises(WrongPassword, match="refused the account or password") as failure:
        fetch_exports(
            profile("lifelong-portal", url),
            tmp_path,
            *YEAR,
            credentials=Credentials(USER, "not-the-password"),
        )
    assert failure.value.cause == "wrong password"
    assert "not-the-password" not in str(failure.value) + caplog.text
    assert "not-the-password" not in repr(Credentials(USER, "not-the-password"))
    assert inbox_files(tmp_path) == []


def test_wrong_password_on_elearn(portal, tmp_path):
    emulator, url = portal()
    with pytest.raises(WrongPassword):
        fetch_exports(
            profile("elearn-plus", url), tmp_path, *YEAR, credentials=Credentials(USER, "nope")
        )


@pytest.mark.parametrize("site", ["lifelong-portal", "elearn-plus"])
def test_captcha_on_the_login_page_stops_the_run(portal, tmp_path, site):
    emulator, url = portal(faults=FaultPlan(captcha=True))
    with pytest.raises(CaptchaRequired, match="captcha") as failure:
        fetch_exports(profile(site, url), tmp_path, *YEAR, credentials=CREDS)
    assert failure.value.cause == "captcha shown"
    assert emulator.logins == 0


@pytest.mark.parametrize("site", ["lifelong-portal", "elearn-plus"])
def test_changed_login_page_is_a_layout_change_naming_the_key(portal, tmp_path, site):
    emulator, url = portal(faults=FaultPlan(changed_login_page=True))
    with pytest.raises(LoginPageChanged, match=r"login\.(form|user_field)") as failure:
        fetch_exports(profile(site, url), tmp_path, *YEAR, credentials=CREDS)
    assert isinstance(failure.value, LayoutChanged) and isinstance(failure.value, LoginError)
    assert failure.value.cause == "page changed"


def test_login_without_the_button_field_is_reported_as_a_changed_page(portal, tmp_path):
    emulator, url = portal()
    p = profile("lifelong-portal", url)
    p = replace(p, login=replace(p.login, extra_fields={}))
    with pytest.raises(LoginPageChanged, match="neither login.success_selector"):
        fetch_exports(p, tmp_path, *YEAR, credentials=CREDS)


# -- sessions ---------------------------------------------------------------------------------
def test_h_session_expiring_mid_pagination_logs_in_again_once_and_continues(portal, tmp_path):
    emulator, url = portal(
        elearn_records=sample_elearn_rows(people=5),
        page_size=3,
        faults=FaultPlan(expire_session_after_pages=2),
    )
    report = fetch_exports(profile("elearn-plus", url), tmp_path, *YEAR, credentials=CREDS)
    assert report.relogins == 1 and emulator.logins == 2
    assert report.pages == 5 and len(report.saved) == 5
    assert sum(len(read_csv(f.path, "utf-8-sig")) - 1 for f in report.saved) == 15


def test_portal_session_expiring_mid_postback_paging(portal, tmp_path):
    emulator, url = portal(
        records=agency_rows(people=8), page_size=5, faults=FaultPlan(expire_session_after_pages=1)
    )
    report = fetch_exports(
        per_page(profile("lifelong-portal", url)), tmp_path, *YEAR, credentials=CREDS
    )
    assert report.relogins == 1 and len(report.saved) == 4


def test_session_expiring_again_without_progress_fails(portal, tmp_path):
    emulator, url = portal(faults=FaultPlan(expire_session_after_pages=1, expiring_sessions=9))
    with pytest.raises(LoginError, match="ended the session again"):
        fetch_exports(profile("elearn-plus", url), tmp_path, *YEAR, credentials=CREDS)


# -- broken downloads and layout changes ------------------------------------------------------
def test_download_cut_short_is_not_saved(portal, tmp_path):
    emulator, url = portal(faults=FaultPlan(truncated_downloads=99))
    with pytest.raises(DownloadCorrupt, match="cut short") as failure:
        fetch_exports(
            profile("lifelong-portal", url, retries=1), tmp_path, *YEAR, credentials=CREDS
        )
    assert inbox_files(tmp_path) == []  # not even a partial file
    assert failure.value.report is not None and not failure.value.report.saved


def test_download_cut_short_once_is_fetched_again(portal, tmp_path):
    emulator, url = portal(faults=FaultPlan(truncated_downloads=1))
    report = fetch_exports(profile("lifelong-portal", url), tmp_path, *YEAR, credentials=CREDS)
    assert len(report.saved) == 1
    check_export(report.saved[0].path.read_bytes(), load_profile("lifelong-portal"))


def test_truncated_file_with_a_matching_length_is_refused(portal, tmp_path):
    emulator, url = portal(faults=FaultPlan(truncated_downloads=1, honest_length=True))
    with pytest.raises(DownloadCorrupt, match="cut short"):
        fetch_exports(profile("lifelong-portal", url), tmp_path, *YEAR, credentials=CREDS)
    assert inbox_files(tmp_path) == []


def test_changed_export_link_is_a_layout_change_naming_key_and_selector(portal, tmp_path):
    emulator, url = portal()
    p = profile("lifelong-portal", url)
    p = replace(p, pages=replace(p.pages, export_link="a#btnExcel"))
    with pytest.raises(LayoutChanged, match=r"pages\.export_link \(selector 'a#btnExcel'\)"):
        fetch_exports(p, tmp_path, *YEAR, credentials=CREDS)


def test_changed_result_table_is_not_an_empty_success(portal, tmp_path):
    emulator, url = portal()
    p = profile("elearn-plus", url)
    p = replace(p, query=replace(p.query, results_selector="table#grid"))
    with pytest.raises(LayoutChanged, match="query.results_selector"):
        fetch_exports(p, tmp_path, *YEAR, credentials=CREDS)


def test_export_with_an_unexpected_header_is_refused():
    p = load_profile("lifelong-portal")
    body = "\ufeff姓名,課程名稱\r\n王小明,環境教育\r\n".encode()
    with pytest.raises(DownloadCorrupt, match="lacks 身分證字號"):
        check_export(body, p)
    whole = ",".join(AGENCY_EXPORT_HEADER) + "\r\n" + ",".join("1" * 21) + "\r\n"
    check_export(whole.encode("utf-8-sig"), p)
    with pytest.raises(DownloadCorrupt, match="line 2 has 12 fields where the header has 21"):
        check_export(whole.encode("utf-8-sig")[:-20], p)
    with pytest.raises(DownloadCorrupt, match="web page"):
        check_export(b"<html><body>error</body></html>", p)
    with pytest.raises(DownloadCorrupt, match="cannot be read"):
        check_export(",".join(AGENCY_EXPORT_HEADER).encode("utf-8")[:-1] + b"\xff\xfe", p)


# -- credentials and profiles -----------------------------------------------------------------
def test_credentials_come_from_the_environment_names_in_the_profile(monkeypatch):
    p = load_profile("elearn-plus")
    creds = resolve_credentials(
        p, {"LEARNHOURS_ELEARN_USER": "u", "LEARNHOURS_ELEARN_PASSWORD": "x"}
    )
    assert creds == Credentials("u", "x")
    with pytest.raises(MissingCredentials, match="LEARNHOURS_ELEARN_USER"):
        resolve_credentials(p, {})


def test_credentials_from_a_prefect_secret_block_when_configured(monkeypatch):
    loaded = []

    class FakeSecret:
        @classmethod
        def load(cls, name):
            loaded.append(name)
            return types.SimpleNamespace(get=lambda: {"user": "u", "password": "x"})

    fake = types.ModuleType("prefect.blocks.system")
    fake.Secret = FakeSecret
    monkeypatch.setitem(sys.modules, "prefect", types.ModuleType("prefect"))
    monkeypatch.setitem(sys.modules, "prefect.blocks", types.ModuleType("prefect.blocks"))
    monkeypatch.setitem(sys.modules, "prefect.blocks.system", fake)
    p = load_profile("lifelong-portal")
    p = replace(p, credentials=replace(p.credentials, secret_block="portal-login"))
    assert resolve_credentials(p, {}) == Credentials("u", "x") and loaded == ["portal-login"]


def test_missing_credentials_fail_before_any_request(portal, tmp_path, monkeypatch):
    emulator, url = portal()
    monkeypatch.delenv("LEARNHOURS_PORTAL_USER", raising=False)
    monkeypatch.delenv("LEARNHOURS_PORTAL_PASSWORD", raising=False)
    with pytest.raises(MissingCredentials):
        fetch_exports(profile("lifelong-portal", url), tmp_path, *YEAR)
    assert emulator.request_log == []


def test_shipped_profiles_load():
    portal_profile, elearn = load_profile("lifelong-portal"), load_profile("elearn-plus")
    assert portal_profile.base_url == "https://lifelonglearn.cpa.gov.tw/"
    assert elearn.base_url == "https://elearn.hrd.gov.tw/" and elearn.kind == "elearn-records"


def _profile_dict() -> dict:
    import yaml

    return yaml.safe_load(Path(load_profile("lifelong-portal").source).read_text("utf-8"))


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d["login"].pop("password_field"), "'login.password_field' is missing"),
        (lambda d: d["pages"].update(export="sometimes"), "'pages.export' is 'sometimes'"),
        (lambda d: d["network"].update(retires=3), "'network.retires' is not a known profile key"),
        (
            lambda d: d["network"].update(read_timeout_seconds=-1),
            "read_timeout_seconds' must be above 0",
        ),
        (lambda d: d["query"].update(date_format="{roc}"), "'query.date_format' is invalid"),
        (lambda d: d["export"].update(encodings=["big-5x"]), "unknown encoding"),
    ],
)
def test_invalid_profile_names_the_key(change, message):
    data = _profile_dict()
    change(data)
    with pytest.raises(ProfileError, match=message.replace("(", r"\(").replace(")", r"\)")):
        profile_from_dict(data, source="sites/test.yaml")


def test_unknown_profile_name():
    with pytest.raises(ProfileError, match="找不到名為「nope」的站台設定檔"):
        load_profile("nope")


def test_generated_national_ids_have_a_valid_check_digit():
    assert make_national_id("A", 1, 2345678) == "A123456789"
    weights = (1, 9, 8, 7, 6, 5, 4, 3, 2, 1, 1)
    codes = {"A": 10, "K": 19, "Z": 33, "I": 34, "O": 35}
    for letter, code in codes.items():
        nid = make_national_id(letter, 2, 7654321)
        digits = [code // 10, code % 10] + [int(c) for c in nid[1:]]
        assert sum(d * w for d, w in zip(digits, weights, strict=True)) % 10 == 0


def test_fetch_errors_share_one_base_class():
    for error in (LoginError, LayoutChanged, DownloadCorrupt, PortalUnavailable):
        assert issubclass(error, FetchError)


@pytest.mark.slow
def test_i15_13_a_portal_busy_all_night_is_said_in_the_runs_state_and_the_night_goes_on(
    prefect_harness, tmp_path, monkeypatch
):
    from learnhours.demo_data import ROSTER_HEADER, build_sample, write_csv
    from learnhours.flows import nightly as flow_module

    # The task's own slow retries (10 minutes apart at night) are Prefect's: not waited here.
    monkeypatch.setattr(
        flow_module, "fetch_portal", flow_module.fetch_portal.with_options(retries=0)
    )
    monkeypatch.setenv("LEARNHOURS_MAIL_BACKEND", "memory")
    monkeypatch.setenv("LEARNHOURS_PORTAL_USER", USER)
    monkeypatch.setenv("LEARNHOURS_PORTAL_PASSWORD", PASSWORD)
    as_of = date(2026, 11, 23)
    sample = build_sample(2026, as_of, people=10)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    write_csv(inbox / "115年人員名冊.csv", ROSTER_HEADER, sample.roster, "utf-8-sig")
    busy = FaultPlan(busy_answers=1000, busy_status=503)
    with serve(PortalEmulator({USER: PASSWORD}, sample.records, faults=busy)) as base_url:
        state = flow_module.nightly(
            plan_id="national-2026",
            inbox=inbox,
            fetch=True,
            portal_url=base_url,
            polite=False,
            as_of=as_of,
            database_url=f"sqlite:///{tmp_path / 'w.db'}",
            outbox_dir=tmp_path / "outbox",
            return_state=True,
        )
    assert state.is_completed() and state.name == "Warning"
    assert "入口網站一直無法使用" in state.message and "HTTP 503" in state.message
    summary = state.result()
    assert summary["files"] == 1 and summary["plans"][0]["people"] == 10  # the roster was judged
    assert "入口網站一直無法使用" in summary["portal"]
