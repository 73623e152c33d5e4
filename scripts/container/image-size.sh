#!/usr/bin/env bash
# Print an image's uncompressed size, the sum of its layers (what `docker images` shows):
#   scripts/container/image-size.sh [IMAGE] [--bytes]   -> "xnornet:latest 187.3 MB (187312640 bytes)"
# Exact bytes come from the layers' diff sizes in containers-storage; buildah's own rounded
# figure is the fallback.
set -euo pipefail
image=${1:-xnornet:latest}
id=$(buildah inspect --type image --format '{{.FromImageID}}' "$image")
root=$(buildah info --format '{{.store.GraphRoot}}')
driver=$(buildah info --format '{{.store.GraphDriverName}}')
bytes=$(python3 - "$root" "$driver" "$id" <<'PY' || true
import json, sys
root, driver, image_id = sys.argv[1:]
images = {i["id"]: i for i in json.load(open(f"{root}/{driver}-images/images.json"))}
layers = {l["id"]: l for l in json.load(open(f"{root}/{driver}-layers/layers.json"))}
layer, total = images[image_id]["layer"], 0
while layer:
    total += layers[layer]["diff-size"]
    layer = layers[layer].get("parent")
print(total)
PY
)
if [[ -z $bytes ]]; then
    human=$(buildah images --format '{{.Size}}' "$image" | head -1)
    bytes=$(python3 -c "import sys; n, u = sys.argv[1].split(); print(int(float(n) * {'B': 1, 'kB': 1e3, 'KB': 1e3, 'MB': 1e6, 'GB': 1e9}[u]))" "$human")
fi
if [[ ${2:-} == --bytes ]]; then echo "$bytes"; exit 0; fi
python3 -c "import sys; b = int(sys.argv[2]); print(f'{sys.argv[1]} {b / 1e6:.1f} MB ({b} bytes)')" "$image" "$bytes"
