#!/usr/bin/env bash
# Runs the library against the newest aws-cdk-lib 2.x the npm registry serves, with
# deprecation warnings as errors (JSII_DEPRECATED=fail: a call of deprecated aws-cdk-lib
# API throws DeprecationError): the construct (template) tests and a synth of the example
# app, in a copy of the working tree under .tmp/newest-cdk, so the repository's own
# node_modules keep the oldest supported aws-cdk-lib (the peer floor).
#
#   bash scripts/newest-cdk.sh            # the tests below and the example synth
#   bash scripts/newest-cdk.sh test/naming.test.ts   # chosen test files instead
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
copy=$root/.tmp/newest-cdk
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20 CDK_DISABLE_VERSION_CHECK=1 CDK_CLI_NOTICES=false
t0=$(date +%s)

# The construct tests: each synthesizes stacks and asserts on their templates. Left out, as
# they test the tools beside the library rather than the library: test/compliance.test.ts
# (cdk-nag 2.38, pinned for the oldest aws-cdk-lib, sees aws-cdk-lib's newer notices about the
# test app's own cross-stack reference) and, in test/disk-file-asset.test.ts, the upload with
# cdk-assets (4.7.3, the newest, reads cloud assembly schema 54, and aws-cdk-lib 2.276 writes 55).
tests=(test/vm-image-import.test.ts test/vm-import-role.test.ts test/validation.test.ts
  test/naming.test.ts test/sharing.test.ts test/snapshot-route.test.ts test/shared-resources.test.ts
  test/engine-settings.test.ts test/security.test.ts test/disk-file-asset.test.ts)
skip='^(?!publishing with cdk-assets)'
[ $# -gt 0 ] && tests=("$@")

# The working tree as git sees it (tracked and new files, nothing ignored), with no build output.
# NEWEST_CDK_REUSE=1 keeps the copy's node_modules from an earlier run (for development).
if [ "${NEWEST_CDK_REUSE:-}" = 1 ] && [ -d "$copy/node_modules" ]; then
  find "$copy" -mindepth 1 -maxdepth 1 ! -name node_modules -exec rm -rf {} +
else
  rm -rf "$copy" && mkdir -p "$copy"
fi
git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do
  [ -e "$f" ] && printf '%s\0' "$f"
done | tar -c --null -T - | tar -x -C "$copy"
cd "$copy"
if [ ! -d node_modules ]; then
  npm ci --no-audit --no-fund --loglevel=error
  # The highest 2.x version, not a dist-tag: `latest` could one day point at a 3.x.
  npm install --no-save --no-audit --no-fund --loglevel=error 'aws-cdk-lib@2'
fi
version=$(node -p 'require("aws-cdk-lib/package.json").version')
echo "aws-cdk-lib $version (newest 2.x on the registry: $(npm view 'aws-cdk-lib@2' version | tail -n 1 | awk '{print $NF}' | tr -d "'"))"
node -e 'require("@aws-cdk/cloud-assembly-schema")' || { echo "npm left out @aws-cdk/cloud-assembly-schema"; exit 1; }
echo "--- install: $(( $(date +%s) - t0 ))s"; t0=$(date +%s)

export JSII_DEPRECATED=fail
npx projen bundle >/dev/null
mkdir -p .tmp && export TMPDIR="$copy/.tmp"
# The copy lives under .tmp/, which the project's jest config ignores: ignore only the copy's own.
npx jest --ci --silent --coverage=false --testNamePattern "$skip" \
  --testPathIgnorePatterns '/node_modules/' '/cdk\.out' '<rootDir>/\.tmp/' -- "${tests[@]}"
echo "--- template tests: $(( $(date +%s) - t0 ))s"; t0=$(date +%s)
npx cdk synth --app "ts-node -T examples/app.ts" --output examples/cdk.out --quiet
test -s examples/cdk.out/VmImportExample.template.json
echo "--- example synth: $(( $(date +%s) - t0 ))s"
echo "aws-cdk-lib $version with JSII_DEPRECATED=fail: template tests and the example synth pass"
