"""Generation: the Serve app builder, generator replicas, the dispatcher, adapters, limits and moderation."""
