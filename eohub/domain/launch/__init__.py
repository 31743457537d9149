"""What a user may launch: the launch config, options, volumes, budget, policy and pod security."""
