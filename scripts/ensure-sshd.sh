#!/usr/bin/env bash
# The SSH fleet's tests run a real OpenSSH server on loopback (test/support/sshd.ts starts it with
# its own config and host key). Debian's openssh-server is the one used; install it when it is
# missing and we are allowed to. Only the package is installed: no system sshd is started here.
set -euo pipefail
if [ -x /usr/sbin/sshd ]; then exit 0; fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian's openssh-server for the SSH fleet tests..."
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
      DEBIAN_FRONTEND=noninteractive apt-get "${lock_wait[@]}" install -y -qq --no-install-recommends openssh-server >/dev/null; then
      exit 0
    fi
    echo "installing openssh-server failed (attempt $attempt); trying again in $((attempt * 10)) s" >&2
    sleep $((attempt * 10))
  done
  echo "could not install openssh-server: is another apt holding its lock for more than 10 minutes? run 'apt-get install openssh-server' and try again" >&2
  exit 1
fi
echo "the SSH fleet tests need OpenSSH's server: run 'sudo apt-get install openssh-server' (Debian) and try again" >&2
exit 1
