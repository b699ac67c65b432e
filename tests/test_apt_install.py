"""``tools/apt_install.sh`` (behind ``install_toolchain.sh`` and ``install_chromium.sh``),
run against a stub ``apt-get`` on ``PATH``: it installs only what is missing, waits while
another apt/dpkg holds the lock, and fails with one clear line when apt-get fails."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "tools" / "apt_install.sh"

STUB = """#!/bin/sh
# a stand-in for apt-get: the first LOCKED calls fail on a held lock; "install" creates the
# fake tool; every call is logged
echo "$@" >> "{log}"
n=$(cat "{count}" 2>/dev/null || echo 0); echo $((n + 1)) > "{count}"
if [ "$n" -lt {locked} ]; then
    echo "E: Could not get lock /var/lib/dpkg/lock-frontend" >&2; exit 100
fi
case "$*" in *install*) {install} ;; esac
exit 0
"""


def _run(tmp_path: Path, locked: int, install: str) -> subprocess.CompletedProcess[str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    stub = bin_dir / "apt-get"
    stub.write_text(STUB.format(log=tmp_path / "log", count=tmp_path / "count",
                                locked=locked, install=install))
    stub.chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "APT_LOCK_POLL": "0"}
    return subprocess.run(["sh", str(SCRIPT), "install_fake", "microlith-fake-tool",
                           "fake-package"], env=env, capture_output=True, text=True,
                          timeout=60)


@pytest.mark.skipif(os.geteuid() != 0, reason="the script runs apt-get as root or via sudo")
def test_waits_for_the_lock_then_installs(tmp_path: Path) -> None:
    tool = tmp_path / "bin" / "microlith-fake-tool"
    proc = _run(tmp_path, locked=2, install=f"printf '#!/bin/sh\\n' > {tool}; chmod +x {tool}")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("holds the lock; waiting") == 2
    calls = (tmp_path / "log").read_text().splitlines()
    assert " install " in calls[-1] and calls[-1].endswith("fake-package")
    assert "installed: microlith-fake-tool" in proc.stdout
    again = _run(tmp_path, locked=0, install="exit 1")  # present now: apt-get not called
    assert again.returncode == 0 and "nothing to install" in again.stdout
    assert len((tmp_path / "log").read_text().splitlines()) == len(calls)


@pytest.mark.skipif(os.geteuid() != 0, reason="the script runs apt-get as root or via sudo")
def test_a_failing_install_is_one_clear_error(tmp_path: Path) -> None:
    proc = _run(tmp_path, locked=0, install="echo 'E: Unable to locate package' >&2; exit 100")
    assert proc.returncode != 0
    assert "install_fake: error: apt-get install fake-package failed" in proc.stderr
