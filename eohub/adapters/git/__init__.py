"""Git over the network: resolving refs with ls-remote and shallow clones, in a child process."""
