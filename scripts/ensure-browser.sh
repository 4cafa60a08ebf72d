#!/usr/bin/env bash
# The dashboard tests drive a real Chromium. Debian's package is the one that works here (tools that
# download their own browser builds cannot); install it when it is missing and we are allowed to.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian's chromium for the dashboard tests..."
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  exit 0
fi
echo "the dashboard tests need Chromium: run 'sudo apt-get install chromium' (Debian) and try again" >&2
exit 1
