#!/usr/bin/env bash
# Make a local stand-in for debian:bookworm-slim without a registry: debootstrap a minbase
# bookworm rootfs, trim it the way the official slim image is trimmed (no docs, man pages,
# locales, apt lists or caches; dpkg told to keep them out of later installs too), and
# import it into buildah's local storage under the official name, so the Dockerfile's
# `FROM debian:bookworm-slim` resolves to it with `--pull=never`.
#
#   scripts/container/make-base-image.sh [--force] [--plain]
#
# --plain: trimmed the same way, but without the slim image's apt and dpkg hooks (docker-clean:
# no package caches, no downloaded .debs, no docs in later installs), so that a build on it shows
# whether the Dockerfile cleans up after its own apt steps; use another XNORNET_BASE_IMAGE name.
#
# Env: XNORNET_BASE_IMAGE (default docker.io/library/debian:bookworm-slim),
#      XNORNET_DEBIAN_MIRROR (default http://deb.debian.org/debian),
#      XNORNET_CONTAINER_CACHE (work folder, default /var/tmp/xnornet-container).
# Needs root, debootstrap and buildah (apt-get install -y buildah debootstrap).
set -euo pipefail

IMAGE=${XNORNET_BASE_IMAGE:-docker.io/library/debian:bookworm-slim}
MIRROR=${XNORNET_DEBIAN_MIRROR:-http://deb.debian.org/debian}
CACHE=${XNORNET_CONTAINER_CACHE:-/var/tmp/xnornet-container}
force=0
plain=0
for arg in "$@"; do
    case $arg in
        --force) force=1 ;;
        --plain) plain=1 ;;
        *) echo "usage: $0 [--force] [--plain]" >&2; exit 2 ;;
    esac
done

if [[ $force == 0 ]] && buildah inspect --type image "$IMAGE" >/dev/null 2>&1; then
    echo "base image $IMAGE is already in local storage (--force to remake it)"
    exit 0
fi
for tool in debootstrap buildah; do
    command -v "$tool" >/dev/null || { echo "error: $tool not found (apt-get install -y buildah debootstrap)" >&2; exit 2; }
done

mkdir -p "$CACHE"
rootfs="$CACHE/rootfs"
rm -rf "$rootfs"
echo "== debootstrap --variant=minbase bookworm ($MIRROR)"
debootstrap --variant=minbase bookworm "$rootfs" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 \
    || { tail -20 "$CACHE/debootstrap.log" >&2; exit 1; }

echo "== trimming the rootfs like debian:bookworm-slim"
if [[ $plain == 0 ]]; then
# Keep later `apt-get install`s (in the Dockerfile) slim as well: the official slim image's dpkg filter.
cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
CFG
cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'CFG'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
CFG
cat >"$rootfs/etc/apt/apt.conf.d/docker-no-languages" <<'CFG'
Acquire::Languages "none";
CFG
cat >"$rootfs/etc/apt/apt.conf.d/docker-gzip-indexes" <<'CFG'
Acquire::GzipIndexes "true";
CFG
cat >"$rootfs/etc/apt/apt.conf.d/docker-autoremove-suggests" <<'CFG'
Apt::AutoRemove::SuggestsImportant "false";
CFG
fi
# The official image's sources: bookworm, its updates and security.
rm -f "$rootfs/etc/apt/sources.list"
security=${MIRROR%/debian}/debian-security
cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<SRC
Types: deb
URIs: $MIRROR
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
rm -rf "$rootfs"/usr/share/{man,groff,info,lintian,linda,locale}/* \
       "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* "$rootfs"/var/cache/debconf/*-old \
       "$rootfs"/var/lib/dpkg/*-old "$rootfs"/var/log/*.log "$rootfs"/var/log/apt/* \
       "$rootfs"/tmp/* "$rootfs"/var/tmp/* "$rootfs"/root/.cache
# Host-specific files debootstrap copied: the container runtime supplies them.
: >"$rootfs/etc/resolv.conf"
: >"$rootfs/etc/hostname"
: >"$rootfs/etc/machine-id" 2>/dev/null || true

echo "== importing as $IMAGE"
tarball="$CACHE/rootfs.tar"
tar --numeric-owner --sort=name -C "$rootfs" -cf "$tarball" .
ctr=$(buildah from --quiet scratch)
trap 'buildah rm "$ctr" >/dev/null 2>&1 || true' EXIT
buildah add --quiet "$ctr" "$tarball" / >/dev/null
buildah config --os linux --arch "$(dpkg --print-architecture)" --cmd '["bash"]' \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --label org.opencontainers.image.description="local debootstrap stand-in for debian:bookworm-slim" "$ctr"
buildah commit --quiet --format docker --rm "$ctr" "$IMAGE" >/dev/null
trap - EXIT
rm -rf "$rootfs" "$tarball"
buildah images --format '{{.Name}}:{{.Tag}} {{.Size}}' "$IMAGE"
