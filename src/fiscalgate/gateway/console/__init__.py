"""The web console: server-rendered pages under `/console` over the gateway's own services."""
