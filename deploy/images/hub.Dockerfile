# The hub: z2jh's hub image (JupyterHub, KubeSpawner and the idle culler, as the
# chart version expects them) plus the classroom's `hub` package and tenants.
#   docker build -f deploy/images/hub.Dockerfile -t <registry>/classroom-hub:<tag> .
ARG Z2JH_HUB_IMAGE=quay.io/jupyterhub/k8s-hub:4.3.2
FROM ${Z2JH_HUB_IMAGE}
USER root
COPY . /tmp/classroom-src
RUN sh /tmp/classroom-src/deploy/images/install.sh hub /tmp/classroom-src \
 && rm -rf /tmp/classroom-src
USER ${NB_USER}
