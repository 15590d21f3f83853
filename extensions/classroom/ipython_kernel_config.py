# Installed into the environment's etc/ipython by `make install`, so every
# kernel started from this environment loads the classroom extension.
c = get_config()  # noqa: F821
c.InteractiveShellApp.extensions = ["classroom"]
