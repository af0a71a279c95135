#!/usr/bin/env bash
# Makes the two base images our Dockerfiles name, for a machine whose buildah cannot pull them
# (no registry but Debian's and npm's): both are rebuilt from Debian bookworm packages, as their
# publishers build them, so that sizes measured on top of them are close to the real ones.
#   docker.io/library/node:24-bookworm-slim   the build stage: a slim Debian, Node 24 and npm
#   gcr.io/distroless/cc-debian12:nonroot     the app images' runtime: glibc, libstdc++, libgcc,
#                                             libssl, CA certificates, tzdata, users root and
#                                             nonroot (65532), /tmp; no shell, no package manager
# An image that is already there, or that pulls, is left alone. Root, buildah, debootstrap:
#   bash tools/image-bases.sh
set -euo pipefail
cd "$(dirname "$0")/.."
B="buildah --storage-driver vfs"
NODE_IMAGE=docker.io/library/node:24-bookworm-slim
CC_IMAGE=gcr.io/distroless/cc-debian12:nonroot
have() { $B inspect --type image "$1" >/dev/null 2>&1 || $B pull -q "$1" >/dev/null 2>&1; }
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

rootfs() {
  [ -d "$WORK/rootfs" ] && return
  echo "image-bases: debootstrap bookworm (minbase)"
  debootstrap --variant=minbase --include=ca-certificates,tzdata,netbase,libgomp1 bookworm \
    "$WORK/rootfs" http://deb.debian.org/debian >/dev/null
  # What debian:bookworm-slim leaves out.
  rm -rf "$WORK"/rootfs/var/cache/apt/archives/*.deb "$WORK"/rootfs/var/lib/apt/lists/* \
    "$WORK"/rootfs/usr/share/{doc,man,info,locale,lintian,linda}/* "$WORK"/rootfs/var/log/*
}

commit() { # DIR IMAGE [buildah config args...]
  local dir=$1 image=$2 c
  shift 2
  c=$($B from scratch)
  # Through a mount, not `buildah copy`: that would make every file root's (/home/nonroot too).
  cp -a "$dir"/. "$($B mount "$c")"/
  $B umount "$c" >/dev/null
  $B config "$@" "$c"
  $B commit -q "$c" "$image" >/dev/null
  $B rm "$c" >/dev/null
  echo "image-bases: made $image ($(du -sm --apparent-size "$dir" | cut -f1) MB)"
}

if ! have "$NODE_IMAGE"; then
  rootfs
  node_bin=$(node tools/use-node.mjs --print)
  cp -a "$WORK/rootfs" "$WORK/node"
  cp "$node_bin/node" "$WORK/node/usr/local/bin/node"
  mkdir -p "$WORK/node/usr/local/lib/node_modules"
  cp -r "$(dirname "$(readlink -f "$(command -v npm)")")/.." "$WORK/node/usr/local/lib/node_modules/npm"
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$WORK/node/usr/local/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$WORK/node/usr/local/bin/npx"
  extra=()
  if [ -n "${NODE_EXTRA_CA_CERTS:-}" ]; then # a network that inspects TLS: its CA, inside
    cp "$NODE_EXTRA_CA_CERTS" "$WORK/node/etc/ssl/certs/extra-ca.crt"
    extra=(--env NODE_EXTRA_CA_CERTS=/etc/ssl/certs/extra-ca.crt)
  fi
  commit "$WORK/node" "$NODE_IMAGE" \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "${extra[@]}" --cmd node
fi

if ! have "$CC_IMAGE"; then
  rootfs
  d=$WORK/cc
  mkdir -p "$d/usr/bin" "$d/usr/sbin" "$d/usr/lib" "$d/usr/lib64" "$d/tmp" "$d/home/nonroot" "$d/etc"
  for l in bin sbin lib lib64; do ln -s "usr/$l" "$d/$l"; done
  # Every file of the packages distroless/cc holds (base-files for /etc/os-release and the tree).
  for p in base-files netbase tzdata ca-certificates libc6 libgcc-s1 libstdc++6 libssl3 libgomp1; do
    chroot "$WORK/rootfs" dpkg -L "$p"
  done | sort -u | sed 's|^/||' | while read -r f; do
    # dpkg lists a path as installed, whatever the merged /usr made of it; keep what exists.
    [ -n "$f" ] && { [ -e "$WORK/rootfs/$f" ] || [ -L "$WORK/rootfs/$f" ]; } && echo "$f"
  done >"$WORK/cc.list"
  tar -C "$WORK/rootfs" --no-recursion -cf - -T "$WORK/cc.list" |
    tar -C "$d" --keep-directory-symlink -xf -
  cp -a "$WORK/rootfs/etc/ssl" "$d/etc/" # the certificate bundle update-ca-certificates made
  rm -rf "$d"/usr/share/{doc,man,info,locale,lintian}
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$d/etc/passwd"
  printf 'root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n' >"$d/etc/group"
  chmod 1777 "$d/tmp"
  chown 65532:65532 "$d/home/nonroot"
  commit "$d" "$CC_IMAGE" --user 65532:65532 --workingdir /home/nonroot \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
fi
