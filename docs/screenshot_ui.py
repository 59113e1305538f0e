"""Re-take ``docs/ui_compare_setups.png``: the MLflow UI comparing one direction's four setups.

Not part of the suite. Needs Playwright for Python (``pip install playwright``, any venv) and a
Chromium (Debian: ``apt-get install chromium``); no browser download. Usage, after a study:

    PATH=.venv/bin:$PATH python docs/screenshot_ui.py <project folder> \
        docs/ui_compare_setups.png phantom-a-to-phantom-b
"""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.parse
import urllib.request

from playwright.sync_api import sync_playwright

PORT = 5056
SETUP_ORDER = (
    "case u.value when 'baseline' then 0 when 'augment' then 1 when 'ddpm' then 2 else 3 end"
)
CHROMIUM_FLAGS = [
    *("--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"),
    *("--disable-background-networking", "--disable-component-update", "--disable-sync"),
]


def setup_runs(store: str, direction: str) -> list[str]:
    """The cross_eval_setup run ids of ``direction``, baseline .. ddpm_mi."""
    query = f"""select r.run_uuid from runs r
        join tags s on s.run_uuid = r.run_uuid and s.key = 'step' and s.value = 'cross_eval_setup'
        join tags d on d.run_uuid = r.run_uuid and d.key = 'direction' and d.value = ?
        join tags u on u.run_uuid = r.run_uuid and u.key = 'setup' order by {SETUP_ORDER}"""
    with sqlite3.connect(f"{store}/mlflow.db") as db:
        return [row[0] for row in db.execute(query, (direction,))]


def wait_for(url: str, seconds: int = 60) -> None:
    for _ in range(seconds):
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(1)
    raise TimeoutError(url)


def main(store: str, out: str, direction: str) -> None:
    ids = setup_runs(store, direction)
    command = ["mlflow", "ui", "--backend-store-uri", f"sqlite:///{store}/mlflow.db"]
    ui = subprocess.Popen(
        [*command, "--host", "127.0.0.1", "--port", str(PORT)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        wait_for(f"http://127.0.0.1:{PORT}/health")
        query = urllib.parse.urlencode({"runs": json.dumps(ids), "experiments": '["0"]'})
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path="/usr/bin/chromium", args=CHROMIUM_FLAGS
            )
            page = browser.new_page(viewport={"width": 1500, "height": 960})
            page.goto(f"http://127.0.0.1:{PORT}/#/compare-runs?{query}")
            page.wait_for_timeout(6000)
            close = page.locator("button[aria-label='Close']")  # the assistant side panel
            if close.count():
                close.first.click()
            for section in ("Visualizations", "Parameters"):
                page.get_by_text(section, exact=True).first.click()
                page.wait_for_timeout(600)
            page.screenshot(path=out)
            browser.close()
    finally:
        os.killpg(ui.pid, signal.SIGTERM)


if __name__ == "__main__":
    main(*sys.argv[1:4])
