"""Whether a path is a file to read at all, and the operating system's errors in words for people."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

_WORDS = {
    errno.ENOENT: "找不到檔案",
    errno.EACCES: "沒有讀取這個檔案的權限",
    errno.EPERM: "作業系統不允許讀取這個檔案",
    errno.EISDIR: "這是資料夾，不是檔案",
    errno.ENOTDIR: "路徑中有一段不是資料夾",
    errno.ENAMETOOLONG: "檔名或路徑太長",
    errno.ELOOP: "路徑中的捷徑（符號連結）形成迴圈",
    errno.EIO: "讀取時發生磁碟輸入／輸出錯誤（磁碟或網路磁碟機可能有問題）",
    errno.ESTALE: "網路磁碟機上的檔案已失效，請重新掛載後再試",
    errno.ETIMEDOUT: "讀取逾時（網路磁碟機沒有回應）",
    errno.EMFILE: "同時開啟的檔案太多",
    errno.ENOMEM: "記憶體不足",
}

_KINDS = (
    (stat.S_ISDIR, "資料夾"),
    (stat.S_ISFIFO, "具名管道（FIFO）"),
    (stat.S_ISSOCK, "通訊端（socket）"),
    (stat.S_ISCHR, "字元裝置"),
    (stat.S_ISBLK, "區塊裝置"),
)


def os_error_words(exc: OSError, path: Path | str) -> str:
    """`找不到檔案：/inbox/x.csv`: the cause in Chinese, with the path (no English strerror)."""
    return f"{_WORDS.get(exc.errno or 0) or os_error_code(exc)}：{path}"


def os_error_code(exc: OSError) -> str:
    """`作業系統錯誤（EIO）`: an error without words of its own, by its code (no English strerror)."""
    return f"作業系統錯誤（{errno.errorcode.get(exc.errno or 0, '') or exc.errno}）"


def not_a_regular_file(path: Path) -> str | None:
    """Why `path` is not to be read (a named pipe would block forever, a device never ends),
    or None for a regular file. Raises OSError when the path cannot be looked at."""
    mode = os.stat(path).st_mode
    if stat.S_ISREG(mode):
        return None
    kind = next((name for test, name in _KINDS if test(mode)), "特殊檔案")
    return f"不是一般檔案，而是{kind}；只讀取一般檔案，已略過：{path}"
