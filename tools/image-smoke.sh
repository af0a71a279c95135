#!/usr/bin/env bash
# Builds every app image, the runtime image and a user's image on it (examples/own-image) with
# buildah, for machines without a Docker engine, then runs them as `docker run` would (the image's
# entrypoint, user, env and workdir; host network, each on its own ports): text-extraction x2
# behind the gateway, page-orientation, the user's executor. A sample scan goes through the
# gateway's HTTP API and its text is checked; page-orientation and the user's image answer a gRPC
# call (tools/image-smoke-check.mjs); every container must stop on SIGTERM within 10 s.
# Prints each image's size; text-extraction must stay under 350 MB.
# Root, buildah and debootstrap (apt install buildah debootstrap), a built checkout (npm run build):
#   bash tools/image-smoke.sh
#   REUSE_IMAGES=1 bash tools/image-smoke.sh      # run the images the last build left
set -euo pipefail
cd "$(dirname "$0")/.."
B="buildah --storage-driver vfs"
PATH="$(node tools/use-node.mjs --print):$PATH"
WORK=$(mktemp -d)
containers=()
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  sleep 1
  for c in "${containers[@]}"; do $B rm "$c" >/dev/null 2>&1 || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

if [ -n "${REUSE_IMAGES:-}" ]; then
  echo "REUSE_IMAGES: running the images built before"
else
  bash tools/image-bases.sh
  export MARIE_PULL=never
  for app in text-extraction page-orientation gateway; do
    /usr/bin/time -f "$app built in %e s" bash tools/build-image.sh "$app" >"$WORK/build-$app.log" 2>&1 ||
      { tail -c 4000 "$WORK/build-$app.log"; exit 1; }
    tail -1 "$WORK/build-$app.log"
  done
  bud() { $B bud -q --isolation chroot --network host --layers --format docker --pull=never "$@" >/dev/null; }
  bud -t marie/runtime:0.1.0 .
  bud -t marie/own-image:0.1.0 examples/own-image
fi

echo "image sizes:"
$B images --format '{{.Name}}:{{.Tag}} {{.Size}}' | grep -E 'marie/' | sed 's/^localhost\///' | sort
te_mb=$($B images --format '{{.Size}}' marie/text-extraction:0.1.0 | node -e '
  const [n, u] = require("fs").readFileSync(0, "utf8").trim().split(" ");
  console.log(Math.round(Number(n) * { kB: 1e-3, MB: 1, GB: 1e3 }[u]));')
echo "text-extraction: $te_mb MB (target < 350 MB)"
[ "$te_mb" -lt 350 ]

# NAME IMAGE ENV... -- ARGS...: the image's entrypoint with ARGS (its CMD when none), as docker run.
start() {
  local name=$1 image=$2 c
  shift 2
  c=$($B from -q --pull=never --name "smoke-$name" "$image")
  containers+=("$c")
  while [ "$#" -gt 0 ] && [ "$1" != -- ]; do $B config --env "$1" "$c"; shift; done
  [ "${1:-}" = -- ] && shift
  local config entry=() cmd=()
  config=$($B inspect --type container "$c" | node -e 'console.log(JSON.stringify(JSON.parse(require("fs").readFileSync(0)).OCIv1.config))')
  mapfile -t entry < <(node -e 'for (const a of JSON.parse(process.argv[1]).Entrypoint ?? []) console.log(a)' "$config")
  if [ "$#" -gt 0 ]; then cmd=("$@"); else
    mapfile -t cmd < <(node -e 'for (const a of JSON.parse(process.argv[1]).Cmd ?? []) console.log(a)' "$config")
  fi
  $B run --isolation chroot --network host -v "$PWD/examples/ocr/samples:/data:ro" "$c" -- \
    "${entry[@]}" "${cmd[@]}" >"$WORK/$name.log" 2>&1 &
  pids+=($!)
  echo "started $name ($image): ${entry[*]} ${cmd[*]}"
}
wait_ready() { # NAME PORT
  for _ in $(seq 1 120); do
    node packages/cli/bin/marie.js ping "grpc://127.0.0.1:$2" --timeout 1000 >/dev/null 2>&1 && return 0
    sleep 1
  done
  echo "$1 never answered its health check:"; tail -40 "$WORK/$1.log"; exit 1
}

start te-1 marie/text-extraction:0.1.0 -- --uses /app/config.yml --host 127.0.0.1 --port 18101
start te-2 marie/text-extraction:0.1.0 -- --uses /app/config.yml --host 127.0.0.1 --port 18102
start orientation marie/page-orientation:0.1.0 -- --uses /app/config.yml --host 127.0.0.1 --port 18110
start own marie/own-image:0.1.0 -- --host 127.0.0.1 --port 18120
wait_ready te-1 18101
wait_ready te-2 18102
start gateway marie/gateway:0.1.0 GATEWAY_HOST=127.0.0.1 GATEWAY_GRPC_PORT=18190 GATEWAY_HTTP_PORT=18191 \
  TEXT_EXTRACTION_ADDRESSES=grpc://127.0.0.1:18101,grpc://127.0.0.1:18102
wait_ready gateway 18190
wait_ready orientation 18110
wait_ready own 18120

# The image's own HEALTHCHECK command, run inside the container.
health=$($B inspect --type image marie/text-extraction:0.1.0 | node -e 'console.log(JSON.stringify(JSON.parse(require("fs").readFileSync(0)).Docker?.config?.Healthcheck?.Test))')
[ "$health" != undefined ] || { echo "FAIL: marie/text-extraction has no HEALTHCHECK (an OCI-format build drops it)"; exit 1; }
mapfile -t probe < <(node -e 'for (const a of JSON.parse(process.argv[1]).slice(1)) console.log(a)' "$health")
probe=("${probe[@]//8080/18101}")
$B run --isolation chroot --network host "${containers[0]}" -- "${probe[@]}"
echo "ok   HEALTHCHECK (${probe[*]}) inside te-1"
user=$($B run --isolation chroot "${containers[0]}" -- node -p 'process.getuid()')
[ "$user" = 65532 ] && echo "ok   runs as uid $user"

answer=$(curl -sf -X POST http://127.0.0.1:18191/post -H 'content-type: application/json' \
  -d @examples/ocr/request.json)
text=$(node -e '
  const a = JSON.parse(process.argv[1]);
  const r = a.parameters.__results__.TextExtractionExecutor;
  console.log(r.metadata.ocr.map((p) => p.text).join("\n"));' "$answer")
echo "$text" | head -5
expected=$(head -1 examples/ocr/samples/scan.txt)
grep -qF "$expected" <<<"$text" || { echo "FAIL: the gateway's answer lacks \"$expected\""; exit 1; }
echo "ok   scan.tiff through the gateway: $(wc -l <<<"$text") lines, the first one right"
node tools/image-smoke-check.mjs 18110 18120 /data/scan.tiff

# SIGTERM, as `docker stop` sends it: to the container's own process (node, under buildah run),
# which must end by itself, in time, with exit status 0.
descendants() { local p; for p in $(pgrep -P "$1"); do echo "$p"; descendants "$p"; done; }
node_of() { # (its comm is MainThread: the executable tells)
  local p
  for p in $(descendants "$1"); do
    case "$(readlink "/proc/$p/exe" 2>/dev/null)" in */node) echo "$p"; return 0 ;; esac
  done
  return 0
}
for i in "${!pids[@]}"; do
  t0=$(date +%s%N)
  node_pid=$(node_of "${pids[$i]}")
  [ -n "$node_pid" ] || { echo "FAIL: no node process under ${containers[$i]}"; exit 1; }
  kill -TERM "$node_pid"
  for _ in $(seq 1 100); do kill -0 "${pids[$i]}" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "${pids[$i]}" 2>/dev/null; then echo "FAIL: ${containers[$i]} ignored SIGTERM"; exit 1; fi
  rc=0
  wait "${pids[$i]}" || rc=$?
  [ "$rc" = 0 ] || { echo "FAIL: ${containers[$i]} exited with $rc on SIGTERM"; tail -20 "$WORK/${containers[$i]#smoke-}.log"; exit 1; }
  echo "ok   ${containers[$i]} stopped on SIGTERM in $(((($(date +%s%N) - t0)) / 1000000)) ms, exit 0"
done
pids=()
echo "image smoke test passed"
