"""fastnet serve, for real: the command in a child process on 127.0.0.1, spoken to over HTTP,
and its page driven in a headless chromium (skipped with the reason where none is installed)."""

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import numpy
import pytest
from fastnet_cli import cli_env, command, run_cli

pytest.importorskip("PIL", reason="Pillow reads the pictures (pip install pillow)")
from user_images import user_style_png  # needs Pillow

CHROMIUM, DRIVER = (
    shutil.which("chromium") or "/usr/bin/chromium",
    shutil.which("chromedriver") or "/usr/bin/chromedriver",
)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from conftest import _mnist_dir

    out = tmp_path_factory.mktemp("serve")
    data = _mnist_dir()
    where = ["--data-dir", data] if data else ["--dataset", "sample"]
    done = run_cli(
        "train",
        "--net",
        "two-layer",
        "--epochs",
        "3",
        *where,
        "--backend",
        "numpy",
        "--out",
        out / "run",
        "--quiet",
        tmp_path=out,
    )
    assert done.returncode == 0, done.stderr
    return out / "run" / "checkpoint.npz"


@pytest.fixture
def server(checkpoint, tmp_path):
    child = subprocess.Popen(
        command("serve", checkpoint, "--port", "0", "--request-timeout", "2"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(tmp_path),
        cwd=tmp_path,
    )
    line = child.stdout.readline()
    assert "serving" in line, line + child.stderr.read()
    port = int(line.split("http://127.0.0.1:")[1].split("/")[0])
    yield child, port
    if child.poll() is None:
        child.kill()
        child.wait()


def request(port, method, path, body=None, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request(method, path, body=body, headers=headers or {})
    reply = conn.getresponse()
    data = reply.read()
    conn.close()
    return reply.status, reply.getheader("Content-Type"), data


def test_api_answers_pictures_and_refuses_everything_else(server, tmp_path):
    from fastnet.datasets import load_dataset

    _, port = server
    data = load_dataset("sample", progress=False)
    rng = numpy.random.default_rng(3)
    right = 0
    for i in range(20):
        png = user_style_png(data.x_test[i * 97], tmp_path / f"{i}.png", rng).read_bytes()
        status, kind, body = request(port, "POST", "/predict", png, {"Content-Type": "image/png"})
        assert status == 200 and kind == "application/json"
        answer = json.loads(body)
        assert len(answer["probabilities"]) == 10 and abs(sum(answer["probabilities"]) - 1) < 1e-5
        right += answer["class"] == data.t_test[i * 97]
    assert right >= 16
    status, _, body = request(port, "POST", "/predict", b"not an image")
    assert status == 400 and "not an image" in json.loads(body)["error"]
    # Too large: refused from its Content-Length, before the body is read
    big = socket.create_connection(("127.0.0.1", port), timeout=10)
    big.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 5242880\r\n\r\n")
    reply = big.makefile("rb").read()
    big.close()
    assert reply.startswith(b"HTTP/1.1 413") and b"at most" in reply
    for path in ("/etc/passwd", "/../README.md", "/page.html", "/fastnet/serve/page.html"):
        status, _, body = request(port, "GET", path)
        assert status == 404 and "error" in json.loads(body)
    status, kind, body = request(port, "GET", "/")
    assert status == 200 and kind.startswith("text/html") and b"canvas" in body


def test_a_stalled_client_is_cut_off_and_ctrl_c_stops_cleanly(server):
    child, port = server
    stalled = socket.create_connection(("127.0.0.1", port))
    stalled.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nabc")
    stalled.settimeout(10)
    start = time.monotonic()
    assert stalled.recv(100) == b""  # closed by the server after its 2 s request timeout
    assert time.monotonic() - start < 8
    stalled.close()
    child.send_signal(signal.SIGINT)
    out, err = child.communicate(timeout=20)
    assert child.returncode == 0 and "stopped" in out and "Traceback" not in err


def browser():
    pytest.importorskip("selenium", reason="the browser test needs selenium (pip install selenium)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="the browser test needs selenium")
    if not (Path(CHROMIUM).exists() and Path(DRIVER).exists()):
        pytest.skip("no chromium and chromedriver here (apt-get install chromium chromium-driver)")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=820,640"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(DRIVER), options=options)


def test_page_shows_the_drawn_digit_in_a_real_browser(server, tmp_path):
    driver = browser()  # skips, with the reason, where selenium or chromium is missing
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    _, port = server
    try:
        driver.get(f"http://127.0.0.1:{port}/")
        pad = driver.find_element(By.ID, "pad")
        # A "1": one vertical stroke down the middle, in small moves as a hand draws it
        chain = ActionChains(driver, duration=10).move_to_element_with_offset(pad, 0, -90).click_and_hold()
        for _ in range(18):
            chain = chain.move_by_offset(0, 10)
        chain.release().perform()
        WebDriverWait(driver, 20).until(lambda d: d.find_element(By.ID, "prediction").text != "")
        time.sleep(0.5)  # the last request of the stroke
        assert driver.find_element(By.ID, "prediction").text == "1"
        heights = [b.size["height"] for b in driver.find_elements(By.CSS_SELECTOR, "#bars .bar")]
        assert len(heights) == 10 and max(heights) == heights[1] > 80
        shot = tmp_path / "serve-page.png"
        driver.save_screenshot(str(shot))
        if os.environ.get("FASTNET_SCREENSHOT"):  # the README's picture is made here
            shutil.copyfile(shot, os.environ["FASTNET_SCREENSHOT"])
    finally:
        driver.quit()
