#!/usr/bin/env bash
# Checks that the Python, Java and Go packages carry their docs in their own language: the
# wheel's long description (METADATA, the README) and its Python docstrings, the Go module's
# README and doc comments, and the Javadoc hold no TypeScript (jsii-pacmak leaves an example
# in TypeScript when it finds no rosetta tablet translation for it), and each holds the main
# example translated (so the check cannot pass on docs that lost their examples altogether).
#   bash scripts/check-translated-docs.sh [dist [python|go|java ...]]   (all three by default)
set -euo pipefail
dist=${1:-dist}
languages=" ${*:2} "
[ "$languages" != "  " ] || languages=" python go java "
shopt -s nullglob
status=0
# What TypeScript looks like in these docs and in no translation of them.
typescript=(
  '```(ts|typescript)([^A-Za-z]|$)'
  "import \\* as [A-Za-z0-9_]+ from '"
  "from '(aws-cdk-lib|cdk-vm-import|constructs)(/[a-z0-9-]+)?'"
  'new VmImageImport\('
  'declare const [A-Za-z_]+: '
)
check() { # name, text file, positive pattern (fixed string) that the translated docs hold
  local name=$1 file=$2 expected=$3 pattern hits ok=1
  if [ ! -s "$file" ]; then echo "translated docs: $name is empty or missing" >&2; status=1; return; fi
  for pattern in "${typescript[@]}"; do
    if hits=$(grep -nE -- "$pattern" "$file"); then
      echo "translated docs: $name holds TypeScript (/$pattern/):" >&2
      head -n 5 <<< "$hits" | sed 's/^/    /' >&2
      ok=0
    fi
  done
  if ! grep -qF -- "$expected" "$file"; then
    echo "translated docs: $name lacks the translated example ($expected)" >&2; ok=0
  fi
  if [ $ok = 1 ]; then echo "translated docs: $name: no TypeScript, examples translated"; else status=1; fi
}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [[ $languages == *" python "* ]]; then
wheels=("$dist"/python/*.whl)
[ ${#wheels[@]} -eq 1 ] || { echo "translated docs: expected one wheel in $dist/python, found ${#wheels[@]}" >&2; exit 1; }
unzip -p "${wheels[0]}" '*.dist-info/METADATA' > "$work/METADATA"
check "the wheel's long description (METADATA)" "$work/METADATA" '```python'
unzip -p "${wheels[0]}" 'cdk_vm_import/*.py' > "$work/docstrings.py"
check "the wheel's Python docstrings" "$work/docstrings.py" 'image = VmImageImport(self, "Image",'
fi

if [[ $languages == *" go "* ]]; then
go=$dist/go/cdkvmimport
check "the Go module's README" "$go/README.md" 'cdkvmimport.NewVmImageImport('
cat "$go"/*.go > "$work/docs.go" 2>/dev/null || true
check "the Go module's doc comments" "$work/docs.go" 'cdkvmimport.NewVmImageImport('
fi

if [[ $languages == *" java "* ]]; then
javadoc=$(find "$dist/java" -name '*-javadoc.jar' | head -n 1)
if [ -z "$javadoc" ]; then echo "translated docs: no Javadoc jar in $dist/java" >&2; exit 1; fi
# The pages as text: the HTML entities decoded, so that a quote is a quote.
unzip -p "$javadoc" '*.html' | sed -e "s/&#39;/'/g; s/&quot;/\"/g; s/&lt;/</g; s/&gt;/>/g; s/&amp;/\\&/g" > "$work/javadoc.txt"
check "the Javadoc" "$work/javadoc.txt" 'VmImageImport.Builder.create(this, "Image")'
fi
exit $status
