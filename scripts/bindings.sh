#!/usr/bin/env bash
# Proves the Python, Java and Go packages that jsii-pacmak built (dist/python, dist/java,
# dist/go) install and run: each goes into a clean environment with aws-cdk-lib 2.257.0
# from that language's registry, the example app written in that language
# (examples/python, examples/java, examples/go) is synthesized with the CDK CLI, and its
# template is compared with the TypeScript example's, synthesized in the same run.
#
#   npx projen package:python && npx projen package:java && npx projen package:go
#   bash scripts/bindings.sh
#
# Writes the templates to .tmp/bindings/<language>/ (cfn-lint reads them there).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=$root/.tmp/bindings
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20 CDK_DISABLE_VERSION_CHECK=1 CDK_CLI_NOTICES=false
cdk="$root/node_modules/.bin/cdk"
rm -rf "$out"
mkdir -p "$out"
t0=$(date +%s)
took() { echo "--- $1: $(( $(date +%s) - t0 ))s"; t0=$(date +%s); }
synth() { "$cdk" synth --quiet --app "$1" --output "$2"; }

npx projen example
mkdir -p "$out/typescript"
cp examples/cdk.out/VmImportExample.template.json "$out/typescript/"

# Python: a venv with the wheel and aws-cdk-lib pinned by the example's requirements.
wheel=$(ls dist/python/cdk_vm_import-*.whl)
python3 -m venv "$out/venv"
"$out/venv/bin/pip" install --quiet --disable-pip-version-check "$wheel" -r examples/python/requirements.txt
"$out/venv/bin/pip" show aws-cdk-lib | grep -E '^(Name|Version)'
(cd examples/python && synth "$out/venv/bin/python app.py" "$out/python")
took "Python: venv, install, synth"

# Java: a Maven project resolving the jar from dist/java. Drop the copy Maven cached from
# an earlier build of the same version, so this run's jar is the one used.
rm -rf "${HOME}/.m2/repository/dev/cdk-vm-import"
(cd examples/java && synth "mvn -B -q compile exec:java" "$out/java")
rm -rf examples/java/target
took "Java: resolve, compile, synth"

# Go: a module whose replace directive points at dist/go/cdkvmimport.
(cd examples/go && go mod verify >/dev/null && synth "go run ." "$out/go")
took "Go: build, synth"

npx ts-node -T scripts/compare-templates.ts "$out/typescript/VmImportExample.template.json" \
  "$out/python/VmImportExample.template.json" "$out/java/VmImportExample.template.json" "$out/go/VmImportExample.template.json"
