"""JupyterHub side of Jupyter AI Classroom.

- :mod:`hub.accounts`: local accounts (SQLite, argon2) - ``AccountStore``;
- :mod:`hub.auth`: ``ClassroomAuthenticator`` - accounts become hub groups;
- :mod:`hub.roles`: group names, custom ``custom:gateway:*`` scopes, roles;
- :mod:`hub.spawner`: ``ClassroomSpawner`` - local labs wired to the gateway;
- :mod:`hub.config`: ``configure(c)`` - the whole hub from ``CLASSROOM_*`` env;
- :mod:`hub.cli`: ``classroom accounts ...`` and ``classroom run``.

Submodules are imported on use: ``hub.accounts`` must stay importable without
loading JupyterHub (the CLI and tests use it on its own).
"""
