#!/usr/bin/env bash
# Proves the packages in dist/ install and run the way the README's install section tells a
# user to install them. Each language gets a fresh app under .tmp/bindings/apps/ (a copy of the
# example app written in it: examples/python, examples/java, examples/go, and for TypeScript
# examples/app.ts in a new npm project importing the package by name) that already has
# aws-cdk-lib 2.257.0 (the peer floor) from its own registry, as a `cdk init` app would; then
# the install section's commands for that language run in it exactly as written (extracted
# from README.md by scripts/readme-install.ts), with CDK_VM_IMPORT set to this repository; then
# the CDK CLI synthesizes it, and each template is compared with the one the TypeScript
# example synthesizes from the source in the same run.
#
#   npx projen dist          # the packages, at the version the release would publish
#   bash scripts/bindings.sh
#
# Writes the templates to .tmp/bindings/<language>/ (cfn-lint reads them there).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=$root/.tmp/bindings
apps=$out/apps
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20 CDK_DISABLE_VERSION_CHECK=1 CDK_CLI_NOTICES=false
# The README's commands name the build as "$CDK_VM_IMPORT/dist/...": this repository.
export CDK_VM_IMPORT=$root
cdk="$root/node_modules/.bin/cdk"
rm -rf "$out"
mkdir -p "$apps"
t0=$(date +%s)
took() { echo "--- $1: $(( $(date +%s) - t0 ))s"; t0=$(date +%s); }
synth() { "$cdk" synth --quiet --app "$1" --output "$2"; }
readme() { "$root/node_modules/.bin/ts-node" -T "$root/scripts/readme-install.ts" "$1"; }
# Runs one block of the README's install section, exactly as written, in the current folder.
run_readme() {
  local block
  block=$(readme "$1")
  printf '$ %s\n' "$block"
  bash -euo pipefail -c "$block"
}

# The README installs one version; dist/ must hold that one.
readme_version=$(readme version)
shopt -s nullglob
tarballs=(dist/js/cdk-vm-import@*.jsii.tgz)
built=$(basename "${tarballs[0]:-none}" .jsii.tgz); built=${built#cdk-vm-import@}
if [ "$built" != "$readme_version" ]; then
  echo "The README's install section installs $readme_version, but dist/ holds $built: build with \`npx projen dist\` (the version the release would publish), or make the install section name that version." >&2
  exit 1
fi

npx projen example
mkdir -p "$out/typescript"
cp examples/cdk.out/VmImportExample.template.json "$out/typescript/"
cp -r examples/images "$apps/images"

# TypeScript: a new npm project with aws-cdk-lib, the tarball installed by the README's
# command, and examples/app.ts importing the package by name.
mkdir -p "$apps/typescript" && cd "$apps/typescript"
printf '{ "name": "vm-import-app", "version": "0.0.0", "private": true }\n' > package.json
printf '{ "compilerOptions": { "module": "commonjs", "target": "ES2022", "strict": true, "esModuleInterop": true } }\n' > tsconfig.json
npm install --no-audit --no-fund --loglevel=error aws-cdk-lib@2.257.0 constructs@10.5.1
run_readme npm
sed "s#from '../src'#from 'cdk-vm-import'#" "$root/examples/app.ts" > app.ts
grep -q "from 'cdk-vm-import'" app.ts
ln -s ../images images
node -e 'require("cdk-vm-import")'
synth "$root/node_modules/.bin/ts-node -T app.ts" "$out/typescript-app"
took "TypeScript: npm project, install, synth"

# Python: a venv with aws-cdk-lib pinned by the example's requirements, then the wheel.
cp -r "$root/examples/python" "$apps/python" && cd "$apps/python"
python3 -m venv .venv
grep -v '^cdk-vm-import' requirements.txt > requirements-cdk.txt
.venv/bin/pip install --quiet --disable-pip-version-check -r requirements-cdk.txt
(source .venv/bin/activate && PIP_DISABLE_PIP_VERSION_CHECK=1 run_readme pip)
.venv/bin/pip show aws-cdk-lib cdk-vm-import | grep -E '^(Name|Version)'
synth "$apps/python/.venv/bin/python app.py" "$out/python"
took "Python: venv, install, synth"

# Java: the jar into the local Maven repository by the README's command, and the README's
# dependency in place of the example's. Drop the copy Maven cached from an earlier build of
# the same version first, so this run's jar is the one used.
rm -rf "${HOME}/.m2/repository/dev/cdk-vm-import"
mkdir -p "$apps/java" && cp -r "$root/examples/java/pom.xml" "$root/examples/java/src" "$apps/java/" && cd "$apps/java"
readme maven-dependency > dependency.xml
node -e '
const fs = require("fs");
let pom = fs.readFileSync("pom.xml", "utf8");
const dependency = fs.readFileSync("dependency.xml", "utf8").trim();
const ours = /<dependency>\s*<groupId>dev\.cdk-vm-import<\/groupId>[\s\S]*?<\/dependency>/;
if (!ours.test(pom)) throw new Error("examples/java/pom.xml has no cdk-vm-import dependency to replace");
// The example resolves the jar from dist/java; this app, from the local Maven repository only.
pom = pom.replace(/\s*<repositories>[\s\S]*?<\/repositories>/, "").replace(ours, dependency);
fs.writeFileSync("pom.xml", pom);
'
run_readme mvn
synth "mvn -B -q compile exec:java" "$out/java"
took "Java: install-file, resolve, compile, synth"

# Go: the example's module, its replace directive dropped, then the README's commands.
cp -r "$root/examples/go" "$apps/go" && cd "$apps/go"
go mod edit -dropreplace=github.com/cdk-vm-import/cdk-vm-import-go/cdkvmimport -droprequire=github.com/cdk-vm-import/cdk-vm-import-go/cdkvmimport
run_readme go
grep -E 'cdkvmimport' go.mod
synth "go run ." "$out/go"
took "Go: replace, tidy, build, synth"

cd "$root"
npx ts-node -T scripts/compare-templates.ts "$out/typescript/VmImportExample.template.json" \
  "$out/typescript-app/VmImportExample.template.json" "$out/python/VmImportExample.template.json" \
  "$out/java/VmImportExample.template.json" "$out/go/VmImportExample.template.json"
