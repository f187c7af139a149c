"""The switchboard page in a real browser: Debian's chromium, headless, driven through
chromedriver by selenium. tests/page.rs starts Switchboard and runs one scenario:

    page.py SCENARIO    (switch | kill | banner | token | layout | drill | edit | add | units)

with SWITCHBOARD_URL (the control endpoint), ROUTE_ADDR (host:port of a Tcp route named
"echo" in front of an echo server, with a disabled fault "slow", Latency 300 ms), RULES_DIR,
TOKEN (when the endpoint has one) and SHOTS (where screenshots go). Prints "SCENARIO: ok".
"""

import json
import os
import socket
import sys
import time
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

URL = os.environ["SWITCHBOARD_URL"]
TOKEN = os.environ.get("TOKEN")
SHOTS = os.environ["SHOTS"]
DEADLINE = 10


def browser(width=1280, height=800):
    options = webdriver.ChromeOptions()
    options.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                f"--window-size={width},{height}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingOptions", {"browser": "ALL"})
    # Debian's chromedriver, named: selenium's own manager would try the network.
    service = Service(os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"))
    return webdriver.Chrome(service=service, options=options)


def api(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(URL + path, data=data, method=method)
    if TOKEN:
        request.add_header("Authorization", f"Bearer {TOKEN}")
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.load(response)


def until(driver, what, condition, deadline=DEADLINE):
    return WebDriverWait(driver, deadline, poll_frequency=0.05).until(
        lambda d: condition(d), message=f"within {deadline} s: {what}")


def round_trip_ms():
    host, port = os.environ["ROUTE_ADDR"].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as s:
        start = time.monotonic()
        s.sendall(b"ping")
        got = b""
        while len(got) < 4:
            chunk = s.recv(4 - len(got))
            assert chunk, "the echo closed"
            got += chunk
        return (time.monotonic() - start) * 1000


def switch(driver, fault):
    return driver.find_element(By.ID, f"switch-{fault}")


def enabled(fault):
    return api("GET", f"/v1/faults/{fault}")["enabled"]


def console_errors(driver, allowed=()):
    """Errors the console showed, but for network errors naming an `allowed` status."""
    errors = []
    for entry in driver.get_log("browser"):
        if entry["level"] != "SEVERE":
            continue
        if entry.get("source") == "network" and any(f"status of {s}" in entry["message"] for s in allowed):
            continue
        errors.append(entry["message"])
    return errors


def shot(driver, name):
    driver.save_screenshot(os.path.join(SHOTS, f"{name}.png"))


def scenario_switch(driver):
    driver.get(URL + "/")
    control = until(driver, "the switch of fault slow", lambda d: d.find_elements(By.ID, "switch-slow"))[0]
    label = driver.find_element(By.CSS_SELECTOR, "label[for='switch-slow']")
    assert label.get_attribute("textContent") == "slow on", label.get_attribute("textContent")
    assert control.get_attribute("role") == "switch"
    assert not control.is_selected() and not enabled("slow")
    before = round_trip_ms()
    assert before < 300, f"{before:.0f} ms before the switch"
    # The keyboard works it: focus and space, as a real control.
    control.send_keys(" ")
    until(driver, "the server's answer to the switch",
          lambda d: d.find_element(By.ID, "fault-answer").text == "slow: on (200)")
    assert enabled("slow"), "the page said on, the server did not"
    after = round_trip_ms()
    assert after >= 300, f"{after:.0f} ms with a 300 ms latency switched on"
    route_row = until(driver, "the echo route's row",
                      lambda d: d.find_elements(By.CSS_SELECTOR, "#routes tr[data-key='echo']"))[0]
    until(driver, "the route's p99 shows the latency",
          lambda d: "512 ms" in route_row.text or "≤ 512 ms" in route_row.text)
    shot(driver, "page-switch-on")
    switch(driver, "slow").click()
    until(driver, "the answer to switching off",
          lambda d: d.find_element(By.ID, "fault-answer").text == "slow: off (200)")
    assert not enabled("slow")
    assert round_trip_ms() < 300
    return console_errors(driver)


def scenario_kill(driver):
    api("PATCH", "/v1/faults/slow", {"enabled": True})
    api("POST", "/v1/faults", {"name": "cut", "route": "echo", "kind": {"Partition": {"mode": "Refuse"}}, "enabled": True, "ttl": "10m"})
    driver.get(URL + "/")
    until(driver, "both switches on", lambda d: len(d.find_elements(By.CSS_SELECTOR, "input.switch:checked")) == 2)
    until(driver, "the TTL counting down",
          lambda d: d.find_element(By.CSS_SELECTOR, "tr[data-key='cut'] td.ttl").text.startswith("9m"))
    # Cancel leaves every fault as it was.
    driver.find_element(By.ID, "kill").click()
    until(driver, "the confirmation", lambda d: d.find_element(By.ID, "kill-dialog").is_displayed())
    shot(driver, "page-kill-confirm")
    driver.find_element(By.ID, "kill-cancel").click()
    until(driver, "the confirmation closed", lambda d: not d.find_element(By.ID, "kill-dialog").is_displayed())
    assert enabled("slow") and enabled("cut")
    driver.find_element(By.ID, "kill").click()
    until(driver, "the confirmation", lambda d: d.find_element(By.ID, "kill-dialog").is_displayed())
    driver.find_element(By.ID, "kill-confirm").click()
    until(driver, "the answer to the kill switch",
          lambda d: d.find_element(By.ID, "fault-answer").text.startswith("all faults off:"))
    faults = api("GET", "/v1/faults")
    assert not any(f["enabled"] for f in faults), faults
    assert [f["name"] for f in faults] == ["slow"], "the API-made fault is removed"
    until(driver, "every switch off", lambda d: not d.find_elements(By.CSS_SELECTOR, "input.switch:checked"))
    return console_errors(driver)


def scenario_banner(driver):
    driver.get(URL + "/")
    until(driver, "the page filled", lambda d: d.find_elements(By.ID, "switch-slow"))
    banner = driver.find_element(By.ID, "rejected")
    assert not banner.is_displayed()
    broken = os.path.join(os.environ["RULES_DIR"], "broken.ron")
    with open(broken, "w") as f:
        f.write("(\n  routes: [\n    (name: \"x\", protocol: Tcp, listen: 12)\n  ],\n)\n")
    written = time.monotonic()
    until(driver, "the banner", lambda d: banner.is_displayed(), deadline=2)
    shown_after = time.monotonic() - written
    text = banner.text
    assert "broken.ron:3:" in text, text
    shot(driver, "page-rejected")
    # The event log has it too, and its filter finds it.
    driver.find_element(By.ID, "event-filter").send_keys("rejected")
    until(driver, "the rejected event in the log",
          lambda d: any(li.is_displayed() and "rejected" in li.text for li in d.find_elements(By.CSS_SELECTOR, "#events li")))
    os.remove(broken)
    until(driver, "the banner cleared by the next good reload", lambda d: not banner.is_displayed(), deadline=5)
    print(f"banner shown {shown_after * 1000:.0f} ms after the write")
    return console_errors(driver)


def scenario_token(driver):
    driver.get(URL + "/")
    dialog = until(driver, "the token prompt",
                   lambda d: d.find_element(By.ID, "token-dialog") if d.find_element(By.ID, "token-dialog").is_displayed() else None)
    shot(driver, "page-token")
    field = driver.find_element(By.ID, "token")
    field.send_keys("not-the-token\n")
    until(driver, "the prompt again after a refused token",
          lambda d: dialog.is_displayed() and "refused" in d.find_element(By.ID, "token-why").text)
    field.send_keys(TOKEN + "\n")
    until(driver, "the page filled with the token", lambda d: d.find_elements(By.ID, "switch-slow"))
    assert not dialog.is_displayed()
    driver.find_element(By.ID, "switch-slow").click()
    until(driver, "the switch answered", lambda d: d.find_element(By.ID, "fault-answer").text == "slow: on (200)")
    assert enabled("slow")
    # A token that stops working brings the prompt back.
    driver.execute_script("sessionStorage.setItem('switchboard.token', 'revoked')")
    until(driver, "the prompt after a 401", lambda d: dialog.is_displayed())
    return console_errors(driver, allowed=(401,))


def scenario_layout(driver):
    failures = []
    for width, height, name in ((1280, 800, "page-desktop"), (390, 844, "page-phone")):
        driver.set_window_size(width, height)
        driver.get(URL + "/")
        until(driver, "the page filled", lambda d: d.find_elements(By.ID, "switch-slow"))
        overflow = driver.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
        if overflow > 0:
            failures.append(f"at {width}px the page scrolls sideways by {overflow}px")
        kill = driver.find_element(By.ID, "kill")
        if not kill.is_displayed():
            failures.append(f"at {width}px the kill switch is not visible")
        shot(driver, name)
    assert not failures, failures
    return console_errors(driver)


def scenario_drill(driver):
    driver.get(URL + "/")
    start = until(driver, "the drill file's start button",
                  lambda d: d.find_elements(By.CSS_SELECTOR, "#drill-files button[data-file='echo-slow.ron']"))[0]
    assert start.text == "Start echo-slow", start.text
    start.click()
    phase = driver.find_element(By.ID, "drill-phase")
    until(driver, "the drill injecting", lambda d: phase.text.startswith("injecting"))
    until(driver, "the fault the drill switched on", lambda d: "faults on: slow" in d.find_element(By.ID, "drill-faults").text)
    assert enabled("slow")
    progress = float(driver.find_element(By.ID, "drill-progress").get_attribute("value"))
    assert progress > 0, progress
    assert "echo:" in driver.find_element(By.ID, "drill-probes").text
    shot(driver, "page-drill-running")
    until(driver, "the report", lambda d: d.find_element(By.ID, "drill-report").is_displayed(), deadline=30)
    verdict = driver.find_element(By.ID, "drill-verdict").text
    assert verdict.startswith("completed, passed"), verdict
    rows = driver.find_elements(By.CSS_SELECTOR, "#drill-table tbody tr")
    assert [r.find_element(By.TAG_NAME, "th").text for r in rows] == ["echo"], [r.text for r in rows]
    chart = until(driver, "the chart", lambda d: d.find_elements(By.CSS_SELECTOR, "#drill-chart svg"))[0]
    assert chart.size["width"] > 300, chart.size
    assert not driver.find_element(By.ID, "drill-rollback").is_displayed()
    assert not enabled("slow"), "the drill put the fault back"
    driver.execute_script("arguments[0].scrollIntoView()", driver.find_element(By.ID, "drill-report"))
    shot(driver, "page-drill-report")
    # Once more, rolled back from the page while it injects.
    driver.find_element(By.CSS_SELECTOR, "#drill-files button[data-file='echo-slow.ron']").click()
    until(driver, "the second run injecting", lambda d: phase.text.startswith("injecting") and enabled("slow"))
    driver.find_element(By.ID, "drill-rollback").click()
    until(driver, "the rolled-back report", lambda d: d.find_element(By.ID, "drill-report").is_displayed()
          and d.find_element(By.ID, "drill-verdict").text.startswith("rolled back"), deadline=15)
    assert not enabled("slow"), "the rollback put the fault back"
    return console_errors(driver)


def dialog_open(driver):
    return driver.find_element(By.ID, "fault-dialog").is_displayed()


def retype(driver, element_id, text):
    field = driver.find_element(By.ID, element_id)
    field.clear()
    field.send_keys(text)
    return field


def refused_at(driver, element_id, words):
    """Waits for the server's refusal to mark `element_id`, and returns what it says there."""
    until(driver, f"{element_id} marked by the server's answer",
          lambda d: d.find_element(By.ID, element_id).get_attribute("aria-invalid") == "true")
    said = driver.find_element(By.ID, f"{element_id}-error").text
    assert words in said, f"{element_id}: {said!r}"
    assert dialog_open(driver), "a refused form stays open"
    return said


def scenario_edit(driver):
    driver.get(URL + "/")
    until(driver, "the edit button", lambda d: d.find_elements(By.CSS_SELECTOR, "button[aria-label='Edit slow']"))[0].click()
    until(driver, "the form", dialog_open)
    kind = Select(driver.find_element(By.ID, "ff-kind"))
    assert kind.first_selected_option.text == "Latency"
    offered = [o.text for o in kind.options]
    # A Tcp route is offered the kinds that fit it, and only those.
    assert "SlowClose" in offered and "Abort" not in offered and "SqlError" not in offered, offered
    assert driver.find_element(By.ID, "ff-param-ms").get_attribute("value") == "300"
    # Parameters the server refuses: its words, at the input that holds them.
    retype(driver, "ff-param-ms", "99999999")
    driver.find_element(By.ID, "fault-save").click()
    said = refused_at(driver, "ff-param-ms", "maximum")
    shot(driver, "page-fault-form-refused")
    assert api("GET", "/v1/faults/slow")["kind"] == {"Latency": {"ms": 300, "jitter_ms": 0}}
    retype(driver, "ff-param-ms", "150")
    retype(driver, "ff-probability", "2")
    driver.find_element(By.ID, "fault-save").click()
    refused_at(driver, "ff-probability", "outside 0.0..=1.0")
    assert driver.find_element(By.ID, "ff-param-ms").get_attribute("aria-invalid") is None, "the old blame is cleared"
    retype(driver, "ff-probability", "1")
    retype(driver, "ff-param-jitter_ms", "5")
    driver.find_element(By.ID, "fault-save").click()
    until(driver, "the saved answer", lambda d: d.find_element(By.ID, "fault-answer").text == "slow: saved (200)")
    assert not dialog_open(driver)
    fault = api("GET", "/v1/faults/slow")
    assert fault["kind"] == {"Latency": {"ms": 150, "jitter_ms": 5}}, fault
    until(driver, "the row shows the new kind",
          lambda d: d.find_element(By.CSS_SELECTOR, "#faults tr[data-key='slow'] td.kind").text == "Latency(ms: 150, jitter_ms: 5)")
    # Another kind starts from parameters the server accepts.
    driver.find_element(By.CSS_SELECTOR, "button[aria-label='Edit slow']").click()
    until(driver, "the form again", dialog_open)
    Select(driver.find_element(By.ID, "ff-kind")).select_by_visible_text("SlowClose")
    driver.find_element(By.ID, "fault-save").click()
    until(driver, "the kind changed", lambda d: d.find_element(By.ID, "fault-answer").text == "slow: saved (200)")
    assert "SlowClose" in api("GET", "/v1/faults/slow")["kind"]
    print(f"refused with: {said}")
    # The refusals were answers (400) the form showed, not errors of the page.
    return console_errors(driver, allowed=(400,))


def scenario_add(driver):
    driver.get(URL + "/")
    until(driver, "the add button", lambda d: d.find_elements(By.CSS_SELECTOR, "button[aria-label='Add a fault to echo']"))[0].click()
    until(driver, "the form", dialog_open)
    assert driver.find_element(By.ID, "ff-route").get_attribute("value") == "echo"
    retype(driver, "ff-name", "lag")
    Select(driver.find_element(By.ID, "ff-kind")).select_by_visible_text("Latency")
    retype(driver, "ff-param-ms", "250")
    retype(driver, "ff-param-jitter_ms", "0")
    retype(driver, "ff-ttl", "soon")
    driver.find_element(By.ID, "fault-save").click()
    refused_at(driver, "ff-ttl", "not a duration")
    assert all(f["name"] != "lag" for f in api("GET", "/v1/faults"))
    retype(driver, "ff-ttl", "10m")
    shot(driver, "page-add-fault")
    driver.find_element(By.ID, "fault-save").click()
    until(driver, "the added answer", lambda d: d.find_element(By.ID, "fault-answer").text == "lag: added (201)")
    fault = api("GET", "/v1/faults/lag")
    assert fault["enabled"] and fault["source"] == "api" and fault["expires_at"], fault
    assert fault["kind"] == {"Latency": {"ms": 250, "jitter_ms": 0}}, fault
    until(driver, "its TTL counting down",
          lambda d: d.find_element(By.CSS_SELECTOR, "#faults tr[data-key='lag'] td.ttl").text.startswith("9m"))
    assert driver.find_element(By.ID, "switch-lag").is_selected()
    took = round_trip_ms()
    assert took >= 250, f"{took:.0f} ms through a 250 ms latency added on the page"
    # A name that is taken is the server's to refuse, at the name.
    driver.find_element(By.CSS_SELECTOR, "button[aria-label='Add a fault to echo']").click()
    until(driver, "the form again", dialog_open)
    retype(driver, "ff-name", "slow")
    driver.find_element(By.ID, "fault-save").click()
    refused_at(driver, "ff-name", 'a fault named "slow" already exists')
    foot = driver.find_element(By.ID, "fault-form-error").text
    assert foot == "refused (409): see Name", foot
    driver.find_element(By.ID, "fault-cancel").click()
    return console_errors(driver, allowed=(400, 409))


def scenario_units(driver):
    """The page's pure functions, imported as the page imports them."""
    driver.get(URL + "/")
    until(driver, "the page filled", lambda d: d.find_elements(By.ID, "switch-slow"))
    got = driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        Promise.all([import("/page/faults.js"), import("/page/routes.js")]).then(([f, r]) => {
          const now = Date.parse("2026-01-01T00:00:00Z");
          done({
            latency: f.kindText({Latency: {ms: 200, jitter_ms: 0}}),
            drop: f.kindText("Drop"),
            partition: f.kindText({Partition: {mode: "Refuse"}}),
            abort: f.kindText({Abort: {status: 503, body: "down now", headers: null}}),
            headers: f.kindText({SetHeaders: {request: {"x-chaos": "1"}, response: {}}}),
            answer: f.kindText({Answer: {addresses: ["127.0.0.2"], ttl: 5}}),
            noTtl: f.remaining(null, now),
            minutes: f.remaining("2026-01-01T00:01:30.500Z", now),
            seconds: f.remaining("2026-01-01T00:00:09Z", now),
            past: f.remaining("2025-12-31T23:59:00Z", now),
            p99None: r.p99([]),
            p99Low: r.p99([0, 0, 99, 1]),
            p99Tail: r.p99([0, 0, 98, 2]),
            p99Above: r.p99([...Array(15).fill(0), 3]),
            http: r.countsOf({http: {requests: 10, errors: 2, latency_counts: [10]}, stats: {}}),
            tcp: r.countsOf({stats: {ended: 5, failed: 1, round_trip_counts: [6]}}),
          });
        }, (e) => done({error: String(e)}));
    """)
    want = {
        "latency": "Latency(ms: 200, jitter_ms: 0)",
        "drop": "Drop()",
        "partition": "Partition(mode: Refuse)",
        "abort": 'Abort(status: 503, body: "down now")',
        "headers": 'SetHeaders(request: {"x-chaos": "1"}, response: {})',
        "answer": 'Answer(addresses: ["127.0.0.2"], ttl: 5)',
        "noTtl": "",
        "minutes": "1m 31s",
        "seconds": "9s",
        "past": "0s",
        "p99None": None,
        "p99Low": 4,
        "p99Tail": 8,
        "p99Above": 32768,
        "http": {"attempts": 10, "errors": 2, "latency": [10]},
        "tcp": {"attempts": 6, "errors": 1, "latency": [6]},
    }
    wrong = {k: (got.get(k), v) for k, v in want.items() if got.get(k) != v}
    assert not wrong and "error" not in got, f"(got, wanted): {wrong} {got.get('error')}"
    return console_errors(driver)


def main():
    name = sys.argv[1]
    driver = browser()
    try:
        errors = globals()[f"scenario_{name}"](driver)
    except Exception:
        shot(driver, f"failed-{name}")
        raise
    finally:
        driver.quit()
    assert not errors, f"the console showed errors: {errors}"
    print(f"{name}: ok")


if __name__ == "__main__":
    main()
