#!/usr/bin/env bash
# Lints every synthesized template with cfn-lint (the CloudFormation linter most users
# run), in a venv of its own. Settings and the reason for each ignored check:
# .cfnlintrc.yaml. Fails on any finding not ignored there, and checks first that the
# linter does report a planted error.
#   bash scripts/cfn-lint.sh TEMPLATE...
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.tmp/cfn-lint-venv
if [ ! -x "$venv/bin/cfn-lint" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check 'cfn-lint==1.58.0'
fi
"$venv/bin/cfn-lint" --version

planted=.tmp/cfn-lint-planted.template.json
printf '%s\n' '{"Resources":{"Bucket":{"Type":"AWS::S3::Bucket","Properties":{"NoSuchProperty":true}}}}' > "$planted"
if "$venv/bin/cfn-lint" "$planted" >/dev/null; then
  echo "cfn-lint reported nothing on a template with an unknown property: the lint is not working"
  exit 1
fi

"$venv/bin/cfn-lint" "$@"
echo "cfn-lint: no findings in $# templates"
