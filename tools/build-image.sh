#!/usr/bin/env bash
# Builds one app's image: apps/APP/Dockerfile with the repository as context, tagged
# marie/APP:VERSION. With docker where an engine answers, with buildah otherwise (no daemon;
# root, vfs storage, chroot isolation). What `nx run @marie/app-APP:image` runs.
#   bash tools/build-image.sh text-extraction [TAG]
set -euo pipefail
cd "$(dirname "$0")/.."
app=${1:?usage: tools/build-image.sh APP [TAG]}
[ -f "apps/$app/Dockerfile" ] || { echo "build-image: apps/$app/Dockerfile not found" >&2; exit 2; }
version=$(node -p "require('./apps/$app/package.json').version")
tag=${2:-marie/$app:$version}
if docker info >/dev/null 2>&1; then
  docker build -f "apps/$app/Dockerfile" -t "$tag" .
elif command -v buildah >/dev/null; then
  buildah --storage-driver vfs bud --isolation chroot --network host --layers --format docker \
    ${MARIE_PULL:+--pull=$MARIE_PULL} -f "apps/$app/Dockerfile" -t "$tag" .
else
  echo "build-image: neither a docker engine nor buildah here" >&2
  exit 1
fi
echo "built $tag"
