#!/usr/bin/env bash
# Checks the npm tarball jsii-pacmak made (run by `npx projen package:js` and by CI): it holds
# the compiled library, the engine bundle (assets/lambda/index: without it a user's synth fails
# with 'Cannot find asset'), the .jsii assembly and the rosetta tablet beside it (the release
# workflow builds the other languages from this tarball alone, and jsii-pacmak translates the
# examples only from a tablet next to .jsii), and nothing built for CI.
#   bash scripts/check-npm-package.sh dist/js
set -euo pipefail
dir=${1:-dist/js}
shopt -s nullglob
tarballs=("$dir"/*.tgz)
# One tarball, or (dist/ kept from an earlier build) the one of package.json's version.
version=$(node -p 'require("./package.json").version')
if [ ${#tarballs[@]} -eq 1 ]; then
  tgz=${tarballs[0]}
elif [ -f "$dir/cdk-vm-import@$version.jsii.tgz" ]; then
  tgz=$dir/cdk-vm-import@$version.jsii.tgz
else
  echo "npm package: expected one tarball in $dir, or one of version $version, found ${#tarballs[@]}: ${tarballs[*]:-none}" >&2; exit 1
fi
entries=$(tar -tzf "$tgz")
status=0
for required in package/package.json package/.jsii package/.jsii.tabl.json package/lib/index.js package/lib/index.d.ts \
  package/assets/lambda/index/index.js package/README.md package/LICENSE; do
  grep -qxF "$required" <<< "$entries" || { echo "npm package: $tgz lacks ${required#package/}" >&2; status=1; }
done
if grep -E '^package/(examples|scripts|test|lambda|src|\.tmp|dist)/|/(target|\.venv|venv|node_modules)/' <<< "$entries"; then
  echo "npm package: $tgz holds the files listed above, which are not part of the library" >&2; status=1
fi
[ $status -eq 0 ] && echo "npm package: $tgz ($(stat -c %s "$tgz") bytes) holds the library, the engine bundle and the rosetta tablet"
exit $status
