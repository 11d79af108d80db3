"""Provenance of generated videos: an invisible watermark, a C2PA manifest, and `reelforge verify`."""
