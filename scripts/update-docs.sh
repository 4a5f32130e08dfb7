#!/usr/bin/env bash
# Refreshes the generated op and pass reference under docs/ from the ODS.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
for doc in GlintOps GlintInterfaces GlintTransformsPasses \
           GlintConversionsPasses GlintCpuPasses GlintCudaPasses; do
  cp "$GLINT_BUILD/docs/Glint/$doc.md" "$GLINT_ROOT/docs/$doc.md"
done
echo "docs/GlintOps.md, docs/GlintInterfaces.md and docs/Glint*Passes.md updated"
