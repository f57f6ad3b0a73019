#!/usr/bin/env bash
# The Python wheel, the Java jar and the Go module each embed the npm tarball, which jsii's
# runtime loads at synth: checks each embedded tarball as scripts/check-npm-package.sh checks
# the npm one (the engine bundle, the rosetta tablet, nothing built for CI).
#   bash scripts/check-embedded-engine.sh [dist [python|java|go ...]]   (all three by default)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dist=$(cd "${1:-dist}" && pwd)
languages=" ${*:2} "
[ "$languages" != "  " ] || languages=" python java go "
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
status=0
shopt -s nullglob
embedded() { # name, folder holding the embedded tarball
  local name=$1 dir=$2
  echo "$name embeds:"
  (cd "$root" && bash scripts/check-npm-package.sh "$dir") || status=1
}
if [[ $languages == *" python "* ]]; then
  wheels=("$dist"/python/*.whl)
  [ ${#wheels[@]} -eq 1 ] || { echo "expected one wheel in $dist/python, found ${#wheels[@]}" >&2; exit 1; }
  mkdir -p "$work/python" && unzip -q -j "${wheels[0]}" 'cdk_vm_import/_jsii/*.tgz' -d "$work/python"
  embedded "the Python wheel" "$work/python"
fi
if [[ $languages == *" java "* ]]; then
  jars=()
  while IFS= read -r jar; do jars+=("$jar"); done < <(find "$dist/java" -name 'cdk-vm-import-*.jar' ! -name '*-sources.jar' ! -name '*-javadoc.jar')
  [ ${#jars[@]} -eq 1 ] || { echo "expected one jar in $dist/java, found ${#jars[@]}" >&2; exit 1; }
  mkdir -p "$work/java" && unzip -q -j "${jars[0]}" '*.jsii.tgz' -d "$work/java"
  embedded "the Java jar" "$work/java"
fi
if [[ $languages == *" go "* ]]; then
  embedded "the Go module" "$dist/go/cdkvmimport/jsii"
fi
exit $status
