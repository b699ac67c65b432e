#!/bin/sh
# Install what the Cortex-M boards need to build and run C: arm-none-eabi-gcc (+ binutils,
# newlib) and qemu-system-arm, with apt-get, only if arm-none-eabi-gcc or qemu-system-arm
# is missing (tools/apt_install.sh: non-interactive, root or sudo -n, waits for the apt /
# dpkg lock, one clear error line when it cannot install).
set -eu
exec sh "$(dirname "$0")/../apt_install.sh" install_toolchain \
    "arm-none-eabi-gcc qemu-system-arm" \
    "gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm" \
    "arm-none-eabi-gcc arm-none-eabi-size qemu-system-arm"
