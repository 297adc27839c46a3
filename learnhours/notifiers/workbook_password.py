"""The HR workbook locked with the agency's own password: Office's encryption (ECMA-376 agile,
AES-256), which Excel, LibreOffice and WPS open by asking for the password; without it the file
is ciphertext, not a zip anyone can unpack."""

from __future__ import annotations

from io import BytesIO

from msoffcrypto.format.ooxml import OOXMLFile

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


def encrypted(xlsx: bytes, password: str) -> bytes:
    """The workbook `xlsx` as Office's encrypted package, opened only with `password`."""
    out = BytesIO()
    OOXMLFile(BytesIO(xlsx)).encrypt(password, out)
    return out.getvalue()
