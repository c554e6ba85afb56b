"""The README's picture of the demo page (docs/demo.png): the local server with the models
given, the page in headless Chromium, one recording picked and sent, the whole page saved.

    PYTHONPATH=$DIARIZATION_MODEL_DIR python -m evaluation.demo_screenshot \\
        --asr-model "$WHISPER_MODEL_DIR" --diarization-model "$DIARIZATION_MODEL_DIR" \\
        --audio "$DIALOGUE_DIR/dialogue.wav" --num-speakers 2 --output docs/demo.png

Needs Debian's chromium and chromium-driver and selenium (requirements-dev.txt). The
driver is /usr/bin/chromedriver, so Selenium Manager never looks anything up. The page is
driven as a person would (tests/test_demo.py checks what it shows); the numbers in the
picture are whatever the models returned.
"""
from __future__ import annotations

import argparse
import base64
import os
import tempfile
from pathlib import Path

from evaluation.local_server import LocalServer, free_port, serve_argv

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
MODEL_ENV = ("ASR_MODEL", "ASSISTANT_MODEL", "DIARIZATION_MODEL", "HF_TOKEN", "API_TOKEN")


def server_env(asr_model: str, diarization_model: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in MODEL_ENV}
    env.update(ASR_MODEL=asr_model, WARMUP="false", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               PYANNOTE_METRICS_ENABLED="0", PYTHONUNBUFFERED="1")
    if diarization_model:
        env["DIARIZATION_MODEL"] = diarization_model
    return env


def browser(width: int, height: int, profile: str):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                 f"--window-size={width},{height}", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_script_timeout(60)
    return driver


def fill(driver, element_id: str, text: str) -> None:
    from selenium.webdriver.common.by import By

    element = driver.find_element(By.ID, element_id)
    element.clear()
    element.send_keys(text)


def transcribe_on_page(driver, url: str, audio: Path, args: argparse.Namespace) -> None:
    """Open the page, set the options, pick `audio`, press Transcribe, wait for the result."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url + "/demo")
    if args.language:
        fill(driver, "language", args.language)
    if args.num_speakers:
        fill(driver, "num_speakers", str(args.num_speakers))
    driver.find_element(By.ID, "file").send_keys(str(audio.resolve()))
    driver.find_element(By.ID, "send").click()
    WebDriverWait(driver, args.timeout).until(lambda d: d.execute_script(
        "const r = document.getElementById('result'), e = document.getElementById('error');"
        "return document.getElementById('busy').hidden && (!r.hidden || !e.hidden)"))
    error = driver.find_element(By.ID, "error")
    if error.is_displayed():
        raise SystemExit(f"the page shows an error: {error.text}")
    driver.execute_script("window.scrollTo(0, 0)")


def save_page(driver, output: Path) -> None:
    """The whole page, not only the window's part of it."""
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}})
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_bytes(base64.b64decode(shot["data"]))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--asr-model", required=True, help="Whisper checkpoint (folder or hub id)")
    parser.add_argument("--diarization-model", help="pyannote pipeline (folder or hub id); none: no speakers")
    parser.add_argument("--audio", type=Path, required=True, help="the recording to send")
    parser.add_argument("--num-speakers", type=int, help="the page's number of speakers")
    parser.add_argument("--language", help="the page's language (none: detected)")
    parser.add_argument("--output", type=Path, default=Path("docs/demo.png"))
    parser.add_argument("--width", type=int, default=1100)
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for the transcript")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as scratch:
        server = LocalServer(serve_argv(free_port()), env=server_env(args.asr_model, args.diarization_model),
                             log_path=Path(scratch) / "server.log", startup_timeout=600)
        with server:
            driver = browser(args.width, 1000, str(Path(scratch) / "profile"))
            try:
                transcribe_on_page(driver, server.url, args.audio, args)
                save_page(driver, args.output)
            finally:
                driver.quit()
    print(f"screenshot: {args.output}")


if __name__ == "__main__":
    main()
