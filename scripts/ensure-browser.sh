#!/usr/bin/env bash
# The dashboard tests drive a real Chromium. Debian's package is the one that works here (tools that
# download their own browser builds cannot); install it when it is missing and we are allowed to.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian's chromium for the dashboard tests..."
  # Another apt (unattended upgrades, a second npm test) may hold the lock: wait for it, then say so.
  lock_wait=(-o DPkg::Lock::Timeout=600)
  for attempt in 1 2 3; do
    if apt-get "${lock_wait[@]}" update -qq && DEBIAN_FRONTEND=noninteractive apt-get "${lock_wait[@]}" install -y -qq chromium >/dev/null; then
      exit 0
    fi
    echo "installing chromium failed (attempt $attempt); trying again in $((attempt * 10)) s" >&2
    sleep $((attempt * 10))
  done
  echo "could not install chromium: is another apt holding its lock for more than 10 minutes? run 'apt-get install chromium' and try again" >&2
  exit 1
fi
echo "the dashboard tests need Chromium: run 'sudo apt-get install chromium' (Debian) and try again" >&2
exit 1
