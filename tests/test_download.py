"""Downloads against a real HTTP server on 127.0.0.1: good, corrupt, truncated, missing, slow
and stalled mirrors; the cache and search order; the offline fallback to the embedded sample.
"""

import hashlib
import socket
import threading
import time
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy
import pytest
from idx_factory import gz, idx_bytes, random_split

from fastnet.datasets import load_dataset, load_fashion_mnist, load_mnist, locate
from fastnet.datasets.catalog import MNIST, IdxFile
from fastnet.datasets.download import download_file
from fastnet.errors import DataError

SLOW_SECONDS = 5.0
TRICKLE_SECONDS = 1.5


class Handler(BaseHTTPRequestHandler):
    """Serves ``/<mode>/<file>``; the mode decides how the file is (mis)delivered."""

    def do_GET(self):
        srv = self.server
        _, mode, name = self.path.split("/", 2)
        srv.requests.append(self.path)
        body = srv.files.get(name)
        if mode in ("loop", "elsewhere"):  # redirects to itself forever, or to srv.elsewhere
            self.send_response(302)
            self.send_header("Location", self.path if mode == "loop" else srv.elsewhere + name)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if body is None or mode == "missing":
            self.send_error(404)
            return
        if mode == "trickle-headers":  # the status line itself, one byte per TRICKLE_SECONDS
            for byte in b"HTTP/1.0 200 OK\r\n\r\n":
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                if srv.release.wait(TRICKLE_SECONDS):
                    return
        if mode == "slow":  # silent for longer than the client waits
            srv.release.wait(SLOW_SECONDS)
        if mode == "corrupt":
            body = body[:10] + bytes([body[10] ^ 0xFF]) + body[11:]
        self.send_response(200)
        if not srv.no_length:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if mode == "trickle":  # never silent for long, never done
            for byte in body:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                if srv.release.wait(TRICKLE_SECONDS):
                    return
        half = len(body) // 2
        if mode == "truncated":  # promises the whole file, sends half, hangs up
            self.wfile.write(body[:half])
            return
        if mode in ("stall", "gated"):
            self.wfile.write(body[:half])
            self.wfile.flush()
            (srv.gate if mode == "gated" else srv.release).wait(SLOW_SECONDS)
            body = body[half:]
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.files, srv.requests, srv.no_length = {}, [], False
    srv.release, srv.gate = threading.Event(), threading.Event()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    srv.url = lambda mode: f"http://127.0.0.1:{srv.server_address[1]}/{mode}/"
    yield srv
    srv.release.set()
    srv.gate.set()
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def payload(server, rng):
    """A gzipped labels file served as ``labels.gz``; returns (bytes, md5)."""
    data = gz(idx_bytes(rng.integers(0, 10, 3000, dtype=numpy.uint8)))
    server.files["labels.gz"] = data
    return data, hashlib.md5(data).hexdigest()


def closed_port_url():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def leftovers(directory, expected=()):
    return sorted(p.name for p in Path(directory).iterdir() if p.name not in expected)


def test_good_mirror(server, payload, tmp_path):
    data, md5 = payload
    path = download_file("labels.gz", tmp_path, [server.url("good")], md5, timeout=5, progress=False)
    assert path == tmp_path / "labels.gz" and path.read_bytes() == data
    assert leftovers(tmp_path) == ["labels.gz"]


def test_wrong_checksum_falls_over_to_the_next_mirror(server, payload, tmp_path):
    data, md5 = payload
    mirrors = [server.url("corrupt"), server.url("missing"), server.url("good")]
    path = download_file("labels.gz", tmp_path, mirrors, md5, timeout=5, progress=False)
    assert path.read_bytes() == data
    assert server.requests == ["/corrupt/labels.gz", "/missing/labels.gz", "/good/labels.gz"]
    assert leftovers(tmp_path) == ["labels.gz"]


def test_all_mirrors_bad_leaves_no_file(server, payload, tmp_path):
    _, md5 = payload
    mirrors = [server.url("corrupt"), server.url("truncated"), server.url("missing"), closed_port_url()]
    with pytest.raises(DataError) as info:
        download_file("labels.gz", tmp_path, mirrors, md5, timeout=5, progress=False)
    message = str(info.value)
    assert "\n" not in message and "could not download labels.gz" in message
    assert "wrong MD5" in message and "HTTP 404" in message and "refused" in message.lower()
    size = len(payload[0])
    assert f"sent {size // 2:,} of {size:,} bytes" in message
    for mirror in mirrors:
        assert mirror in message
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    "length_header, why", [(True, "offers .* bytes, more than the 1,000"), (False, "sent more than 1,000 bytes")]
)
def test_oversized_download_is_refused(server, payload, tmp_path, length_header, why):
    server.no_length = not length_header
    with pytest.raises(DataError, match=why):
        download_file(
            "labels.gz", tmp_path, [server.url("good")], payload[1], timeout=5, progress=False, max_bytes=1000
        )
    assert leftovers(tmp_path) == []


def test_bad_download_does_not_replace_an_existing_file(server, payload, tmp_path):
    old = tmp_path / "labels.gz"
    old.write_bytes(b"previous")
    with pytest.raises(DataError):
        download_file("labels.gz", tmp_path, [server.url("corrupt")], payload[1], timeout=5, progress=False)
    assert old.read_bytes() == b"previous" and leftovers(tmp_path) == ["labels.gz"]


@pytest.mark.parametrize("mode", ["slow", "stall"])
def test_silent_mirror_times_out_and_the_next_one_serves(server, payload, tmp_path, mode):
    data, md5 = payload
    start = time.perf_counter()
    path = download_file(
        "labels.gz", tmp_path, [server.url(mode), server.url("good")], md5, timeout=0.5, progress=False
    )
    elapsed = time.perf_counter() - start
    assert path.read_bytes() == data
    assert elapsed < 2.5 < SLOW_SECONDS


def test_silent_mirror_failure_says_timed_out(server, payload, tmp_path):
    with pytest.raises(DataError, match="timed out after 0.3 s"):
        download_file("labels.gz", tmp_path, [server.url("slow")], payload[1], timeout=0.3, progress=False)


@pytest.mark.parametrize("mode", ["trickle", "trickle-headers"])
def test_a_trickling_mirror_meets_the_deadline_for_the_whole_file(server, payload, tmp_path, mode):
    data, md5 = payload
    start = time.perf_counter()
    with pytest.raises(DataError) as info:
        download_file("labels.gz", tmp_path, [server.url(mode)], md5, timeout=5, deadline=2, progress=False)
    elapsed = time.perf_counter() - start
    message = str(info.value)
    assert "\n" not in message and "did not deliver it within 2 s" in message
    assert elapsed < 2 + TRICKLE_SECONDS + 1  # each read waits less than the 5 s silence timeout
    assert leftovers(tmp_path) == []
    path = download_file(
        "labels.gz", tmp_path, [server.url(mode), server.url("good")], md5, timeout=5, deadline=2, progress=False
    )
    assert path.read_bytes() == data


def test_a_redirect_loop_is_one_line(server, payload, tmp_path):
    with pytest.raises(DataError) as info:
        download_file("labels.gz", tmp_path, [server.url("loop")], payload[1], timeout=5, progress=False)
    message = str(info.value)
    assert "\n" not in message and "redirects in a loop (HTTP 302)" in message
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("scheme", ["ftp", "file"])
def test_a_redirect_away_from_http_is_refused_at_once(server, payload, tmp_path, scheme):
    """A mirror that redirects to ftp:// (a server that accepts and never answers) must not escape
    the download deadline; file:// must not read this machine's files."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    (tmp_path / "local").mkdir()
    (tmp_path / "local" / "labels.gz").write_bytes(payload[0])
    server.elsewhere = (
        f"ftp://127.0.0.1:{silent.getsockname()[1]}/" if scheme == "ftp" else (tmp_path / "local").as_uri() + "/"
    )
    start = time.perf_counter()
    try:
        with pytest.raises(DataError) as info:
            download_file(
                "labels.gz",
                tmp_path / "out",
                [server.url("elsewhere")],
                payload[1],
                timeout=30,
                deadline=3,
                progress=False,
            )
    finally:
        silent.close()
    assert time.perf_counter() - start < 3
    message = str(info.value)
    assert "\n" not in message and f"redirects to {scheme}://, which fastnet does not download from" in message
    assert not (tmp_path / "out" / "labels.gz").exists()


def test_file_appears_only_when_complete(server, payload, tmp_path):
    data, md5 = payload
    result = {}

    def fetch():
        result["path"] = download_file("labels.gz", tmp_path, [server.url("gated")], md5, timeout=10, progress=False)

    worker = threading.Thread(target=fetch)
    worker.start()
    try:
        deadline = time.monotonic() + 5
        while not any(tmp_path.iterdir()) and time.monotonic() < deadline:
            time.sleep(0.01)
        partial = leftovers(tmp_path)
        assert len(partial) == 1 and partial[0] != "labels.gz"  # half written, under a temporary name
        assert not (tmp_path / "labels.gz").exists()
    finally:
        server.gate.set()
        worker.join(10)
    assert result["path"].read_bytes() == data and leftovers(tmp_path) == ["labels.gz"]


def test_mirrors_from_the_environment(monkeypatch):
    monkeypatch.setenv("FASTNET_MNIST_MIRRORS", " http://a.example/x , http://b.example/y/ ,")
    assert MNIST.mirror_list() == ("http://a.example/x/", "http://b.example/y/")
    assert MNIST.mirror_list(["http://c.example"]) == ("http://c.example/",)
    monkeypatch.delenv("FASTNET_MNIST_MIRRORS")
    assert MNIST.mirror_list() == MNIST.mirrors


@pytest.fixture
def isolated(monkeypatch, tmp_path):
    """No FASTNET_DATA, an empty cache in tmp_path, no reachable mirror."""
    monkeypatch.delenv("FASTNET_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    offline = closed_port_url()
    monkeypatch.setenv("FASTNET_MNIST_MIRRORS", offline)
    monkeypatch.setenv("FASTNET_FASHION_MNIST_MIRRORS", offline)
    return tmp_path


def test_offline_falls_back_to_the_embedded_sample(isolated, capsys):
    (x_train, t_train), (x_test, t_test) = load_mnist(progress=False)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "embedded sample" in err[0] and "could not download" in err[0]
    assert x_train.shape == (10000, 784) and x_test.shape == (2000, 784)
    assert x_train.dtype == numpy.float32 and t_train.dtype == numpy.int64
    cache = isolated / "cache" / "fastnet" / "mnist"
    assert not cache.exists() or leftovers(cache) == []


def test_offline_fashion_mnist_is_an_error(isolated):
    with pytest.raises(DataError, match="could not download"):
        load_fashion_mnist(progress=False)


def test_user_given_folder_never_falls_back(isolated):
    with pytest.raises(DataError, match="could not download"):
        load_mnist(data_dir=isolated / "mine", progress=False)
    with pytest.raises(DataError, match="copy them there or pass download=True"):
        load_mnist(data_dir=isolated / "mine", download=False)


# A small stand-in dataset with its own checksums, served by the local server.


@pytest.fixture
def tiny(server, rng):
    arrays = random_split(rng, 30) + random_split(rng, 12)
    files, blobs = [], {}
    for spec_file, array in zip(MNIST.files, arrays, strict=True):
        raw = idx_bytes(array)
        blobs[spec_file.gz_name] = gz(raw)
        files.append(
            IdxFile(spec_file.name, hashlib.md5(blobs[spec_file.gz_name]).hexdigest(), hashlib.md5(raw).hexdigest())
        )
    server.files.update(blobs)
    spec = replace(
        MNIST,
        name="tiny",
        title="Tiny",
        train_images=files[0],
        train_labels=files[1],
        test_images=files[2],
        test_labels=files[3],
        mirrors=(server.url("good"),),
        mirrors_env="FASTNET_TINY_MIRRORS",
    )
    return spec, arrays, blobs


def test_download_into_cache_then_reuse_it(isolated, server, tiny):
    spec, arrays, _ = tiny
    *got, source = locate.load_arrays(spec, progress=False)
    assert source == str(isolated / "cache" / "fastnet" / "tiny")
    for a, b in zip(got, arrays, strict=True):
        numpy.testing.assert_array_equal(a, b)
    assert len(server.requests) == 4
    locate.load_arrays(spec, progress=False)
    assert len(server.requests) == 4  # second load: straight from the cache


def test_the_deadline_reaches_dataset_downloads(isolated, server, tiny):
    spec, _, _ = tiny
    trickling = replace(spec, mirrors=(server.url("trickle"),))
    start = time.perf_counter()
    with pytest.raises(locate.Unavailable, match="did not deliver it within 1 s"):
        locate.load_arrays(trickling, progress=False, timeout=5, deadline=1)
    assert time.perf_counter() - start < 1 + TRICKLE_SECONDS + 1


def test_corrupt_cached_file_is_downloaded_again(isolated, server, tiny):
    spec, arrays, blobs = tiny
    cache = isolated / "cache" / "fastnet" / "tiny"
    locate.load_arrays(spec, progress=False)
    (cache / "t10k-labels-idx1-ubyte.gz").write_bytes(blobs["t10k-labels-idx1-ubyte.gz"][:-5])
    *got, _ = locate.load_arrays(spec, progress=False)
    numpy.testing.assert_array_equal(got[3], arrays[3])
    assert server.requests[-1] == "/good/t10k-labels-idx1-ubyte.gz" and len(server.requests) == 5


def test_fastnet_data_comes_before_the_cache_and_is_checked(isolated, server, tiny, monkeypatch):
    spec, arrays, blobs = tiny
    root = isolated / "data"
    (root / "tiny").mkdir(parents=True)
    for name, blob in blobs.items():
        (root / "tiny" / name).write_bytes(blob)
    monkeypatch.setenv("FASTNET_DATA", str(root))
    *_, source = locate.load_arrays(spec, progress=False)
    assert source == str(root / "tiny") and server.requests == []
    other = gz(idx_bytes(arrays[1][::-1]))  # right format, different content
    (root / "tiny" / "train-labels-idx1-ubyte.gz").write_bytes(other)
    with pytest.raises(DataError, match="not the official Tiny train-labels-idx1-ubyte"):
        locate.load_arrays(spec, progress=False)
    *_, source = locate.load_arrays(spec, progress=False, verify=False)
    assert source == str(root / "tiny") and server.requests == []


def test_unknown_dataset_name():
    with pytest.raises(ValueError, match="unknown dataset 'cifar'"):
        load_dataset("cifar")
