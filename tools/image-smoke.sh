#!/usr/bin/env bash
# Builds the runtime image from ./Dockerfile and runs the example Flow from it: the commands
# docker-compose.yml gives each service, one container each (host network, own ports), then a
# POST through the gateway. For machines without Docker: it uses buildah (apt install buildah
# debootstrap) and, when no node:24-bookworm-slim image can be pulled, makes one from a Debian
# rootfs plus Node 24 (tools/use-node.mjs: this machine's node when it is 24, else the cached
# official binary) and this machine's npm. Run as root, by hand: bash tools/image-smoke.sh
set -euo pipefail
cd "$(dirname "$0")/.."
B="buildah --storage-driver vfs"
NODE_BIN=$(node tools/use-node.mjs --print)
BASE=docker.io/library/node:24-bookworm-slim
WORK=$(mktemp -d)
containers=()
cleanup() {
  pkill -TERM -f 'node /usr/local/bin/marie' 2>/dev/null || true
  sleep 1
  for c in "${containers[@]}"; do $B rm "$c" >/dev/null 2>&1 || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

if ! $B inspect "$BASE" >/dev/null 2>&1 && ! $B pull -q "$BASE" >/dev/null 2>&1; then
  echo "making $BASE from a Debian rootfs and node $("$NODE_BIN/node" -v)"
  debootstrap --variant=minbase bookworm "$WORK/rootfs" http://deb.debian.org/debian >/dev/null
  cp "$NODE_BIN/node" "$WORK/rootfs/usr/local/bin/node"
  mkdir -p "$WORK/rootfs/usr/local/lib/node_modules" "$WORK/rootfs/etc/ssl/certs"
  cp -r "$(dirname "$(readlink -f "$(command -v npm)")")/.." "$WORK/rootfs/usr/local/lib/node_modules/npm"
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$WORK/rootfs/usr/local/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$WORK/rootfs/usr/local/bin/npx"
  # A network that inspects TLS needs its CA inside the build too.
  extra=()
  if [ -n "${NODE_EXTRA_CA_CERTS:-}" ]; then
    cp "$NODE_EXTRA_CA_CERTS" "$WORK/rootfs/etc/ssl/certs/extra-ca.crt"
    extra=(--env NODE_EXTRA_CA_CERTS=/etc/ssl/certs/extra-ca.crt)
  fi
  c=$($B from scratch)
  $B copy "$c" "$WORK/rootfs" / >/dev/null
  $B config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "${extra[@]}" --cmd node "$c"
  $B commit -q "$c" "$BASE" >/dev/null
  $B rm "$c" >/dev/null
fi

git clone -q . "$WORK/src"
time $B bud -q --isolation chroot --pull=never -t marie/runtime:0.1.0 "$WORK/src"

run() {
  local c
  c=$($B from -q marie/runtime:0.1.0)
  containers+=("$c")
  $B run --isolation chroot "$c" -- marie "$@" >"$WORK/$c.log" 2>&1 &
}
steps=/app/flow/text-steps.ts
run executor --uses Cleaner --name cleaner --host 127.0.0.1 --port 18080 --py-modules $steps
run executor --uses WordCounter --name counter --host 127.0.0.1 --port 18081 --py-modules $steps
run executor --uses WordCounter --name counter --host 127.0.0.1 --port 18082 --py-modules $steps
run gateway --host 127.0.0.1 --protocol grpc http --port 18090 18091 \
  --graph-description '{"start-gateway":["cleaner"],"cleaner":["counter"],"counter":["end-gateway"]}' \
  --deployments-addresses '{"cleaner":[["127.0.0.1:18080"]],"counter":[["127.0.0.1:18081","127.0.0.1:18082"]]}'
for _ in $(seq 1 60); do
  curl -sf http://127.0.0.1:18091/ >/dev/null && break
  sleep 1
done
node packages/cli/dist/bin.js ping grpc://127.0.0.1:18090
answer=$(curl -sf -X POST http://127.0.0.1:18091/post -H 'content-type: application/json' \
  -d '{"execEndpoint":"/default","data":[{"text":"  Hello   container  world "}]}')
echo "$answer"
grep -q '"text":"hello container world","tags":{"words":3' <<<"$answer"
echo "image smoke test passed"
