"""Sample learning records as the portal and e等公務園+ export them, for tests and the demo."""

from __future__ import annotations

import itertools

from learnhours.transforms.ids import national_id

make_national_id = national_id  # sample IDs: one generator for the emulator, the demo and tests


_SAMPLE_COURSES = (  # (code, name, category code, category, hours)
    ("501001", "當前政府重大政策講座", "501", "當前政府重大政策", "1"),
    ("337002", "環境教育與永續發展", "337", "環境教育", "4"),
    ("393003", "CEDAW 導論", "393", "性別主流化", "2"),
    ("502004", "廉政與服務倫理", "502", "廉政與服務倫理", "3"),
    ("521005", "資通安全通識", "521", "資通安全", "3"),
)
_SAMPLE_NAMES = [
    "王小明",
    "李美玲",
    "陳志強",
    "林淑芬",
    "張家豪",
    "黃雅婷",
    "吳建宏",
    "劉怡君",
    "蔡宗翰",
    "楊佩珊",
]


def sample_agency_rows(
    agency_code: str = "379680000A",
    agency: str = "苗栗縣竹南鎮公所",
    *,
    people: int = 5,
    year: int = 2023,
    courses_each: int = 3,
) -> list[dict[str, str]]:
    """Agency-export rows (ROC dates) for `people` people, `courses_each` courses each."""
    rows = []
    roc = year - 1911
    for p, course in itertools.product(range(people), range(courses_each)):
        code, name, cat, cat_name, hours = _SAMPLE_COURSES[(p + course) % len(_SAMPLE_COURSES)]
        month = 1 + (p * courses_each + course) % 11
        day = f"{roc}/{month:02d}/{10 + course:02d}"
        rows.append(
            {
                "身分證字號": make_national_id("ABKHJ"[p % 5], 1 + p % 2, 1000 + p),
                "姓名": _SAMPLE_NAMES[p % len(_SAMPLE_NAMES)],
                "服務機關代碼": agency_code,
                "服務機關": agency,
                "課程代碼": code,
                "課程名稱": name,
                "期別": "1",
                "開課機關": "行政院人事行政總處公務人力發展學院",
                "課程類別代碼": cat,
                "課程類別": cat_name,
                "學習性質": "2",
                "數位時數": "0",
                "實體時數": hours,
                "認證時數": hours,
                "開課起始日期": day,
                "開課結束日期": day,
                "上課起始日期": day,
                "上課結束日期": day,
                "訓練成績": "",
                "出勤上課狀況": "全勤",
                "登錄日期": f"{roc}/{min(month + 1, 12):02d}/01",
            }
        )
    return rows


def sample_elearn_rows(*, people: int = 3, year: int = 2023) -> list[dict[str, str]]:
    """e等公務園+ rows (Gregorian dates): one passed, one failed test, one without a test."""
    rows = []
    for p in range(people):
        for i, (code, name, cat, _, hours) in enumerate(_SAMPLE_COURSES[:3]):
            tested = i != 0
            rows.append(
                {
                    "身分證字號": make_national_id("EFGHM"[p % 5], 2 - p % 2, 2000 + p),
                    "姓名": _SAMPLE_NAMES[(p + 3) % len(_SAMPLE_NAMES)],
                    "課程代碼": f"E{code}",
                    "課程名稱": name,
                    "課程類別代碼": cat,
                    "認證時數": hours,
                    "上課起始日期": f"{year}-0{3 + i}-01",
                    "上課結束日期": f"{year}-0{3 + i}-02",
                    "測驗分數": ("90" if (p + i) % 2 else "55") if tested else "",
                    "及格分數": ("60" if i == 1 else "75") if tested else "",
                    "閱讀時數": f"{int(hours)}:05:00",
                    "應閱讀時數": f"{int(hours)}:00:00",
                    "問卷狀態": "已填寫" if p % 3 else "未填寫",
                }
            )
    return rows


