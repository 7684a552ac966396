#!/usr/bin/env bash
# The demo pipeline (grows as commands arrive).
set -euo pipefail
echo "demo: nothing yet" >&2
