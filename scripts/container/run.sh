#!/usr/bin/env bash
# Run the image without Docker (buildah, root): the server on the host's network, as the image's
# non-root USER, with the image's ENTRYPOINT/CMD unless a command is given.
#
#   scripts/container/run.sh [-i IMAGE] [-v HOST_DIR:/models] [COMMAND ARGS...]
#   XNORNET_PORT=8080 scripts/container/run.sh             # every XNORNET_* variable is passed in
#   scripts/container/run.sh -v "$PWD/my-models:/models"   # your model repository
#   scripts/container/run.sh /opt/venv/bin/xnornet info /models/fashion-mnist-xnor/1/model.xnor
#
# With Docker: docker run --rm -p 8000:8000 --read-only --tmpfs /tmp -v "$PWD/my-models:/models:ro" xnornet
set -euo pipefail
image=xnornet:latest
vols=()
while [[ $# -gt 0 ]]; do
    case $1 in
        -i) image=$2; shift 2 ;;
        -v) vols+=(--volume "$2:ro"); shift 2 ;;
        *) break ;;
    esac
done
if [[ $# -eq 0 ]]; then
    mapfile -t cmd < <(buildah inspect --type image --format '{{range .Docker.Config.Entrypoint}}{{println .}}{{end}}{{range .Docker.Config.Cmd}}{{println .}}{{end}}' "$image" | sed '/^$/d')
    set -- "${cmd[@]}"
fi
envs=()
while IFS='=' read -r name _; do
    envs+=(--env "$name=${!name}")
done < <(env | grep -E '^XNORNET_[A-Z0-9_]+=' || true)

ctr=$(buildah from --pull=never "$image")
trap 'buildah rm "$ctr" >/dev/null' EXIT
buildah run --isolation chroot --network host "${envs[@]}" "${vols[@]}" "$ctr" -- "$@"
