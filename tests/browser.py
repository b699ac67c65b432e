"""Headless Chromium for the report test: find or install it, render a page, read the PNG.

``chromium()`` returns the executable, installing Debian's ``chromium`` with
``tools/browser/install_chromium.sh`` (apt-get, waiting for the dpkg lock) when missing,
or skips the test with the reason. ``render`` loads a file with the network off and
returns the DOM after rendering, the console messages and the screenshot's pixels.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-extensions", "--disable-sync", "--no-first-run", "--hide-scrollbars",
         "--disable-component-update", "--enable-logging=stderr", "--v=0")
CONSOLE = re.compile(r":CONSOLE[:(]\d*\)?\]? (.*)")


def chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    script = REPO / "tools" / "browser" / "install_chromium.sh"
    done = subprocess.run(["sh", str(script)], capture_output=True, text=True, timeout=1500)
    found = shutil.which("chromium")
    if done.returncode != 0 or found is None:
        pytest.skip("headless Chromium is not installed and could not be installed "
                    f"(apt-get install chromium): {done.stderr.strip()[-300:]}")
    return found


def render(page: Path, profile: Path, size: tuple[int, int] = (800, 600)
           ) -> tuple[str, list[str], np.ndarray]:
    exe = chromium()
    common = [exe, *FLAGS, f"--user-data-dir={profile}", f"--window-size={size[0]},{size[1]}"]
    dom = subprocess.run([*common, "--dump-dom", page.as_uri()], capture_output=True,
                         text=True, timeout=180)
    assert dom.returncode == 0, dom.stderr[-2000:]
    shot = profile / "shot.png"
    pic = subprocess.run([*common, f"--screenshot={shot}", page.as_uri()],
                         capture_output=True, text=True, timeout=180)
    assert pic.returncode == 0 and shot.is_file(), pic.stderr[-2000:]
    console = [m.group(1) for m in CONSOLE.finditer(dom.stderr + pic.stderr)]
    return dom.stdout, console, read_png(shot.read_bytes())


def read_png(data: bytes) -> np.ndarray:
    """RGB(A) 8-bit PNG -> array (height, width, channels); enough for screenshots."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    assert header is not None
    width, height, depth, color = header[:4]
    assert depth == 8 and color in (2, 6), header
    channels = 3 if color == 2 else 4
    raw = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(height, 1 + width * channels)
    out = np.zeros((height, width * channels), np.int32)
    for y in range(height):
        kind, line = raw[y, 0], raw[y, 1:].astype(np.int32)
        up = out[y - 1] if y else np.zeros_like(line)
        if kind == 0:
            row = line
        elif kind == 2:
            row = (line + up) & 255
        else:  # 1 sub, 3 average, 4 paeth: left-dependent, per byte
            row = np.zeros_like(line)
            for x in range(len(line)):
                left = row[x - channels] if x >= channels else 0
                ul = up[x - channels] if x >= channels else 0
                if kind == 1:
                    pred = left
                elif kind == 3:
                    pred = (left + up[x]) // 2
                else:
                    p = left + up[x] - ul
                    pa, pb, pc = abs(p - left), abs(p - up[x]), abs(p - ul)
                    pred = left if pa <= pb and pa <= pc else up[x] if pb <= pc else ul
                row[x] = (line[x] + pred) & 255
        out[y] = row
    return out.reshape(height, width, channels).astype(np.uint8)
