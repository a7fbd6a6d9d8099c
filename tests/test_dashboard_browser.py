"""The dashboard in a real headless browser: Debian's chromium driven by Selenium, against a baked project
served by gunicorn. An operator finds a failed workflow, opens it, resumes it and sees it succeed.

Screenshots of each page go to ``test-artifacts/dashboard/`` (or ``$TEST_ARTIFACTS_DIR``). With
``UPDATE_README_SCREENSHOT=1`` the workflow page also replaces the one the generated README shows.

Needs ``apt-get install chromium chromium-driver``; without them the test is skipped, which fails a run
under CI=true (tests/conftest.py), so CI installs them.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from baking import DEFAULT_COMBINATION, Bakery
from helpers import TEMPLATE_DIR, free_port, output_of, project_env, run, stop_process, wait_until

PASSWORD = "browser-test-password"
BASIC = "Basic " + base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS_DIR") or TEMPLATE_DIR / "test-artifacts") / "dashboard"
README_SCREENSHOT = TEMPLATE_DIR / "{{cookiecutter.project_slug}}" / "docs" / "dashboard.png"

# The served app: the project's own create_app() plus a workflow whose body fails while the payment
# provider is "down" (a file exists), the failure an operator fixes and then resumes past.
BROWSER_APP = '''
import os
import time
from pathlib import Path

from order_service import create_app
from order_service.durable import DBOS, Queue, SetWorkflowID

DOWN = Path(os.environ["PAYMENTS_DOWN_FILE"])
emails = Queue("emails", concurrency=4, worker_concurrency=2, limiter={"limit": 50, "period": 60})


@DBOS.step()
def reserve_stock(order: str) -> dict:
    time.sleep(0.03)
    return {"order": order, "sku": "book-42", "reserved": True}


@DBOS.step()
def charge_card(order: str) -> dict:
    time.sleep(0.08)
    return {"order": order, "charged_cents": 4200}


@DBOS.step()
def send_receipt(order: str) -> str:
    time.sleep(0.02)
    return f"receipt sent for {order}"


@DBOS.workflow()
def email_receipt(order: str) -> str:
    return send_receipt(order)


@DBOS.workflow()
def fulfil_order(order: str) -> dict:
    stock = reserve_stock(order)
    if DOWN.exists():
        raise RuntimeError("payment provider unreachable (HTTP 503); resume once it is back")
    charged = charge_card(order)
    emails.enqueue(email_receipt, order)
    return {**stock, **charged}


app = create_app()


@app.post("/fulfil/<order>")
def fulfil(order: str):
    with SetWorkflowID(f"order-{order}"):
        try:
            return fulfil_order(order)
        except RuntimeError as exc:
            return {"error": str(exc)}, 502
'''


def find_browser() -> tuple[str, str]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not chromium or not driver:
        pytest.skip("needs Debian's chromium and chromium-driver: apt-get install -y chromium chromium-driver")
    try:
        import selenium  # noqa: F401
    except ImportError:
        pytest.skip("needs selenium (requirements-dev.txt)")
    return chromium, driver


def post(url: str) -> int:
    request = urllib.request.Request(url, data=b"", method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.fixture
def served(bakery: Bakery, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    baked = bakery.get(DEFAULT_COMBINATION)
    database = tmp_path / "browser.db"
    env = project_env(DATABASE_URL=f"sqlite:///{database}")
    migrated = run([baked.bin("alembic"), "upgrade", "head"], baked.path, env=env)
    assert migrated.returncode == 0, output_of(migrated)
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "browser_app.py").write_text(BROWSER_APP)
    down = tmp_path / "payments-down"
    port = free_port()
    log = tmp_path / "gunicorn.log"
    with log.open("w") as sink:
        server = subprocess.Popen(
            [baked.bin("gunicorn"), "--config", "gunicorn.conf.py", "--pythonpath", str(tmp_path / "app"),
             "browser_app:app"],
            cwd=baked.path, stdout=sink, stderr=subprocess.STDOUT,
            env={**env, "BIND": f"127.0.0.1:{port}", "WEB_CONCURRENCY": "2", "DASHBOARD_PASSWORD": PASSWORD,
                 "PAYMENTS_DOWN_FILE": str(down), "LOG_LEVEL": "WARNING"},
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: urllib.request.urlopen(f"{base}/healthz", timeout=5).status == 200, timeout=60,
                   what="gunicorn to serve")
        yield base, down
    finally:
        stop_process(server, timeout=45)
    assert "Traceback" not in log.read_text().replace("RuntimeError: payment provider", ""), log.read_text()[-4000:]


@pytest.fixture
def browser() -> Iterator[object]:
    chromium, driver_path = find_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1280,900", "--hide-scrollbars"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    try:
        # Basic auth on every request the page makes (its CSS, its forms), as a logged-in operator's browser.
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {"Authorization": BASIC}})
        yield driver
    finally:
        driver.quit()


def click_and_wait(driver: object, by: str, value: str) -> None:
    """Click what navigates (a link, a form's button) and wait until the next page replaced this one."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.wait import WebDriverWait

    old_page = driver.find_element(By.TAG_NAME, "html")  # type: ignore[attr-defined]
    driver.find_element(by, value).click()  # type: ignore[attr-defined]
    WebDriverWait(driver, 30).until(expected_conditions.staleness_of(old_page))


def shoot(driver: object, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    driver.save_screenshot(str(path))  # type: ignore[attr-defined]
    assert path.stat().st_size > 5000, path  # a real page, not a blank one
    return path


def test_an_operator_resumes_a_failed_workflow_in_the_browser(served: tuple[str, Path], browser: object) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.select import Select

    base, down = served
    driver = browser
    for order in ("1001", "1002", "1003"):
        assert post(f"{base}/fulfil/{order}") == 200
    down.touch()
    assert post(f"{base}/fulfil/1004") == 502  # the provider is down: the workflow fails
    down.unlink()
    assert post(f"{base}/fulfil/1005") == 200

    driver.get(f"{base}/durable/")  # type: ignore[attr-defined]
    assert "order-1004" in driver.find_element(By.ID, "workflows").text  # type: ignore[attr-defined]
    shoot(driver, "1-workflows")
    Select(driver.find_element(By.ID, "filter-status")).select_by_value("ERROR")  # type: ignore[attr-defined]
    click_and_wait(driver, By.ID, "apply-filters")
    rows = driver.find_elements(By.CSS_SELECTOR, "#workflows tbody tr")  # type: ignore[attr-defined]
    assert len(rows) == 1 and "order-1004" in rows[0].text and "ERROR" in rows[0].text
    shoot(driver, "2-failed-filtered")

    click_and_wait(driver, By.LINK_TEXT, "order-1004")
    assert driver.find_element(By.ID, "status").text == "ERROR"  # type: ignore[attr-defined]
    assert "payment provider unreachable" in driver.find_element(By.ID, "error").text  # type: ignore[attr-defined]
    assert "reserve_stock" in driver.find_element(By.ID, "steps").text  # type: ignore[attr-defined]
    assert '"1004"' in driver.find_element(By.CSS_SELECTOR, "#steps td.inputs").text  # type: ignore[attr-defined]
    shoot(driver, "3-workflow-failed")

    click_and_wait(driver, By.ID, "resume")
    assert "resumed" in driver.find_element(By.ID, "done").text  # type: ignore[attr-defined]

    def succeeded() -> bool:
        driver.refresh()  # type: ignore[attr-defined]
        return bool(driver.find_element(By.ID, "status").text == "SUCCESS")  # type: ignore[attr-defined]

    wait_until(succeeded, timeout=30, what="the resumed workflow to succeed", interval=0.5)
    steps = driver.find_element(By.ID, "steps").text  # type: ignore[attr-defined]
    assert "charge_card" in steps and "4200" in driver.find_element(By.ID, "output").text  # type: ignore[attr-defined]
    path = shoot(driver, "4-workflow-succeeded")
    if os.environ.get("UPDATE_README_SCREENSHOT"):
        README_SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copyfile(path, README_SCREENSHOT)

    click_and_wait(driver, By.LINK_TEXT, "Queues")
    assert "emails" in driver.find_element(By.ID, "queues").text  # type: ignore[attr-defined]
    assert "50 per 60 s" in driver.find_element(By.ID, "queues").text  # type: ignore[attr-defined]
    shoot(driver, "5-queues")

    driver.set_window_size(390, 844)  # type: ignore[attr-defined]  # a phone
    driver.get(f"{base}/durable/workflows/order-1004")  # type: ignore[attr-defined]
    width = driver.execute_script("return document.documentElement.scrollWidth")  # type: ignore[attr-defined]
    assert width <= 400, f"the page is {width}px wide on a 390px screen"
    shoot(driver, "6-phone-workflow")
    (ARTIFACTS / "pages.json").write_text(json.dumps(sorted(p.name for p in ARTIFACTS.glob("*.png"))))


def test_the_browser_is_refused_without_credentials(served: tuple[str, Path]) -> None:
    base, _down = served
    try:
        urllib.request.urlopen(f"{base}/durable/", timeout=10)
        status = 200
    except urllib.error.HTTPError as exc:
        status = exc.code
    assert status == 401
