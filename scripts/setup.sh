#!/usr/bin/env bash
# Prepare a Debian bookworm machine to run vitalstream and its tests:
#   - the service binaries the tests start themselves on free ports
#     (mosquitto, redis-server, victoria-metrics, influxd); installed only if one is missing,
#     and their system services are NOT started (a policy-rc.d denies it during the install);
#   - with --tests, also Debian's chromium (the console's browser tests drive it with
#     Playwright; a browser download is not possible everywhere, so Playwright's own is not used);
#   - the package in editable mode with the faust and test extras.
# Idempotent: a second run installs nothing new from apt. Runs as root, or uses sudo.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
say() { printf 'setup: %s\n' "$*"; }

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { say "not root and no sudo: cannot install system packages"; exit 1; }
  sudo_cmd=(sudo)
fi

binaries=(/usr/sbin/mosquitto /usr/bin/mosquitto_pub /usr/bin/mosquitto_passwd /usr/bin/redis-server
          /usr/bin/victoria-metrics /usr/bin/influxd)
with_tests=0
for arg in "$@"; do
  case "$arg" in
    --tests) with_tests=1 ;;
    *) say "unknown option $arg (use --tests)"; exit 2 ;;
  esac
done
[ "$with_tests" -eq 1 ] && binaries+=(/usr/bin/chromium)
missing=()
for b in "${binaries[@]}"; do [ -x "$b" ] || missing+=("$b"); done
need_pip=0
python3 -m pip --version >/dev/null 2>&1 || need_pip=1

if [ "${#missing[@]}" -gt 0 ] || [ "$need_pip" -eq 1 ]; then
  packages=(mosquitto mosquitto-clients redis-server victoria-metrics influxdb)
  [ "$with_tests" -eq 1 ] && packages+=(chromium)
  [ "$need_pip" -eq 1 ] && packages+=(python3-pip)
  [ "$need_pip" -eq 1 ] && missing+=("python3 -m pip")
  say "missing: ${missing[*]}"
  # Package scripts call invoke-rc.d / deb-systemd-invoke, which obey policy-rc.d:
  # exit 101 = "action forbidden", so nothing starts on the default ports.
  policy=/usr/sbin/policy-rc.d
  made_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | "${sudo_cmd[@]}" tee "$policy" >/dev/null
    "${sudo_cmd[@]}" chmod 755 "$policy"
    made_policy=1
    trap '"${sudo_cmd[@]}" rm -f "$policy"' EXIT
  fi
  say "apt-get update"
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
  say "apt-get install -y ${packages[*]}"
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${packages[@]}"
  if [ "$made_policy" -eq 1 ]; then
    "${sudo_cmd[@]}" rm -f "$policy"
    trap - EXIT
  fi
else
  say "service binaries present: ${binaries[*]}"
fi

# Debian's python3 is "externally managed" (PEP 668): `python3 -m pytest` must see the
# package, so on such an interpreter pip installs into it anyway; in a venv or a pyenv
# build it is a plain install. Without write access to site-packages: --user.
pip_flags=()
eval "$(python3 - <<'PY'
import os, sys, sysconfig
in_venv = sys.prefix != sys.base_prefix
managed = os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED"))
writable = os.access(sysconfig.get_path("purelib"), os.W_OK)
print(f"py_managed={int(managed and not in_venv)} py_writable={int(writable)} py_venv={int(in_venv)}")
PY
)"
[ "$py_managed" -eq 1 ] && pip_flags+=(--break-system-packages)
[ "$py_writable" -eq 0 ] && [ "$py_venv" -eq 0 ] && pip_flags+=(--user)

say "python3 -m pip install ${pip_flags[*]:-} -e '.[faust,test]' (in $repo_root)"
cd "$repo_root"
python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore "${pip_flags[@]}" -e '.[faust,test]'
say "done"
