"""GET /demo (speech_endpoint/serving/demo.py, static/demo.html): the page and its
Content-Security-Policy, then the page itself in headless Chromium against the local
server with the fast tiny models (diarization on).

The browser tests are marked `browser`: they need Debian's chromium and chromium-driver
and selenium (requirements-dev.txt), and skip without them. Selenium talks to
/usr/bin/chromedriver through `Service`; Selenium Manager is patched to fail, so nothing
is ever looked up or downloaded. Screenshots go to $TEST_ARTIFACTS_DIR (default: a
temporary folder); their paths are printed.
"""
from __future__ import annotations

import base64
import fnmatch
import hashlib
import json
import os
import re
from pathlib import Path

import pytest
import requests

from speech_endpoint.compat import PYANNOTE_MAJOR
from support.audio_factory import speech as speech_samples
from support.audio_factory import wav_bytes
from support.tools import require
from support.server import (
    AUTH,
    FAKE_TOKEN,
    REPO,
    ControlledHandler,
    healthy_model_server,
    make_app,
)

PAGE = REPO / "speech_endpoint" / "serving" / "static" / "demo.html"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SVG_NAMESPACE = "http://www.w3.org/2000/svg"  # an identifier for createElementNS, never fetched


# ---- the page and its headers (no browser) ---------------------------------------------


def csp_directives(header: str) -> dict[str, list[str]]:
    directives = {}
    for part in header.split(";"):
        name, *sources = part.split()
        directives[name] = sources
    return directives


def sha256_source(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode() + "'"


def test_get_demo_serves_the_page_with_a_strict_csp():
    from starlette.testclient import TestClient

    # an API token is configured: the page itself still loads without one (it holds no data)
    client = TestClient(make_app(ControlledHandler(), api_token=FAKE_TOKEN))
    response = client.get("/demo")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.text == PAGE.read_text(encoding="utf-8")
    assert response.headers["x-content-type-options"] == "nosniff"
    header = response.headers["content-security-policy"]
    assert "unsafe" not in header and "*" not in header and "data:" not in header
    csp = csp_directives(header)
    scripts = re.findall(r"<script>(.*?)</script>", response.text, re.S)
    styles = re.findall(r"<style>(.*?)</style>", response.text, re.S)
    assert len(scripts) == response.text.count("<script") == 1
    assert len(styles) == response.text.count("<style") == 1
    assert csp == {
        "default-src": ["'self'"],
        "script-src": [sha256_source(scripts[0])],  # the one inline script, by its hash
        "style-src": [sha256_source(styles[0])],
        "media-src": ["blob:"],  # the picked or recorded audio, played in the page
        "connect-src": ["'self'"],
        "img-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'none'"],
        "frame-ancestors": ["'none'"],
    }


def test_the_page_references_nothing_outside_the_server():
    html = PAGE.read_text(encoding="utf-8")
    assert len(html.splitlines()) < 500
    urls = set(re.findall(r"[a-z][a-z0-9+.-]*://[^\s\"'`<>)]*", html, re.I))
    assert urls == {SVG_NAMESPACE}, urls
    assert not re.search(r"""(src|href|action)\s*=\s*["']?(//|[a-z]+:)""", html, re.I)  # no //host, data:, ...
    assert not re.search(r"@import|url\(", html)
    assert not re.search(r"\simport\s*\(|importScripts|<iframe|<link\b", html)
    # what the policy would block anyway: inline handlers and style attributes
    assert not re.search(r"""<[^>]*\son[a-z]+\s*=""", html, re.I)
    assert not re.search(r"""<[^>]*\sstyle\s*=""", html, re.I)


def test_the_page_ships_in_the_container():
    """The Dockerfile copies the repository (`COPY . .`, checked in test_server) minus
    .dockerignore; the page must not be left out."""
    relative = PAGE.relative_to(REPO).as_posix()
    patterns = [line.strip().rstrip("/") for line in (REPO / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    parents = [relative] + ["/".join(relative.split("/")[:i]) for i in range(1, relative.count("/") + 1)]
    assert not [p for p in patterns for part in parents if fnmatch.fnmatch(part, p)]


# ---- the page in headless Chromium -----------------------------------------------------


def require_browser() -> None:
    """Skips without Chromium, its driver or selenium (fails instead under
    REQUIRE_SYSTEM_TOOLS=1, as in CI)."""
    for program in (CHROMIUM, CHROMEDRIVER):
        require(str(program))
    pytest.importorskip("selenium", reason="selenium is not installed (requirements-dev.txt)")


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> Path:
    folder = os.environ.get("TEST_ARTIFACTS_DIR")
    path = Path(folder) if folder else tmp_path_factory.mktemp("artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    require_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.selenium_manager import SeleniumManager

    def refuse(*args, **kwargs):
        raise AssertionError("Selenium Manager was asked for a driver: it must use /usr/bin/chromedriver")

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1100,1000",
                 "--use-fake-device-for-media-stream",  # a microphone that beeps; permission still asked
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(SeleniumManager, "binary_paths", refuse)
        driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_script_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def server(fast_models, tmp_path_factory):
    require_browser()  # before the models load
    with healthy_model_server(fast_models, tmp_path_factory.mktemp("demo-server") / "server.log") as proc:
        yield proc


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("clips")
    files = {"speech": folder / "speech.wav", "long": folder / "two-voices.wav", "text": folder / "notes.txt"}
    files["speech"].write_bytes(wav_bytes(speech_samples(6.0), 16000))
    files["long"].write_bytes(wav_bytes(speech_samples(20.0), 16000))
    files["text"].write_text("This is a text file, not audio.\n")
    return files


def find(driver, selector):
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, selector)


def open_page(driver, server):
    driver.get(server.url + "/demo")
    assert find(driver, "#send") and driver.title.startswith("Speech endpoint")
    # record what the page sends (WebDriver's scripts are not subject to the page's CSP)
    driver.execute_script("""
        const original = window.fetch;
        window.sentBodies = [];
        window.fetch = (url, init) => { window.sentBodies.push({url: String(url), init}); return original(url, init); };
    """)


def fill(driver, selector, text):
    element = find(driver, selector)[0]
    element.clear()
    element.send_keys(text)


def send(driver, audio: Path, token: str | None = FAKE_TOKEN, timeout: float = 120):
    """Pick `audio`, press Transcribe, wait until the busy indicator is gone; the request sent."""
    from selenium.webdriver.support.ui import WebDriverWait

    find(driver, "#file")[0].send_keys(str(audio))
    if token:
        fill(driver, "#token", token)
    find(driver, "#send")[0].click()
    WebDriverWait(driver, timeout).until(lambda d: d.execute_script(
        "return window.sentBodies.length > 0 && document.getElementById('busy').hidden"))
    assert find(driver, "#send")[0].is_enabled()
    sent = driver.execute_script("return window.sentBodies[window.sentBodies.length - 1]")
    assert sent["url"] == "./" and sent["init"]["method"] == "POST"
    return sent["init"]["headers"], json.loads(sent["init"]["body"])


def downloads(driver, folder: Path) -> dict[str, tuple[str, str]]:
    """Click each visible download link; {kind: (file name, text)} of what lands in `folder`."""
    from selenium.webdriver.support.ui import WebDriverWait

    folder.mkdir(parents=True)
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(folder)})
    out = {}
    for link in find(driver, "#downloads a"):
        if not link.is_displayed():
            continue
        assert link.get_attribute("href").startswith("blob:")
        name = link.get_attribute("download")
        link.click()
        WebDriverWait(driver, 20).until(lambda d: (folder / name).exists())
        out[link.get_attribute("id").removeprefix("dl-")] = (name, (folder / name).read_text(encoding="utf-8"))
    return out


def visible_error(driver) -> str:
    error = find(driver, "#error")[0]
    return error.text if error.is_displayed() else ""


def screenshot(driver, artifacts: Path, name: str, capsys) -> Path:
    """The whole page, not only the window's part of it."""
    path = artifacts / name
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}})
    path.write_bytes(base64.b64decode(shot["data"]))
    with capsys.disabled():
        print(f"\nscreenshot: {path}")
    return path


def csp_violations(driver) -> list[str]:
    return [entry["message"] for entry in driver.get_log("browser")
            if "Content Security Policy" in entry["message"] or "Refused to" in entry["message"]]


@pytest.mark.browser
def test_a_clip_gives_turns_timeline_playback_and_downloads(browser, server, clips, artifacts, capsys, tmp_path):
    open_page(browser, server)
    headers, body = send(browser, clips["speech"])
    assert headers["Authorization"] == f"Bearer {FAKE_TOKEN}"
    assert body["inputs"] == base64.b64encode(clips["speech"].read_bytes()).decode()
    assert body["parameters"] == {"output_formats": ["srt", "vtt", "rttm"]}
    assert visible_error(browser) == ""
    assert find(browser, "#result")[0].is_displayed()
    files = downloads(browser, tmp_path / "downloads")
    assert set(files) == {"srt", "vtt", "rttm", "json"}
    result = json.loads(files["json"][1])
    for kind in ("srt", "vtt", "rttm"):
        assert files[kind] == (f"speech.{kind}", result[kind])
    assert files["json"][0] == "speech.json"
    assert result["srt"].startswith("1\n") and result["vtt"].startswith("WEBVTT") and "SPEAKER_00" in result["rttm"]

    speakers = result["speakers"]
    assert speakers, "diarization is on: the tiny pipeline labels the speech"
    names = sorted({s["speaker"] for s in speakers})
    turns = find(browser, "#turns button.turn")
    assert len(turns) == len(speakers)
    for button, utterance in zip(turns, speakers):
        assert utterance["speaker"] in button.text and utterance["text"].strip() in button.text
        assert "spk" in button.get_attribute("class")
    assert len(find(browser, "#timeline .lane")) == len(names)
    assert len(find(browser, "#timeline rect.bar")) == len(speakers)
    assert [t.text for t in find(browser, "#timeline .lane text")] == [s for s in dict.fromkeys(
        u["speaker"] for u in speakers)]

    # clicking a turn seeks the audio to its start and stops at its end
    start, end = speakers[0]["timestamp"]
    turns[0].click()
    position = browser.execute_script("return document.getElementById('player').currentTime")
    assert start - 0.05 <= position <= start + 0.5, (position, start)
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, 20).until(lambda d: d.execute_script("return document.getElementById('player').paused"))
    stopped = browser.execute_script("return document.getElementById('player').currentTime")
    assert end - 0.05 <= stopped <= end + 0.6, (stopped, end)
    assert visible_error(browser) == ""
    screenshot(browser, artifacts, "demo-one-clip.png", capsys)
    assert csp_violations(browser) == []


@pytest.mark.browser
def test_a_two_speaker_result_at_wide_and_narrow_widths(browser, server, clips, artifacts, capsys, tmp_path):
    """20 s of the two-voice clip, two speakers asked for, short windows (the fast tiny
    Whisper emits 12 tokens per window); screenshots go to the test artifacts (the README's
    picture is made with real models by `python -m evaluation.demo_screenshot`)."""
    open_page(browser, server)
    fill(browser, "#num_speakers", "2")
    find(browser, "details summary")[0].click()
    fill(browser, "#extra", '{"chunk_length_s": 5}')
    _, body = send(browser, clips["long"])
    assert body["parameters"] == {"num_speakers": 2, "chunk_length_s": 5, "output_formats": ["srt", "vtt", "rttm"]}
    assert visible_error(browser) == ""
    result = json.loads(downloads(browser, tmp_path / "downloads")["json"][1])
    names = list(dict.fromkeys(u["speaker"] for u in result["speakers"]))
    # pyannote 4's tiny pipeline (VBx) honours num_speakers here; pyannote 3's (agglomerative,
    # platform stack) keeps one cluster whatever is asked
    assert len(find(browser, "#timeline .lane")) == len(names) >= (2 if (PYANNOTE_MAJOR or 0) >= 4 else 1)
    colours = {b.get_attribute("class") for b in find(browser, "#timeline rect.bar")}
    assert colours == {f"bar spk{i}" for i in range(len(names))}
    screenshot(browser, artifacts, "demo-two-speakers.png", capsys)

    browser.set_window_size(380, 900)  # a phone: nothing wider than the window, the timeline redrawn
    try:
        browser.execute_script("window.dispatchEvent(new Event('resize'))")
        sizes = browser.execute_script("""return [document.documentElement.scrollWidth, window.innerWidth,
            document.getElementById('timeline').getBoundingClientRect().right]""")
        assert sizes[0] <= sizes[1] and sizes[2] <= sizes[1], sizes
        screenshot(browser, artifacts, "demo-narrow.png", capsys)
    finally:
        browser.set_window_size(1100, 1000)


@pytest.mark.browser
def test_without_diarization_the_chunks_are_one_uncoloured_speaker(browser, server, clips, tmp_path):
    open_page(browser, server)
    find(browser, "#diarize")[0].click()
    _, body = send(browser, clips["speech"])
    assert body["parameters"] == {"diarize": False, "output_formats": ["srt", "vtt"]}
    assert visible_error(browser) == ""
    files = downloads(browser, tmp_path / "downloads")
    assert set(files) == {"srt", "vtt", "json"}  # no RTTM without speakers
    result = json.loads(files["json"][1])
    assert result["speakers"] == [] and result["chunks"]
    turns = find(browser, "#turns button.turn")
    assert len(turns) == len(result["chunks"])
    assert {t.get_attribute("class") for t in turns} == {"turn plain"}
    assert len(find(browser, "#timeline .lane")) == 1
    assert len(find(browser, "#timeline rect.bar")) == len(result["chunks"])


@pytest.mark.browser
def test_the_servers_error_is_shown(browser, server, clips):
    expected = requests.post(server.url + "/", headers=AUTH, timeout=60, json={
        "inputs": base64.b64encode(clips["text"].read_bytes()).decode(),
        "parameters": {"output_formats": ["srt", "vtt", "rttm"]}}).json()["error"]
    open_page(browser, server)
    send(browser, clips["text"])
    assert visible_error(browser).startswith(f"The server answered 400: {expected}")
    assert not find(browser, "#result")[0].is_displayed()


@pytest.mark.browser
def test_known_speakers_are_sent_and_a_refused_parameter_is_shown(browser, server, clips):
    open_page(browser, server)
    find(browser, "#add-known")[0].click()
    fill(browser, ".known-name", "Alice")
    find(browser, ".known-clip")[0].send_keys(str(clips["speech"]))
    fill(browser, "#min_speakers", "3")
    fill(browser, "#max_speakers", "2")
    _, body = send(browser, clips["speech"])
    assert body["parameters"] == {"min_speakers": 3, "max_speakers": 2, "output_formats": ["srt", "vtt", "rttm"],
                                  "known_speakers": {"Alice": base64.b64encode(clips["speech"].read_bytes()).decode()}}
    error = visible_error(browser)
    assert error.startswith("The server answered 400: ") and "min_speakers must not exceed max_speakers" in error


@pytest.mark.browser
def test_a_missing_token_and_a_refused_microphone_are_explained(browser, server, clips):
    open_page(browser, server)
    send(browser, clips["speech"], token=None)
    assert visible_error(browser).startswith("The server answered 401: Missing or invalid bearer token. Fill in")
    set_microphone(browser, server, "denied")  # the user says no
    find(browser, "#record")[0].click()
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, 10).until(visible_error)
    assert visible_error(browser).startswith("Microphone permission was refused."), visible_error(browser)
    assert find(browser, "#record")[0].get_attribute("aria-pressed") == "false"
    assert find(browser, "#send")[0].is_enabled()


@pytest.mark.browser
def test_a_recording_is_sent(browser, server):
    """Chromium's fake microphone (a beep): recorded, played back, sent, answered (no speech)."""
    from selenium.webdriver.support.ui import WebDriverWait

    open_page(browser, server)
    set_microphone(browser, server, "granted")
    record = find(browser, "#record")[0]
    record.click()
    WebDriverWait(browser, 10).until(lambda d: record.get_attribute("aria-pressed") == "true")
    browser.execute_script("return new Promise((resolve) => setTimeout(resolve, 1500))")
    record.click()
    WebDriverWait(browser, 10).until(lambda d: find(d, "#chosen")[0].text.startswith("recording."))
    assert find(browser, "#player")[0].get_attribute("src").startswith("blob:")
    fill(browser, "#token", FAKE_TOKEN)
    find(browser, "#send")[0].click()
    WebDriverWait(browser, 60).until(lambda d: find(d, "#result")[0].is_displayed() or visible_error(d))
    assert visible_error(browser) == ""
    sent = json.loads(browser.execute_script("return window.sentBodies[0].init.body"))
    assert base64.b64decode(sent["inputs"])[:4] in (b"\x1aE\xdf\xa3", b"OggS")  # WebM (Matroska) or Ogg
    assert "no speech found" in find(browser, "#summary")[0].text


def set_microphone(driver, server, setting: str) -> None:
    driver.execute_cdp_cmd("Browser.setPermission", {"permission": {"name": "microphone"}, "setting": setting,
                                                     "origin": server.url})
