#!/usr/bin/env bash
# Builds hyoka's container images with podman on a machine without Docker or registry access
# (see "Containers and Kubernetes on machines without Docker" in DESIGN.md). Needs root.
#   scripts/containers.sh setup          install podman, runc, debootstrap; configure podman
#   scripts/containers.sh base [--force] setup, then the local base image (debootstrap bookworm)
#   scripts/containers.sh build [metrics|sandbox|orchestrator|model-llamacpp-cpu|all]
#                                        (default: all = the three services)
#                                        setup, base if missing, then podman build each image
# Idempotent: packages, settings and the base image are only made when missing; builds reuse
# podman's layer cache. Prints how long each step took.
set -euo pipefail
cd "$(dirname "$0")/.."

BASE_IMAGE=${HYOKA_BASE_IMAGE:-localhost/hyoka-base:bookworm-py311}
IMAGE_PREFIX=localhost/hyoka
IMAGE_TAG=${HYOKA_IMAGE_TAG:-dev}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
CONTAINERS_CONF=${CONTAINERS_CONF_PATH:-/etc/containers/containers.conf}
# What podman needs here (recommends are not installed): runc because crun refuses the hybrid
# cgroup setup; debootstrap for the base image. All three are also in .ci/apt-packages.txt.
PACKAGES=(podman runc debootstrap)

declare -A CONTAINERFILES=(
  [metrics]=services/metrics/Containerfile
  [sandbox]=sandbox/Containerfile
  [orchestrator]=orchestrator/Containerfile
  # The CPU model server (`hyoka eval --launch llamacpp-cpu`): not in `all`, its first build
  # compiles llama.cpp (about 5 minutes).
  [model-llamacpp-cpu]=services/models/llamacpp-cpu.Containerfile
)

log() { printf 'containers: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# timed LABEL COMMAND...: runs COMMAND and prints how long it took.
timed() {
  local label=$1 start end
  shift
  start=$(date +%s.%N)
  "$@"
  end=$(date +%s.%N)
  awk -v label="$label" -v s="$start" -v e="$end" 'BEGIN { printf "containers: time %-28s %7.1f s\n", label, e - s }' >&2
}

install_packages() {
  local missing=() package
  for package in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

# conf_set SECTION KEY VALUE: sets `KEY = VALUE` under [SECTION] of $CONTAINERS_CONF, replacing an
# active `KEY = ...` line of that section or adding one under its header (or a new section);
# every other line, comments included, is kept as it is.
conf_set() {
  local section=$1 key=$2 value=$3 tmp
  mkdir -p "$(dirname "$CONTAINERS_CONF")"
  touch "$CONTAINERS_CONF"
  tmp=$(mktemp)
  awk -v section="[$section]" -v key="$key" -v line="$key = $value" '
    function flush() { if (in_section && !done) { print line; done = 1 } }
    /^[[:space:]]*\[/ {
      header = $0; gsub(/[[:space:]]/, "", header)
      if (in_section) flush()
      in_section = (header == section)
      if (in_section) seen = 1
      print
      if (in_section && !done) { print line; done = 1 }
      next
    }
    in_section && $0 ~ "^[[:space:]]*" key "[[:space:]]*=" { next }
    { print }
    END {
      if (!seen) { if (NR > 0) print ""; print section; print line }
    }
  ' "$CONTAINERS_CONF" >"$tmp"
  if ! cmp -s "$tmp" "$CONTAINERS_CONF"; then
    log "$CONTAINERS_CONF: [$section] $key = $value"
    cat "$tmp" >"$CONTAINERS_CONF"
  fi
  rm -f "$tmp"
}

configure_podman() {
  # crun refuses the hybrid cgroup setup of these machines; podman's default rlimits exceed
  # their hard limits.
  conf_set engine runtime '"runc"'
  conf_set containers default_ulimits '["nofile=1024:1024", "nproc=4096:4096"]'
}

setup() {
  [ "$(id -u)" = 0 ] || die "run as root (installs packages, writes $CONTAINERS_CONF, uses rootful podman)"
  timed "setup: packages" install_packages
  configure_podman
}

# A Debian bookworm base that behaves like python:3.11-slim for the Containerfiles: `python`,
# `python3`, pip (allowed to install system-wide, PEP 668) and venv, a UTF-8 locale, apt lists
# empty. Bookworm's python3 is 3.11, the lock's Python.
make_base() {
  local root
  root=$(mktemp -d /var/tmp/hyoka-base.XXXXXX)
  # shellcheck disable=SC2064  # expand $root now: the trap outlives this function's locals
  trap "rm -rf '$root'" EXIT
  timed "base: debootstrap" debootstrap --variant=minbase \
    --include=ca-certificates,python3,python3-pip,python3-venv,python-is-python3 \
    bookworm "$root" "$DEBIAN_MIRROR" >/dev/null
  cat >"$root/etc/apt/sources.list" <<EOF
deb $DEBIAN_MIRROR bookworm main
deb $DEBIAN_MIRROR bookworm-updates main
deb ${DEBIAN_MIRROR%/debian}/debian-security bookworm-security main
EOF
  rm -f "$root"/usr/lib/python3*/EXTERNALLY-MANAGED
  # Builds reach PyPI and Debian through this machine's network; where that network re-signs TLS
  # with a local CA (added to the host's trust under /usr/local/share/ca-certificates), the base
  # trusts the same CAs, or pip in the build fails certificate verification.
  if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
    chroot "$root" update-ca-certificates >/dev/null 2>&1
  fi
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
    "$root"/var/log/*.log "$root"/var/log/apt/*
  timed "base: podman import" import_tree "$root"
  rm -rf "$root"
  trap - EXIT
}

# import_tree DIR: the directory tree as the base image, configured as python:3.11-slim is.
import_tree() {
  tar -C "$1" -c . | podman import --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]' - "$BASE_IMAGE" >/dev/null
}

base() {
  if [ "$force_base" = 1 ] || ! podman image exists "$BASE_IMAGE"; then
    timed "base: total" make_base
  else
    log "base image $BASE_IMAGE present"
  fi
}

build_image() {
  local name=$1
  # Build output goes to stderr: stdout stays free for callers.
  timed "build: $name" podman build --layers \
    --build-arg "BASE_IMAGE=$BASE_IMAGE" \
    -f "${CONTAINERFILES[$name]}" -t "$IMAGE_PREFIX/$name:$IMAGE_TAG" . >&2
}

build() {
  local names=("$@") name
  [ ${#names[@]} -gt 0 ] || names=(all)
  if [ "${names[0]}" = all ]; then
    names=(metrics sandbox orchestrator)
  fi
  for name in "${names[@]}"; do
    [ -n "${CONTAINERFILES[$name]:-}" ] || die "unknown image '$name' (metrics, sandbox, orchestrator, model-llamacpp-cpu, all)"
  done
  base
  for name in "${names[@]}"; do
    build_image "$name"
  done
  podman images --filter "reference=$IMAGE_PREFIX/*" --filter "reference=$BASE_IMAGE" \
    --format '{{.Repository}}:{{.Tag}} {{.Size}}' >&2
}

command=${1:-build}
[ $# -eq 0 ] || shift
force_base=0
case "$command" in
  setup) timed "total" setup ;;
  base)
    case "${1:-}" in
      "") ;;
      --force) force_base=1 ;;
      *) die "usage: scripts/containers.sh base [--force]" ;;
    esac
    setup
    timed "total" base
    ;;
  build)
    setup
    timed "total" build "$@"
    ;;
  *)
    echo "usage: scripts/containers.sh [setup | base [--force] | build [metrics|sandbox|orchestrator|model-llamacpp-cpu|all]]" >&2
    exit 2
    ;;
esac
