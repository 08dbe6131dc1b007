"""The review page in a real browser: Debian's headless Chromium driven by Selenium
(tests/setup installs chromium, chromium-driver and selenium). Load, play, correct by
keyboard, export, enrol; a screenshot is kept in the test's folder."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from audio_classifier.review.app import ReviewSettings
from audio_classifier.review.cli import review_app
from audio_classifier.review.store import Filters, ReviewStore
from audio_classifier.samples import SampleLibrary
from benchmarks.browser import chromium_driver, serving, wait_for

from .test_review import batch, unknown_prompts  # noqa: F401  (classify runs the tests share)

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def browser():
    driver = chromium_driver()
    yield driver
    driver.quit()


@pytest.fixture()
def served(batch, tmp_path):  # noqa: F811
    store = ReviewStore(tmp_path / "review.sqlite")
    store.load(batch[1])
    settings = ReviewSettings(
        store=store,
        audio_root=batch[0],
        samples_path=tmp_path / "library.sqlite",
        training_manifest=tmp_path / "training.csv",
    )
    with serving(review_app(settings)) as url:
        yield url, settings


def _wait(driver, condition, timeout=20):
    return wait_for(driver, condition, timeout)


def _key(driver, key):
    driver.find_element(By.TAG_NAME, "body").send_keys(key)


def test_review_by_keyboard_in_a_real_browser(browser, served, tmp_path):
    url, settings = served
    store = settings.store
    browser.get(f"{url}/review/")
    _wait(
        browser,
        "return document.body.dataset.ready === '1' && document.querySelectorAll('#rows tr').length > 0",
    )
    first, second = store.page(Filters(), 0, 2)[1]
    _wait(browser, f"return document.body.dataset.shown === '{first['id']}'")
    # the drawings are made: the spectrogram and waveform hold pixels
    painted = browser.execute_script(
        "const c = document.getElementById('spec'); const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        "let s = 0; for (let i = 0; i < d.length; i += 4) s += d[i]; return [c.width, s];"
    )
    assert painted[0] > 10 and painted[1] > 0
    # a verdict needs a reviewer name: the page says so and saves nothing
    _key(browser, "c")
    _wait(browser, "return document.getElementById('status').className === 'error'")
    assert store.verdict(first["id"]) is None
    name = browser.find_element(By.ID, "reviewer")
    name.send_keys("ann", Keys.TAB)
    # play, pause
    browser.find_element(By.TAG_NAME, "body").click()
    _key(browser, " ")
    _wait(browser, "return document.getElementById('player').currentTime > 0.2")
    _key(browser, " ")
    # c: confirm the classifier's label; the queue moves on
    _key(browser, "c")
    _wait(browser, "return document.getElementById('status').textContent.startsWith('saved')")
    assert store.verdict(first["id"]) == first["label"]
    _wait(browser, "return document.querySelector('#rows tr.current').dataset.index === '1'")
    # v, choose a label, Enter: a correction
    _key(browser, "v")
    browser.switch_to.active_element.send_keys("voicemail")
    browser.switch_to.active_element.send_keys(Keys.ENTER)
    _wait(browser, "return document.querySelector('#rows tr.current').dataset.index === '2'")
    assert store.verdict(second["id"]) == "voicemail"
    # export: the reviewed labels, as evaluate reads them
    exported = browser.execute_async_script(
        "const done = arguments[0]; fetch('api/export').then((r) => r.text()).then(done);"
    )
    rows = list(csv.DictReader(io.StringIO(exported)))
    assert {Path(r["path"]).name: r["label"] for r in rows} == {
        Path(first["path"]).name: first["label"],
        Path(second["path"]).name: "voicemail",
    }
    # enrol the real prompt under its carrier
    real = next(i for i in store.page(Filters(), 0, 200)[1] if i["path"] == "real_prompt.wav")
    index = browser.execute_script(f"return state.items.findIndex((item) => item.id === {real['id']})")
    if index < 0:  # not on the first page: filter to it
        browser.find_element(By.ID, "f-column").send_keys("carrier")
        browser.find_element(By.ID, "f-value").send_keys("asterisk-fr")
        browser.find_element(By.ID, "apply").click()
        _wait(browser, f"return state.items.length === 1 && state.record && state.record.id === {real['id']}")
    else:
        browser.execute_script(f"show({index})")
        _wait(browser, f"return state.record && state.record.id === {real['id']}")
    browser.find_element(By.ID, "carrier").send_keys("acme", Keys.TAB)
    browser.find_element(By.TAG_NAME, "body").click()
    _key(browser, "e")
    _wait(browser, "return document.getElementById('status').textContent.startsWith('enrolled')")
    with SampleLibrary(settings.samples_path) as library:
        assert [(s.label, s.carrier) for s in library.list()] == [(real["label"], "acme")]
    shot = tmp_path / "review.png"
    browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
    errors = [
        e for e in browser.get_log("browser") if e["level"] == "SEVERE" and "favicon" not in e["message"]
    ]
    assert not errors, json.dumps(errors)[:2000]


def test_a_large_queue_is_paged_not_loaded_whole(browser, tmp_path):
    """The page asks for one page of records, whatever the queue's size, and shows the
    total; how fast it becomes interactive on 100,000 records is measured by
    benchmarks/review_page.py, not asserted here."""
    out = tmp_path / "big.jsonl"
    with open(out, "w") as handle:
        for i in range(20000):
            record = {
                "path": f"call{i}.wav",
                "label": "ringback",
                "confidence": (i % 100) / 100,
                "action": "retry",
            }
            handle.write(json.dumps(record) + "\n")
    store = ReviewStore(tmp_path / "big.sqlite")
    store.load(out)
    with serving(review_app(ReviewSettings(store=store))) as url:
        browser.get(f"{url}/review/")
        _wait(
            browser,
            "return document.body.dataset.ready === '1' && document.querySelectorAll('#rows tr').length === 50",
        )
        assert browser.find_element(By.ID, "count").text.startswith("20000 records")
        requests = browser.execute_script(
            "return performance.getEntriesByType('resource').map((e) => e.name).filter((n) => n.includes('api/records?'))"
        )
        assert requests and all("limit=50" in r for r in requests)
        # the lowest confidence first (most doubtful), and a step to the next page works
        assert browser.execute_script("return state.items[0].confidence") == 0.0
        browser.find_element(By.ID, "next").click()
        _wait(browser, "return state.offset === 50 && document.querySelectorAll('#rows tr').length === 50")


def test_new_prompts_view_labels_a_group_in_the_browser(browser, unknown_prompts, tmp_path):  # noqa: F811
    _, out, _ = unknown_prompts
    store = ReviewStore(tmp_path / "review.sqlite")
    store.load(out)
    with serving(review_app(ReviewSettings(store=store))) as url:
        browser.get(f"{url}/review/")
        _wait(browser, "return document.body.dataset.ready === '1'")
        browser.find_element(By.ID, "reviewer").send_keys("ann", Keys.TAB)
        browser.find_element(By.TAG_NAME, "body").click()
        _key(browser, "g")
        _wait(browser, "return document.body.dataset.groups === '3'", timeout=60)
        row = browser.find_element(By.CSS_SELECTOR, "#group-rows tr")
        row.find_element(By.TAG_NAME, "select").send_keys("unreachable")
        row.find_element(By.TAG_NAME, "button").click()
        _wait(browser, "return document.getElementById('status').textContent.startsWith('labelled')")
        row.find_element(By.TAG_NAME, "td").click()  # review the group's members
        _wait(browser, "return !document.getElementById('queue-table').hidden && document.body.dataset.shown")
        members = browser.execute_script("return state.items.map((item) => item.id)")
        browser.save_screenshot(str(tmp_path / "groups.png"))
    assert len(members) >= 3 and all(store.verdict(i) == "unreachable" for i in members)
