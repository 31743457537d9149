"""The hub side of accounting: quota checks and start/stop events, an outbox that loses nothing."""
