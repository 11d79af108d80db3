"""The embedded default model, reelforge-tiny, and the tools that build it."""
