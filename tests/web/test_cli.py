"""``tastebud web`` as its own process against a real tastebud server; Ctrl-C stops it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx

from live_server import free_port


def test_tastebud_web_serves_the_site_and_stops_on_ctrl_c(tastebud_server) -> None:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "tastebud.cli.main", "web", "--target", tastebud_server.target,
                                "--port", str(port), "--label", "listened"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, "HF_HUB_OFFLINE": "1"})
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, process.stdout.read()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "tastebud web did not answer"
            time.sleep(0.2)
        home = httpx.get(f"http://127.0.0.1:{port}/home", cookies={"tastebud_user": "2"}, timeout=30)
        assert home.status_code == 200 and "Because you listened to" in home.text
    finally:
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=30)
    assert process.returncode == 0, out


def test_bad_labels_file_is_refused_by_name(tmp_path) -> None:
    labels = tmp_path / "labels.toml"
    labels.write_text('colour = "red"\n')
    result = subprocess.run([sys.executable, "-m", "tastebud.cli.main", "web", "--labels", str(labels)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "colour" in result.stderr


def test_the_website_imports_no_server_internals() -> None:
    code = ("import sys, tastebud.web.app, tastebud.web.cli, tastebud.web.client; "
            "print(sorted(m for m in sys.modules if m.split('.')[:2] in "
            "(['tastebud', 'server'], ['tastebud', 'index'], ['tastebud', 'embed'], ['tastebud', 'train'], "
            "['tastebud', 'ingest'], ['tastebud', 'cluster'])))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "[]"
