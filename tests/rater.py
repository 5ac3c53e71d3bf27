"""A rater in headless Chromium answering a listening study (cry_diffusion.listening), and the study's server.

Used by tests/test_listening.py and tests/test_workflow.py; by hand, to answer a served study:

    python tests/rater.py http://127.0.0.1:8000/ [screenshot.png]
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import browser

REPO = Path(__file__).resolve().parents[1]


def library_env() -> dict:
    """This checkout's cry_diffusion first on the path of a subprocess, whatever copy is installed."""
    return os.environ | {"PYTHONPATH": os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")]))}


class Serving:
    """`python -m cry_diffusion.listening serve` in a subprocess, on a fixed port across restarts."""

    def __init__(self, folder: Path, port: int = 0):
        self.folder, self.port = folder, port

    def start(self):
        self.proc = subprocess.Popen([sys.executable, "-m", "cry_diffusion.listening", "serve", str(self.folder), "--port",
                                      str(self.port)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=library_env())  # fmt: skip
        for line in self.proc.stdout:
            match = re.search(r"share: (http://127\.0\.0\.1:(\d+)/)", line)
            if match:
                self.url, self.port = match.group(1), int(match.group(2))
                return self
        raise AssertionError(f"the server printed no URL (exit {self.proc.wait()})")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


def chromium(download_dir: Path | None = None):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = browser.CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--autoplay-policy=no-user-gesture-required", "--window-size=1000,900",
                 f"--user-data-dir={tempfile.mkdtemp(prefix='chromium-')}", "--allow-file-access-from-files"):  # fmt: skip
        options.add_argument(flag)
    if download_dir:
        options.add_experimental_option("prefs", {"download.default_directory": str(download_dir), "download.prompt_for_download": False})
    return webdriver.Chrome(service=Service(browser.CHROMEDRIVER), options=options)


def state(driver) -> str:
    return driver.find_element("tag name", "body").get_attribute("data-state")


def answer_trials(driver, count: int | None = None, choose=lambda trial, options: 0) -> list[str]:
    """Answer up to `count` trials from the keyboard as a rater would: play each clip to the end (A/B or P), then press the
    answer's number key. Returns the trial ids answered."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.support.ui import WebDriverWait

    wait, done = WebDriverWait(driver, 30), []
    while count is None or len(done) < count:
        wait.until(lambda d: state(d) in ("trial", "done") and (not done or d.find_element("id", "trial").get_attribute("data-trial") != done[-1] or state(d) == "done"))
        if state(driver) == "done":
            break
        trial = driver.find_element("id", "trial").get_attribute("data-trial")
        answers = driver.find_elements("css selector", "button.answer")
        assert all(not b.is_enabled() for b in answers), "an answer was open before the clips were played"
        for play in driver.find_elements("css selector", "button.play"):
            key = "p" if "[P]" in play.text else play.text[-2].lower()
            ActionChains(driver).send_keys(key).perform()
            wait.until(lambda d: "heard" in play.get_attribute("class"))
        wait.until(lambda d: all(b.is_enabled() for b in answers))
        ActionChains(driver).send_keys(str(choose(trial, answers) + 1)).perform()
        done.append(trial)
    return done


if __name__ == "__main__":
    from selenium.webdriver.support.ui import WebDriverWait

    driver = chromium()
    try:
        driver.get(sys.argv[1])
        WebDriverWait(driver, 30).until(lambda d: state(d) in ("trial", "done"))
        if len(sys.argv) > 2:
            driver.save_screenshot(sys.argv[2])
        print(f"{len(answer_trials(driver))} trials answered")
    finally:
        driver.quit()
