# The lab: a Jupyter single-user image plus the `classroom` extension, the lessons,
# dashboards and admin notebooks (in /srv/classroom/notebooks; the spawner copies
# the lessons into each home) and the kernel config that loads the extension.
#   docker build -f deploy/images/lab.Dockerfile -t <registry>/classroom-lab:<tag> .
ARG SINGLEUSER_IMAGE=quay.io/jupyter/minimal-notebook:python-3.11
FROM ${SINGLEUSER_IMAGE}
USER root
COPY . /tmp/classroom-src
RUN sh /tmp/classroom-src/deploy/images/install.sh lab /tmp/classroom-src \
 && rm -rf /tmp/classroom-src
USER ${NB_UID}
