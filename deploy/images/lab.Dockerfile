# The lab: a Jupyter single-user image plus the `classroom` extension, the lessons,
# dashboards and admin notebooks (in /srv/classroom/notebooks; the spawner copies
# the lessons into each home) and the kernel config that loads the extension.
#   docker build -f deploy/images/lab.Dockerfile -t <registry>/classroom-lab:<tag> .
ARG SINGLEUSER_IMAGE=quay.io/jupyter/minimal-notebook:python-3.11
FROM ${SINGLEUSER_IMAGE}
USER root
COPY . /tmp/classroom-src
# Jupyter AI's panel, on the gateway (extensions/classroom/jupyter_server_config.py):
# build with --build-arg EXTRA_PACKAGES="jupyter-ai[jupyternaut]>=3.2,<4".
ARG EXTRA_PACKAGES=""
RUN CLASSROOM_EXTRA_PACKAGES="${EXTRA_PACKAGES}" \
    sh /tmp/classroom-src/deploy/images/install.sh lab /tmp/classroom-src \
 && rm -rf /tmp/classroom-src
USER ${NB_UID}
