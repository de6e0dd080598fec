#!/usr/bin/env bash
# Installs everything the tests need on a fresh Debian 12 (apt packages, a venv with the package and its test
# extras) and runs the whole suite: lint, unit tests, and end-to-end tests with real OBS, PulseAudio and audio.
# Run as root (or with sudo). Set CAPTIONER_VENV to choose the venv (default: .venv in the repo).
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  python3-venv libportaudio2 libasound2-plugins alsa-utils
  obs-studio xvfb pulseaudio pulseaudio-utils
  nginx libnginx-mod-rtmp ffmpeg fonts-dejavu-core fonts-noto-cjk
  espeak-ng sox systemd chromium openssl
)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "== installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

PY=${PYTHON:-python3}
VENV=${CAPTIONER_VENV:-.venv}
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q -e '.[test]'

echo "== ruff"
"$VENV/bin/ruff" check captioner tests
"$VENV/bin/ruff" format --check captioner tests
echo "== mypy --strict"
"$VENV/bin/mypy" --strict captioner
echo "== pytest"
# pytest exits 5 when it collected nothing, so a run without tests fails here too.
exec "$VENV/bin/python" -m pytest -p no:cacheprovider -ra -n 2 --dist loadgroup "$@"
