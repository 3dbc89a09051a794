"""The web page end to end in headless Chromium (Selenium, the system's chromedriver).

Chromium and its driver are the Debian packages ``chromium`` and ``chromium-driver``
(scripts/test.sh installs them when missing). The test drives the page like a person:
picks a user, types a history that contains a hostile title, searches the catalog, and
checks that every title is shown as text -- no element is created from it and no script
runs -- and that what the page shows is what the API answers.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest
from tests.run_fixtures import HOSTILE

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.common.exceptions import NoAlertPresentException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM = next(
    (p for p in ("/usr/bin/chromium", "/usr/bin/chromium-browser") if Path(p).exists()), None
)
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"

pytestmark = pytest.mark.skipif(
    CHROMIUM is None or not Path(DRIVER).exists(),
    reason="needs the Debian packages chromium and chromium-driver "
    "(apt-get install -y chromium chromium-driver; scripts/test.sh installs them)",
)


@pytest.fixture(scope="module")
def browser():
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(flag)
    # The system driver, given explicitly: Selenium Manager never downloads anything.
    driver = webdriver.Chrome(service=Service(executable_path=DRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def wait(driver, condition, timeout: float = 60):
    return WebDriverWait(driver, timeout).until(condition)


def no_alert(driver) -> bool:
    try:
        _ = driver.switch_to.alert
    except NoAlertPresentException:
        return True
    return False


def results_shown(driver) -> bool:
    return driver.find_element(By.ID, "results").is_displayed() and driver.find_element(
        By.ID, "status"
    ).text.startswith(tuple("0123456789"))


def table_titles(driver) -> list[str]:
    rows = driver.find_elements(By.CSS_SELECTOR, "#rec-table tbody tr")
    return [r.find_elements(By.TAG_NAME, "td")[1].text for r in rows]


def test_page_shows_recommendations_and_rationale_safely(browser, live_url, service):
    browser.get(live_url + "/")
    wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#user-select option")) > 0)
    assert "slim on sasrec" in browser.find_element(By.ID, "model-info").text

    # -- a known user, found through the search box (the picker lists 500 at most) ----------
    last = service.catalog.search_users("", 10_000)[-1][1]  # the last user's original id
    browser.find_element(By.ID, "user-search").send_keys(last)
    listed = "return [...document.querySelectorAll('#user-select option')].map(o => o.value)"
    wait(browser, lambda d: (v := d.execute_script(listed)) and all(last in u for u in v))
    assert last in browser.execute_script(listed)
    user = last
    browser.execute_script(f"document.getElementById('user-select').value = {user!r}")
    browser.find_element(By.ID, "user-go").click()
    wait(browser, results_shown)
    expected = httpx.get(f"{live_url}/users/{user}/recommendations", params={"k": 10}).json()
    assert table_titles(browser) == [it["title"] for it in expected["items"]]
    assert f"for user {user}" in browser.find_element(By.ID, "status").text
    assert "(run:student)" in browser.find_element(By.ID, "rationale-source").text
    for step in (1, 2, 3):
        assert browser.find_element(By.ID, f"rationale-step{step}").text

    # -- a typed history with a hostile title ------------------------------------------------
    # Two hostile items (by title and by original id): items of like text rank high, so
    # hostile titles reach the results table whichever fusion the model uses.
    hostile, other = [it for it in service.catalog.items.values() if HOSTILE in it.title][:2]
    box = browser.find_element(By.ID, "history")
    box.clear()
    box.send_keys(f"{hostile.title}\n{other.raw_id}\n")
    k = browser.find_element(By.ID, "k")
    k.clear()
    k.send_keys("60")
    browser.execute_script("document.getElementById('status').textContent = ''")
    browser.find_element(By.ID, "history-go").click()
    wait(browser, results_shown)
    read = [li.text for li in browser.find_elements(By.CSS_SELECTOR, "#history-read li")]
    assert read[0] == f"{hostile.title} ({hostile.raw_id})"  # the markup, shown as text
    assert "(student)" in browser.find_element(By.ID, "rationale-source").text
    answer = httpx.post(
        f"{live_url}/recommend", json={"history": [hostile.id, other.id], "k": 60}, timeout=60
    ).json()
    assert table_titles(browser) == [it["title"] for it in answer["items"]]
    assert any(HOSTILE in t for t in table_titles(browser))  # hostile markup is shown
    assert browser.find_elements(By.CSS_SELECTOR, "img") == []
    assert no_alert(browser)

    # -- search the catalog, add an item by clicking it --------------------------------------
    search = browser.find_element(By.ID, "item-search")
    search.send_keys("onerror")
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#item-results li"))
    first = browser.find_element(By.CSS_SELECTOR, "#item-results li")
    assert first.text.startswith(HOSTILE)
    box.clear()
    first.click()
    assert box.get_attribute("value") == first.get_attribute("data-id")
    assert browser.find_elements(By.CSS_SELECTOR, "img") == [] and no_alert(browser)

    # -- a bad history: the API's one-line 422 is shown --------------------------------------
    box.clear()
    box.send_keys("no such item at all")
    browser.find_element(By.ID, "history-go").click()
    error = browser.find_element(By.ID, "error")
    wait(browser, lambda d: error.is_displayed())
    assert error.text.startswith("422: body.history.0: no item with id or title")


def test_a_grounded_suggestion_links_to_its_catalog_item(browser, live_url, service, monkeypatch):
    from tests.serve.test_api import named_item, with_suggestions

    with_suggestions(service, monkeypatch, 0)
    item = named_item(service)
    browser.get(live_url + "/")
    wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#user-select option")) > 0)
    user = service.catalog.user_raw[0]
    browser.execute_script(f"document.getElementById('user-select').value = {user!r}")
    browser.find_element(By.ID, "user-go").click()
    wait(browser, results_shown)
    lines = browser.find_elements(By.CSS_SELECTOR, "#rationale-suggestions li")
    assert [li.text for li in lines] == [
        f"{item.title.upper()} in the catalog: {item.title} ({item.raw_id})",
        "A pen nobody sells (not in the catalog)",
    ]
    assert "1 of 2 suggestions" in browser.find_element(By.ID, "rationale-grounded").text
    box = browser.find_element(By.ID, "history")
    box.clear()
    lines[0].find_element(By.CSS_SELECTOR, "button").click()
    assert box.get_attribute("value") == item.raw_id
