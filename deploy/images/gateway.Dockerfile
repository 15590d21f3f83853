# The gateway: `classroom gateway serve` on port 8000, as an unprivileged user.
# The PostgreSQL and Redis clients (psycopg, redis) are dependencies of the gateway;
# EXTRA_PACKAGES adds anything else an operator needs.
#   docker build -f deploy/images/gateway.Dockerfile -t <registry>/classroom-gateway:<tag> .
FROM python:3.11-slim-bookworm
ARG EXTRA_PACKAGES=""
COPY . /tmp/classroom-src
RUN CLASSROOM_EXTRA_PACKAGES="${EXTRA_PACKAGES}" \
    sh /tmp/classroom-src/deploy/images/install.sh gateway /tmp/classroom-src \
 && rm -rf /tmp/classroom-src \
 && useradd --system --uid 10001 --home-dir /var/lib/classroom --create-home classroom
USER 10001
ENV CLASSROOM_DATA_DIR=/var/lib/classroom CLASSROOM_TENANTS_DIR=/srv/classroom/tenants
EXPOSE 8000
CMD ["classroom", "gateway", "serve", "--host", "0.0.0.0", "--port", "8000"]
