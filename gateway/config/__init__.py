"""What the gateway process is told: its ``settings`` (environment), the tenant files
(``tenants``), the network's proxies and CA (``network``), the mistakes a
configuration file can hold (``files``) and the live ``reload`` of them.
"""
