"""The HR workbook locked with the agency's own password: Office's encryption (ECMA-376 agile,
AES-256), which Excel, LibreOffice and WPS open by asking for the password; without it the file
is ciphertext, not a zip anyone can unpack."""

from __future__ import annotations

import functools
import os
from io import BytesIO

from msoffcrypto.method.ecma376_agile import ECMA376Agile

# What the summary says in place of its workbook when no password is set: the IDs never travel
# in clear, and HR learns how to get the workbook back (docs/privacy.md).
NO_PASSWORD = (
    "本信未附未達成名單的活頁簿（含身分證字號）：尚未設定活頁簿密碼。請系統管理者設定環境變數 "
    "LEARNHOURS_WORKBOOK_PASSWORD（或以 LEARNHOURS_WORKBOOK_PASSWORD_BLOCK 指定存放密碼的 "
    "Prefect Secret 區塊），之後的摘要會附上以該密碼加密的活頁簿；名單也可用 "
    "learnhours status 查詢。"
)
# Said beside an encrypted workbook; never the password itself.
LOCKED = (
    "附件已用人事室的活頁簿密碼加密：開啟時 Excel 會要求輸入密碼。密碼不隨信寄送，"
    "請向系統管理者索取，勿與本信一起轉寄或存放。"
)


# Office turns the password into a key by hashing it 100,000 times (~60 ms each time in Python),
# and msoffcrypto does so for every file it locks or opens. A night's summaries share one password:
# it is worked out once per process, on one random password salt of the process. Each workbook
# still has a key, verifier and data salt of its own, drawn at random; that its password salt is
# its siblings' tells only what is true anyway, that one password opens them all.
_PASSWORD_SALT = os.urandom(16)
_ITERATED_HASH = ECMA376Agile._derive_iterated_hash_from_password


@functools.lru_cache(maxsize=8)
def _iterated_hash(password: str, salt: bytes, algorithm: str, spins: int) -> object:
    return _ITERATED_HASH(password, salt, algorithm, spins)


ECMA376Agile._derive_iterated_hash_from_password = staticmethod(_iterated_hash)


def encrypted(xlsx: bytes, password: str) -> bytes:
    """The workbook `xlsx` as Office's encrypted package (ECMA-376 agile, AES-256, 100,000
    spins), opened only with `password`."""
    return ECMA376Agile.encrypt(password, BytesIO(xlsx), salt_value=_PASSWORD_SALT)
