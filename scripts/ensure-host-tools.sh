#!/usr/bin/env bash
# What the host tests run besides bash, tar and gzip, installed from Debian when missing and we are
# allowed to:
# - openssh-server: the SSH fleet's tests run a real OpenSSH server on loopback (test/support/sshd.ts
#   starts it with its own config and host key). Only the package: no system sshd is started here.
# - isal, wished for only: the distribute step inflates with its igzip when a host has it, else with
#   gzip; with it here the tests run the path fast hosts take (a test takes igzip away to run the
#   other). Without it every test still runs, on gzip: a failed install of it is only a warning.
set -euo pipefail
packages=()
required=no
if [ ! -x /usr/sbin/sshd ]; then packages+=(openssh-server); required=yes; fi
if ! command -v igzip >/dev/null 2>&1; then packages+=(isal); fi
if [ "${#packages[@]}" = 0 ]; then exit 0; fi
if [ "$required" = no ]; then
  warn_only() { echo "note: ${packages[*]} not installed; the host tests run on gzip instead of igzip" >&2; exit 0; }
  trap warn_only ERR
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian's ${packages[*]} for the host tests..."
  # Another apt (unattended upgrades, a second npm test) may hold the lock: wait for it, then say so.
  lock_wait=(-o DPkg::Lock::Timeout=600)
  # A policy-rc.d answering 101 keeps the package's own service from starting (the tests start their
  # own sshd); one already there (container images ship it) is left as it is.
  made_policy=no
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && made_policy=yes
  fi
  trap 'if [ "$made_policy" = yes ]; then rm -f /usr/sbin/policy-rc.d; fi' EXIT
  for attempt in 1 2 3; do
    if apt-get "${lock_wait[@]}" update -qq &&
      DEBIAN_FRONTEND=noninteractive apt-get "${lock_wait[@]}" install -y -qq --no-install-recommends "${packages[@]}" >/dev/null; then
      exit 0
    fi
    echo "installing ${packages[*]} failed (attempt $attempt); trying again in $((attempt * 10)) s" >&2
    sleep $((attempt * 10))
  done
  if [ "$required" = no ]; then warn_only; fi
  echo "could not install ${packages[*]}: is another apt holding its lock for more than 10 minutes? run 'apt-get install ${packages[*]}' and try again" >&2
  exit 1
fi
if [ "$required" = no ]; then warn_only; fi
echo "the host tests need ${packages[*]}: run 'sudo apt-get install ${packages[*]}' (Debian) and try again" >&2
exit 1
