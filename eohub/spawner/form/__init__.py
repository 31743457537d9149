"""The binder-style launch form and the launch-link page, rendered from one launch context."""
