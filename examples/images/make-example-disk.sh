#!/usr/bin/env bash
# Makes examples/images/web-server.vmdk: a 1 GiB disk with an MBR partition table,
# as a stream-optimized VMDK (the subformat VM Import takes). It holds no operating
# system, so it synthesizes and deploys, but a real import of it would fail with
# "ClientError: Unknown OS / Missing OS files." Needs qemu-utils and fdisk.
set -euo pipefail
cd "$(dirname "$0")"
raw=$(mktemp --suffix=.raw)
trap 'rm -f "$raw"' EXIT
truncate -s 1G "$raw"
printf 'label: dos\nstart=2048, type=83, bootable\n' | sfdisk --quiet "$raw"
qemu-img convert -f raw -O vmdk -o subformat=streamOptimized,adapter_type=lsilogic "$raw" web-server.vmdk
