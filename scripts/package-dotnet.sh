#!/usr/bin/env bash
# npx projen package:dotnet: builds the NuGet package where a .NET SDK is installed, and
# otherwise says so in one line and succeeds, so that `npx projen build` and `package-all`
# work on a machine without one (the other languages' packages are still built).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v dotnet >/dev/null 2>&1; then
  echo "package:dotnet: skipped, no .NET SDK on the PATH (dotnet not found); install one to build dist/dotnet"
  exit 0
fi
bash scripts/check-package-inputs.sh
jsii-pacmak -v --target dotnet --rosetta-unknown-snippets fail
