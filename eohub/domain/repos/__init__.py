"""Repository launches: provider/repository/ref specs, image names, policy and build events."""
