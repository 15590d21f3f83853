# JupyterHub configuration of Jupyter AI Classroom.
#
# Declarative on purpose: every setting is read from CLASSROOM_* environment
# variables by hub.config.configure (see its docstring for the list), so that
# `classroom run`, the tests and a deployment all start the same hub:
#
# - public proxy on $CLASSROOM_BIND_ADDRESS (127.0.0.1):$CLASSROOM_PORT, internal ports
#   free or from env; the hub database from $CLASSROOM_HUB_DB_URL (SQLite by default);
# - state (hub DB, cookie secret, accounts, homes) in $CLASSROOM_DATA_DIR;
# - ClassroomAuthenticator: local accounts, groups tenant-<id> / role-<role>;
# - custom scopes custom:gateway:{use,teach,admin} and roles on those groups;
# - the gateway as a managed service at /services/gateway/;
# - ClassroomSpawner: local labs with lessons and the gateway in their env.
#
# Override anything below the configure() call, e.g.
#   c.ClassroomSpawner.gateway_url = "http://gateway.internal:9000"
from hub.config import configure

c = get_config()  # noqa: F821 - provided by JupyterHub when it loads this file
configure(c)
