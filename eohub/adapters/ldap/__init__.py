"""The LDAP directory: server pools with failover, filters, connections, searches."""
