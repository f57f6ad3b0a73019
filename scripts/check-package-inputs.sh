#!/usr/bin/env bash
# Run by every package task (npx projen package:js, :python, :java, :go, :dotnet) before
# jsii-pacmak: a package is made from the compiled .jsii, the engine bundle that the
# construct deploys (assets/lambda/index) and the rosetta tablet that translates the README
# and doc comment examples into each language (.jsii.tabl.json). `npx projen compile` makes
# only the first, so this fails, naming the command that makes what is missing, rather than
# let a package ship without its engine or with TypeScript in another language's docs.
set -euo pipefail
cd "$(dirname "$0")/.."
missing=0
fail() { echo "package: $1" >&2; missing=1; }
[ -s .jsii ] || fail ".jsii is missing: run \`npx projen compile\` first."
[ -s assets/lambda/index/index.js ] || fail "the engine bundle assets/lambda/index/index.js is missing: run \`npx projen bundle\` (or \`npx projen build\`) first; without it every synth of a user's app fails with 'Cannot find asset'."
if [ ! -s .jsii.tabl.json ]; then
  fail "the rosetta tablet .jsii.tabl.json is missing: run \`npx projen rosetta\` (or \`npx projen post-compile\`) after compiling; without it the Python, Java, Go and .NET docs keep the TypeScript examples."
elif [ -s .jsii ] && [ .jsii -nt .jsii.tabl.json ]; then
  fail "the rosetta tablet .jsii.tabl.json is older than .jsii: run \`npx projen rosetta\` again after compiling."
fi
exit $missing
