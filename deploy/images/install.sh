#!/bin/sh
# Install the classroom into an image:  sh install.sh hub|lab|gateway SRC
#
# Every image file (hub.Dockerfile, lab.Dockerfile, gateway.Dockerfile) runs this
# script, and tests/deploy/test_images.py runs it in a fresh venv, so an image
# whose install would fail fails the tests first. Environment:
#   PYTHON              the image's Python (default python3)
#   CLASSROOM_SHARE     where tenants and notebooks go (default /srv/classroom)
#   CLASSROOM_PIP_ARGS  extra pip arguments (the test passes --no-deps)
#   CLASSROOM_EXTRA_PACKAGES  more packages for this image (e.g. a PostgreSQL driver)
set -eu

role=${1:-}
src=${2:-}
python=${PYTHON:-python3}
share=${CLASSROOM_SHARE:-/srv/classroom}
case "$role" in
  hub|lab|gateway) ;;
  *) echo "usage: sh install.sh hub|lab|gateway SRC" >&2; exit 2 ;;
esac
[ -f "$src/pyproject.toml" ] || { echo "install.sh: $src is not the classroom's source" >&2; exit 2; }
src=$(cd "$src" && pwd)  # a bare name would be looked up on the package index

# shellcheck disable=SC2086 # the pip arguments are words on purpose
"$python" -m pip install --no-cache-dir --disable-pip-version-check ${CLASSROOM_PIP_ARGS:-} \
  "$src" ${CLASSROOM_EXTRA_PACKAGES:-}

mkdir -p "$share"
case "$role" in
  hub|gateway)
    # The image's own tenants; a deployment mounts its ConfigMap over this folder.
    rm -rf "$share/tenants"
    cp -R "$src/tenants" "$share/tenants"
    ;;
  lab)
    # `classroom` is loaded in every kernel: IPython reads <prefix>/etc/ipython.
    prefix=$("$python" -c 'import sys; print(sys.prefix)')
    mkdir -p "$prefix/etc/ipython"
    cp "$src/extensions/classroom/ipython_kernel_config.py" "$prefix/etc/ipython/"
    # Jupyter AI's panel (when the image installs it) on the gateway, with the user's token.
    mkdir -p "$prefix/etc/jupyter"
    cp "$src/extensions/classroom/jupyter_server_config.py" "$prefix/etc/jupyter/"
    mkdir -p "$share/notebooks"
    for part in lessons dashboards admin; do
      rm -rf "$share/notebooks/$part"
      cp -R "$src/notebooks/$part" "$share/notebooks/$part"
    done
    ;;
esac
chmod -R a+rX "$share"

# -I: the check imports what was installed, never the source tree.
"$python" -I "$src/deploy/images/check.py" "$role" "$share"
