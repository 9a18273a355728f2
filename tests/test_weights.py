"""Fetching weights: the resumable URL download (against a local server) and the fetch commands."""

import http.server
import threading
from pathlib import Path

import pytest

from parts2whole.weights import SOURCES, download_url, fetch_command, weights_path

PAYLOAD = bytes(range(256)) * 1000


class RangeHandler(http.server.BaseHTTPRequestHandler):
    """Serves PAYLOAD, honouring `Range: bytes=N-` when the server is told to."""

    honour_range = True
    requested_ranges: list[str | None] = []

    def do_GET(self) -> None:
        requested = self.headers.get("Range")
        type(self).requested_ranges.append(requested)
        start = int(requested.split("=")[1].rstrip("-")) if requested and self.honour_range else 0
        self.send_response(206 if start else 200)
        self.send_header("Content-Length", str(len(PAYLOAD) - start))
        self.end_headers()
        self.wfile.write(PAYLOAD[start:])

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server():
    RangeHandler.requested_ranges = []
    httpd = http.server.HTTPServer(("127.0.0.1", 0), RangeHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/weights.pth"
    httpd.shutdown()


def test_download_resumes_from_a_partial_file(server, tmp_path: Path) -> None:
    target = tmp_path / "weights.pth"
    (tmp_path / "weights.pth.part").write_bytes(PAYLOAD[:1234])
    download_url(server, target)
    assert target.read_bytes() == PAYLOAD and not (tmp_path / "weights.pth.part").exists()
    assert RangeHandler.requested_ranges == ["bytes=1234-"]
    download_url(server, target)  # already there: nothing is asked
    assert len(RangeHandler.requested_ranges) == 1


def test_download_starts_over_when_the_server_ignores_ranges(server, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(RangeHandler, "honour_range", False)
    (tmp_path / "weights.pth.part").write_bytes(b"stale bytes")
    download_url(server, tmp_path / "weights.pth")
    assert (tmp_path / "weights.pth").read_bytes() == PAYLOAD


def test_every_source_has_a_fetch_command_and_a_place() -> None:
    assert set(SOURCES) == {"parts2whole", "sd-vae-ft-mse", "segformer", "realesrgan"}
    assert fetch_command("segformer") == "python download_weights.py --only segformer"
    # weights kept elsewhere (`python app.py --weights DIR`): the command fetches into DIR
    assert fetch_command("parts2whole", "/data/w") == "python download_weights.py --only parts2whole --dir /data/w"
    assert weights_path("realesrgan") == Path("pretrained_weights/RealESRGAN_x4plus.pth")
    assert SOURCES["parts2whole"].repo_id == "huanngzh/Parts2Whole"
    assert "decoupled_attn.pth" in SOURCES["parts2whole"].allow_patterns
