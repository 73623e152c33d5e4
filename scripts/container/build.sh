#!/usr/bin/env bash
# Build the xnornet image from the top-level Dockerfile with buildah (no Docker daemon needed).
#
#   scripts/container/build.sh [-t IMAGE] [--prune] [extra buildah bud args...]
#
# --prune: afterwards keep the build stage tagged (IMAGE's name + "-buildcache", so its apt layer
# stays cached) and remove dangling images (`buildah rmi --prune`), so repeated builds of a
# changing tree (CI, the container test) do not fill the disk with old layers.
# - The base (debian:bookworm-slim) must be in local storage; when it is not, it is made with
#   scripts/container/make-base-image.sh (debootstrap), since no registry is pulled from
#   (--pull=never). XNORNET_BASE_IMAGE names another base.
# - pip inside the build reaches the package index through a TLS-intercepting proxy here: the
#   host's CA bundle (XNORNET_BUILD_CA, else $PIP_CERT, else the system bundle) is mounted
#   read-only for the build only and named by the PIP_CERT build argument; nothing is baked in.
# - --format docker keeps the HEALTHCHECK (the OCI format has none); --layers caches stages.
# With Docker the same image is simply: docker build -t xnornet .
set -euo pipefail
cd "$(dirname "$0")/../.."

image=xnornet:latest
prune=0
while [[ $# -gt 0 ]]; do
    case $1 in
        -t) image=$2; shift 2 ;;
        --prune) prune=1; shift ;;
        *) break ;;
    esac
done
base=${XNORNET_BASE_IMAGE:-docker.io/library/debian:bookworm-slim}

command -v buildah >/dev/null || { echo "error: buildah not found (apt-get install -y buildah debootstrap)" >&2; exit 2; }
if ! buildah inspect --type image "$base" >/dev/null 2>&1; then
    XNORNET_BASE_IMAGE=$base scripts/container/make-base-image.sh
fi

ca_args=()
ca=${XNORNET_BUILD_CA:-${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}}
if [[ -f $ca ]]; then
    ca_args=(-v "$(readlink -f "$ca"):/run/host-ca.crt:ro" --build-arg PIP_CERT=/run/host-ca.crt)
fi

start=$SECONDS
log=$(mktemp)
trap 'rm -f "$log"' EXIT
scripts_sha=$(cat docker/*.py | sha256sum | cut -c1-64)
buildah bud --format docker --isolation chroot --pull=never --layers --force-rm \
    --build-arg BASE_IMAGE="$base" --build-arg DOCKER_SCRIPTS_SHA="$scripts_sha" \
    "${ca_args[@]}" -t "$image" "$@" . 2>&1 | tee "$log"
echo "built $image in $((SECONDS - start)) s"
if [[ $prune == 1 ]]; then
    # The build stage's last image is the "--> ID" printed just before stage 2 starts.
    stage=$(awk '/^--> [0-9a-f]+$/ {id = $2} /^\[2\/[0-9]+\] STEP 1\// {print id; exit}' "$log")
    if [[ -n $stage ]]; then buildah tag "$stage" "${image%:*}-buildcache:latest"; fi
    buildah rmi --prune >/dev/null || true
fi
scripts/container/image-size.sh "$image"
