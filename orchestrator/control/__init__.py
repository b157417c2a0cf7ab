"""Where a store decision becomes messages and events: commands, outcomes, hooks."""
