#!/usr/bin/env bash
# Refreshes the generated op and pass reference under docs/ from the ODS.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
cp "$GLINT_BUILD/docs/Glint/GlintOps.md" "$GLINT_ROOT/docs/GlintOps.md"
cp "$GLINT_BUILD/docs/Glint/GlintPasses.md" "$GLINT_ROOT/docs/GlintPasses.md"
echo "docs/GlintOps.md and docs/GlintPasses.md updated"
