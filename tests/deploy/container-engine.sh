#!/usr/bin/env bash
# gradient-service: a container engine for the container tests on a machine WITHOUT a Docker engine.
#
# What it does: makes podman able to build and run the unchanged docker/Dockerfile on a machine
# that has no Docker engine and reaches no container registry, only Debian's package mirror and
# PyPI. It
#   1. installs podman, runc, debootstrap and slirp4netns from Debian if they are missing (root only);
#   2. writes podman's storage and engine configuration into a state directory of its own
#      ($GRADIENT_CE_DIR, default /tmp/gradient-container-engine) and exports
#      CONTAINERS_STORAGE_CONF, CONTAINERS_CONF and TMPDIR pointing there;
#   3. builds, once, a local stand-in for the base image python:3.11-slim: a minimal Debian
#      bookworm (debootstrap) with Debian's Python 3.11, pip and venv, which trusts this machine's
#      local CA certificates (/usr/local/share/ca-certificates) so that pip inside builds can reach
#      PyPI through a re-signing proxy; it is tagged docker.io/library/python:3.11-slim, so the
#      Dockerfile's FROM resolves locally.
# The first run takes 2-3 minutes (debootstrap, then apt inside the stand-in); later runs reuse the
# state directory and return in about a second.
#
# How to use it (from the repository root):
#   source tests/deploy/container-engine.sh          # or run it: bash tests/deploy/container-engine.sh
#   podman build --pull=never --network=host --format docker -f docker/Dockerfile -t IMAGE .
#   podman run -d --network=slirp4netns -p 127.0.0.1:PORT:8000 IMAGE
#   podman healthcheck run CONTAINER                 # podman runs HEALTHCHECK only when asked here
# tests/deploy/test_container.py sources it by itself when `docker info` fails;
# GRADIENT_CONTAINER_ENGINE_SETUP=/path/to/another-script makes the tests use another setup.
# Build with --format docker (the OCI format drops HEALTHCHECK) and never with --pull=always (there
# is no registry). podman 4.3 (Debian bookworm's) supports neither `COPY --link` nor RUN heredocs.
#
# Settings: GRADIENT_CE_DIR (the state directory; a new path sets everything up from scratch),
# GRADIENT_CE_SUITE (the Debian suite of the stand-in, default bookworm, whose Python is 3.11).
#
# On a machine with a real Docker engine this script is not needed: the tests use docker, and
# `docker build -f docker/Dockerfile .` pulls the real python:3.11-slim.

# (exported, so that a shell or tests started from here find the same state, whatever TMPDIR says)
export GRADIENT_CE_DIR=${GRADIENT_CE_DIR:-/tmp/gradient-container-engine}
GRADIENT_CE_SUITE=${GRADIENT_CE_SUITE:-bookworm}
GRADIENT_CE_BASE=docker.io/library/python:3.11-slim
export CONTAINERS_STORAGE_CONF="$GRADIENT_CE_DIR/storage.conf"
export CONTAINERS_CONF="$GRADIENT_CE_DIR/containers.conf"
export TMPDIR="$GRADIENT_CE_DIR/tmp"

_ce_say() { echo "container-engine: $*" >&2; }

# A step failed: say which, with the end of its log when there is one.
_ce_fail() {
  _ce_say "FAILED: $1"
  if [ -n "${2:-}" ] && [ -f "$2" ]; then tail -n 30 "$2" >&2; fi
  return 1
}

_ce_packages() {
  local missing=() cmd
  for cmd in podman runc debootstrap slirp4netns; do
    command -v "$cmd" >/dev/null 2>&1 || missing+=("$cmd")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  [ "$(id -u)" -eq 0 ] || _ce_fail "missing ${missing[*]}; only root can install them (apt-get install podman runc debootstrap slirp4netns)" || return 1
  _ce_say "installing podman runc debootstrap slirp4netns from Debian"
  apt-get update -qq >"$GRADIENT_CE_DIR/apt.log" 2>&1 \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      podman runc debootstrap slirp4netns >>"$GRADIENT_CE_DIR/apt.log" 2>&1 \
    || _ce_fail "apt-get install" "$GRADIENT_CE_DIR/apt.log"
}

_ce_config() {
  mkdir -p "$GRADIENT_CE_DIR/storage" "$GRADIENT_CE_DIR/runroot" "$TMPDIR" || return 1
  printf '[storage]\ndriver = "overlay"\ngraphroot = "%s"\nrunroot = "%s"\n' \
    "$GRADIENT_CE_DIR/storage" "$GRADIENT_CE_DIR/runroot" >"$CONTAINERS_STORAGE_CONF" || return 1
  # Containers share the host's network and cgroup namespaces unless told otherwise (no bridge and
  # no firewall rules to set up), with limits a sandbox allows; runc, not crun, because crun
  # refuses hybrid cgroup hierarchies; cgroupfs and a file for events, since there is no systemd.
  cat >"$CONTAINERS_CONF" <<'EOF'
[containers]
netns = "host"
cgroupns = "host"
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "runc"
EOF
}

# The machine's own Debian mirror (deb822 sources first, then the one-line format).
_ce_mirror() {
  local mirror
  mirror=$(grep -h '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v security | head -n 1)
  [ -n "$mirror" ] || mirror=$(grep -h '^deb ' /etc/apt/sources.list 2>/dev/null | awk '{print $2}' | grep -v security | head -n 1)
  echo "${mirror:-http://deb.debian.org/debian}"
}

# localhost/debian:SUITE, a minimal Debian imported from a debootstrapped directory.
_ce_debian() {
  local image="localhost/debian:$GRADIENT_CE_SUITE" root="$GRADIENT_CE_DIR/rootfs" mirror log="$GRADIENT_CE_DIR/debootstrap.log"
  podman image exists "$image" 2>/dev/null && return 0
  [ "$(id -u)" -eq 0 ] || _ce_fail "debootstrap needs root" || return 1
  mirror=$(_ce_mirror)
  _ce_say "debootstrapping Debian $GRADIENT_CE_SUITE from $mirror (about 2 minutes)"
  rm -rf "$root"
  debootstrap --variant=minbase "$GRADIENT_CE_SUITE" "$root" "$mirror" >"$log" 2>&1 || _ce_fail "debootstrap" "$log" || return 1
  # no downloaded packages nor package lists in the image; apt inside it uses the same mirror
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root/etc/apt/sources.list"
  cat >"$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: $GRADIENT_CE_SUITE $GRADIENT_CE_SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  tar --numeric-owner -C "$root" -c . | podman import -q --change 'CMD ["bash"]' - "$image" >"$GRADIENT_CE_DIR/import.log" 2>&1 \
    || _ce_fail "podman import" "$GRADIENT_CE_DIR/import.log" || return 1
  rm -rf "$root"
}

# The stand-in for python:3.11-slim, built on localhost/debian:SUITE.
_ce_python_base() {
  local context="$GRADIENT_CE_DIR/python-base" log="$GRADIENT_CE_DIR/python-base.log"
  podman image exists "$GRADIENT_CE_BASE" 2>/dev/null && return 0
  _ce_debian || return 1
  _ce_say "building the stand-in for python:3.11-slim (Debian's Python, about a minute)"
  rm -rf "$context" && mkdir -p "$context/certs" || return 1
  # outgoing TLS here may be re-signed by a local CA: builds must trust it as the host does
  cp /usr/local/share/ca-certificates/*.crt "$context/certs/" 2>/dev/null || true
  # python and pip where the official image has them (/usr/local/bin), and pip allowed to install
  # outside a virtualenv, as there (Debian marks its Python EXTERNALLY-MANAGED)
  cat >"$context/Containerfile" <<EOF
FROM localhost/debian:$GRADIENT_CE_SUITE
ENV LANG=C.UTF-8
COPY certs/ /usr/local/share/ca-certificates/
RUN apt-get update \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \\
      ca-certificates python3 python3-pip python3-venv python-is-python3 \\
 && update-ca-certificates \\
 && rm -rf /var/lib/apt/lists/* /usr/lib/python3*/EXTERNALLY-MANAGED \\
 && for tool in python python3; do ln -s /usr/bin/python3 /usr/local/bin/\$tool; done \\
 && for tool in pip pip3; do ln -s /usr/bin/pip3 /usr/local/bin/\$tool; done
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \\
    REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt \\
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt
CMD ["python3"]
EOF
  podman build -q --network=host --format docker -t "localhost/debian-python:$GRADIENT_CE_SUITE" "$context" >"$log" 2>&1 \
    || _ce_fail "building the python base" "$log" || return 1
  podman tag "localhost/debian-python:$GRADIENT_CE_SUITE" "$GRADIENT_CE_BASE" || return 1
}

gradient_ce_setup() {
  mkdir -p "$GRADIENT_CE_DIR" && _ce_packages && _ce_config && _ce_python_base
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  gradient_ce_setup || exit 1
  _ce_say "podman ready (state in $GRADIENT_CE_DIR); $GRADIENT_CE_BASE is the local stand-in"
else
  gradient_ce_setup
fi
