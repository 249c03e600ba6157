"""report.pdf: the HTML report printed by headless Chromium, with the print style sheet (every
column kept, each model on a new page). The PDF's dates are fixed so reruns give the same bytes.
"""
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from ..errors import ConfigError
from ..results.writers import _atomic

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--no-pdf-header-footer")
TIMEOUT_SECONDS = 120
_DATES = re.compile(rb"/(CreationDate|ModDate) \(D:[^)]*\)")


def find_browser():
    """The path of a Chromium or Chrome executable; a one-line error naming the package if none."""
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    raise ConfigError("report.formats has pdf, which needs headless Chromium: install the 'chromium' package "
                      "(apt-get install chromium), or remove pdf from report.formats")


def write_pdf(html_text, pdf_path):
    """Print the report's HTML to pdf_path with headless Chromium."""
    browser = find_browser()
    with tempfile.TemporaryDirectory(prefix="hlm-pdf-") as folder:
        page, printed = Path(folder) / "report.html", Path(folder) / "report.pdf"
        page.write_text(html_text, encoding="utf-8")
        process = subprocess.run([browser, *FLAGS, f"--user-data-dir={folder}/profile",
                                  f"--print-to-pdf={printed}", page.as_uri()],
                                 capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False)
        if process.returncode != 0 or not printed.is_file():
            last = (process.stderr.strip().splitlines() or ["no output"])[-1]
            raise ConfigError(f"Chromium could not print the report to PDF ({browser}: {last})")
        data = _fixed_dates(printed.read_bytes())
    _atomic(pdf_path, lambda tmp: Path(tmp).write_bytes(data))


def _fixed_dates(data):
    """The PDF with its creation and modification dates set to one fixed date of the same length
    (so the cross-reference offsets stay right)."""
    def fixed(match):
        length = len(match.group(0)) - len(match.group(1)) - 6   # the characters inside (D:...)
        return b"/" + match.group(1) + b" (D:" + b"20000101000000Z"[:length].ljust(length, b"0") + b")"
    return _DATES.sub(fixed, data)
