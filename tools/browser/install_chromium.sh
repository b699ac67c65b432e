#!/bin/sh
# Install Debian's chromium (the HTML report test renders the report with it headless),
# with apt-get, only if chromium is missing (tools/apt_install.sh: non-interactive, root
# or sudo -n, waits for the apt / dpkg lock, one clear error line when it cannot install).
set -eu
exec sh "$(dirname "$0")/../apt_install.sh" install_chromium chromium chromium
