#!/usr/bin/env bash
# Render an animation from a settings file with the built-in model on a CPU-only machine, offline.
# Usage: docs/ci/animate.sh SETTINGS.toml OUTPUT.mp4
set -euo pipefail
settings=${1:-docs/ci/animation.toml}
out=${2:-animation.mp4}
export HF_HUB_OFFLINE=1            # nothing is downloaded: the built-in model ships with scumble
scumble animate --settings "$settings" -o "$out" --overwrite --quiet --json > "${out%.*}.json"
test -s "$out"
echo "rendered $out: $(cat "${out%.*}.json")"
