#!/usr/bin/env bash
# Runs every glint test (lit + FileCheck suites and GoogleTest units) through
# ctest, installing and building first when needed.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
ctest --test-dir "$GLINT_BUILD" --output-on-failure -j "$(nproc)" "$@"
