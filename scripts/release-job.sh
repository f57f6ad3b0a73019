#!/usr/bin/env bash
# Builds the Python package the way the release workflow's language jobs do
# (.github/workflows/release.yml, release_pypi; release_maven, release_golang and release_nuget
# differ only in the language): from the npm tarball alone, over a fresh checkout, with no
# build output of this working tree. Then checks its docs are translated, which needs the
# rosetta tablet inside that tarball, and that the npm tarball it embeds holds the engine. The job's `npm ci` is replaced by a link to this
# repository's node_modules (the same lockfile).
#   npx projen package:js && bash scripts/release-job.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
job=$root/.tmp/release-job
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20
shopt -s nullglob
tarballs=("$root"/dist/js/*.tgz)
[ ${#tarballs[@]} -eq 1 ] || { echo "release job: expected one npm tarball in dist/js, found ${#tarballs[@]}" >&2; exit 1; }
rm -rf "$job" && mkdir -p "$job/.repo"
# actions/checkout: the committed tree.
git archive HEAD | tar -x -C "$job/.repo"
ln -s "$root/node_modules" "$job/.repo/node_modules"
cd "$job"
# "Extract build artifact", then "Create python artifact", as the workflow runs them.
tar --strip-components=1 -xzf "${tarballs[0]}" -C .repo
(cd .repo && npx projen package:python)
bash "$root/scripts/check-translated-docs.sh" .repo/dist python
bash "$root/scripts/check-embedded-engine.sh" .repo/dist python
