"""Open an HTML file in headless Chromium and report what a reader would see.

Used by the tests and runnable by hand:

    python tests/browser.py results/report.html [screenshot.png]
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
CHROMEDRIVER = shutil.which("chromedriver")

# Every image decoded, and every audio element's source decoded far enough to know its duration.
_CHECK = """
const done = arguments[arguments.length - 1];
const images = [...document.images].map(i => ({src: i.alt || i.src.slice(0, 40), ok: i.complete && i.naturalWidth > 0}));
const audios = [...document.querySelectorAll('audio')];
Promise.all(audios.map(a => new Promise(resolve => {
  const report = () => resolve({ok: !a.error && a.readyState >= 1 && a.duration > 0, duration: a.duration,
                                error: a.error ? a.error.code : null});
  if (a.readyState >= 1 || a.error) return report();
  a.addEventListener('loadedmetadata', report, {once: true});
  a.addEventListener('error', report, {once: true});
  a.load();
  setTimeout(report, 10000);
}))).then(audio => done({images, audio, title: document.title}));
"""


def available() -> bool:
    return bool(CHROMIUM and CHROMEDRIVER)


def inspect(html: str | Path, screenshot: str | Path | None = None) -> dict:
    """{'images': [{'src', 'ok'}], 'audio': [{'ok', 'duration', 'error'}], 'title'} for a local HTML file."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # The machine's network is closed: background fetches only fail noisily, so switch them off.
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1280,2000", "--autoplay-policy=no-user-gesture-required"):  # fmt: skip
        options.add_argument(flag)
    with tempfile.TemporaryDirectory() as profile:
        options.add_argument(f"--user-data-dir={profile}")
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        try:
            driver.set_script_timeout(60)
            driver.get(Path(html).resolve().as_uri())
            result = driver.execute_async_script(_CHECK)
            if screenshot:  # the whole page, not just the first screenful
                height = driver.execute_script("return document.documentElement.scrollHeight")
                driver.set_window_size(1280, min(height + 100, 16000))
                driver.save_screenshot(str(screenshot))
        finally:
            driver.quit()
    return result


if __name__ == "__main__":
    found = inspect(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)
    print(json.dumps(found, indent=1))
    bad = [x for x in found["images"] + found["audio"] if not x["ok"]]
    sys.exit(1 if bad else 0)
