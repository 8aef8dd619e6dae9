"""What a person does in the browser, as small helpers over Selenium (ids from UI-SPEC)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

# Installed in a live run page: a marker that a reload would wipe, the status and step the page
# showed when it was opened, and every value they take afterwards.
RECORD_JS = """
window.ftxMarker = 'no reload';
const read = (id) => (document.getElementById(id) || {}).textContent || '';
window.ftxSeen = {status: [read('run-status').trim()], step: [read('run-step').trim()]};
const watch = (id, key) => new MutationObserver(() => {
  const now = read(id).trim();
  const seen = window.ftxSeen[key];
  if (seen[seen.length - 1] !== now) seen.push(now);
}).observe(document.getElementById(id), {childList: true, characterData: true, subtree: true});
watch('run-status', 'status');
watch('run-step', 'step');
"""


def wait(driver: Any, condition: Any, timeout: float = 30, message: str = "") -> Any:
    """``WebDriverWait(driver, timeout).until(condition)`` with a readable failure; an element
    that a navigation replaced while ``condition`` read it counts as not yet."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    ignored = (NoSuchElementException, StaleElementReferenceException)
    waiter = WebDriverWait(driver, timeout, poll_frequency=0.1, ignored_exceptions=ignored)
    return waiter.until(lambda d: _unless_replaced(condition, d), message)


def _unless_replaced(condition: Any, driver: Any) -> Any:
    """``condition(driver)``, or ``False`` when Chrome reports the element it read as gone
    from the document: the form's reply replaced the page between finding the element and
    reading it (Chrome raises a plain ``WebDriverException`` there, not a stale-element one)."""
    from selenium.common.exceptions import WebDriverException

    try:
        return condition(driver)
    except WebDriverException as error:
        if "does not belong to the document" in str(error):
            return False
        raise


def by_css(driver: Any, selector: str) -> Any:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, selector)


def all_css(driver: Any, selector: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, selector)


def text(driver: Any, selector: str) -> str:
    """The element's text as rendered (``textContent`` for hidden ones), stripped."""
    element = by_css(driver, selector)
    return (element.text or element.get_attribute("textContent") or "").strip()


def choose(driver: Any, selector: str, value: str) -> None:
    """Pick ``value`` in a ``<select>``; when that reloads the page, wait for the new one."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import Select

    select = by_css(driver, selector)
    if select.get_attribute("value") == value:
        return
    Select(select).select_by_value(value)

    def settled(d: Any) -> bool:
        try:
            return by_css(d, selector).get_attribute("value") == value and (
                d.execute_script("return document.readyState") == "complete"
            )
        except StaleElementReferenceException:
            return False

    wait(driver, settled, message=f"{selector} did not settle on {value}")


def fill(driver: Any, fields: dict[str, Any]) -> None:
    """Type each value into ``#field-KEY`` (``KEY`` = ``section-key`` or ``model`` …),
    replacing what was there."""
    for key, value in fields.items():
        box = by_css(driver, f"#field-{key}")
        box.clear()
        box.send_keys(str(value))


def open_new_run(driver: Any, url: str, plugin: str, *, via_nav: bool = True) -> None:
    """Open the new-run form for ``plugin``: as a person does (from the runs page, the nav link,
    then the method picker) or, with ``via_nav=False``, straight at ``/new?plugin=PLUGIN``."""
    if via_nav:
        driver.get(url)
        by_css(driver, "#nav-new").click()
    else:
        driver.get(f"{url}/new?plugin={plugin}")
    wait(driver, lambda d: d.find_elements("css selector", "form#new-run"), message="no form")
    choose(driver, "select#plugin", plugin)


def run_form_fields(model: Path, data: dict[str, Path], name: str, **extra: Any) -> dict:
    """The form fields of a tiny run of ``model`` on the tiny data (held-out file scored)."""
    return {
        "model": model,
        "data": data["train"],
        "output": name,
        "data-eval": data["eval"],
        "train-max_steps": 40,
        "train-learning_rate": "5e-3",
        "train-logging_steps": 1,
        "train-per_device_train_batch_size": 4,
        "train-warmup_steps": 0,
        "data-eval_max_new_tokens": 8,
        **extra,
    }


def fetch_status(driver: Any, path: str) -> int:
    """The HTTP status the browser gets for ``path`` (same origin, redirects not followed)."""
    return driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(arguments[0], {redirect: 'manual', credentials: 'same-origin'})"
        ".then(r => done(r.type === 'opaqueredirect' ? 303 : r.status), () => done(-1));",
        path,
    )
