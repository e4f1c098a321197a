#!/usr/bin/env bash
# Install the Debian packages rtcr needs to build and test, if missing.
#   scripts/deps.sh          build + test dependencies
set -eu
pkgs=(gcc make libc6-dev pkg-config
      protobuf-c-compiler libprotobuf-c-dev   # image metadata schema (proto/)
      libxxhash-dev                           # record checksums (XXH3)
      libjson-c-dev                           # rtcr inspect --json
      libcmocka-dev                           # unit tests
      python3 util-linux procps               # integration tests (json checks, setpriv, nsenter)
      tmux                                    # integration tests: terminals (tty.sh)
      nftables iproute2                       # the network lock of --tcp-established; netns tests
      clang libclang-rt-14-dev)               # fuzzing the image reader
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "installing: ${missing[*]}"
	if [ "$(id -u)" != 0 ]; then SUDO=sudo; else SUDO=; fi
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" > /dev/null
fi
