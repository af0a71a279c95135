#!/usr/bin/env bash
# An independent HTTP peer (curl, and python3's json module to read JSON) following the Python
# Marie/Jina HTTP client's steps: GET /openapi.json, find the endpoint among its paths, POST to
# /<endpoint> (else /default, else /post). usage: http_peer.sh BASE_URL ENDPOINT
set -euo pipefail
base="$1"
endpoint="$2"
openapi=$(curl -sf "$base/openapi.json")
path=$(printf '%s' "$openapi" | python3 -c '
import json, sys
paths = json.load(sys.stdin)["paths"]
want = sys.argv[1]
for candidate in (want, "/default", "/post"):
    if candidate in paths and "post" in paths[candidate]:
        print(candidate)
        break
' "$endpoint")
echo "path: $path"
body='{"data": [{"text": "hello"}, {"text": "curl"}], "parameters": {"source": "curl"}, "header": {"request_id": "curl-1"}}'
answer=$(curl -s -w '\n%{http_code}' -H 'content-type: application/json' -d "$body" "$base$path")
echo "status: $(printf '%s' "$answer" | tail -n1)"
printf '%s' "$answer" | head -n -1 | python3 -c '
import json, sys
a = json.load(sys.stdin)
print("texts:", ",".join(d["text"] for d in a["data"]))
print("request_id:", a["header"]["request_id"])
print("routes:", ",".join(r["executor"] for r in a["routes"]))
'
bad=$(curl -s -o /dev/null -w '%{http_code}' -H 'content-type: application/json' -d '{"data": [{"text": 1}]}' "$base$path")
echo "bad input status: $bad"
