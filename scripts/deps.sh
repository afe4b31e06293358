#!/usr/bin/env bash
# deps.sh program:package ... — install, from Debian, the package of every
# program that is not installed, then fail unless every program is there.
# `make deps` passes the list of what the tests run; a test whose program is
# missing fails (it never skips), so this is what makes `make test` work on a
# fresh machine.
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/usr/bin/$1" ]; }

missing=()
for p in "$@"; do
  have "${p%%:*}" || missing+=("${p##*:}")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
status=0
for p in "$@"; do
  if ! have "${p%%:*}"; then
    echo "deps: ${p%%:*} is still missing (Debian package ${p##*:})" >&2
    status=1
  fi
done
exit "$status"
