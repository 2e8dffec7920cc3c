"""What the authorities offer besides certifying, through the gateway: the registry of authorities
and their capabilities, the connection test of a tenant's settings, the information topics, and
the report of a certified invoice (see `fiscalgate.authorities.capabilities`)."""
