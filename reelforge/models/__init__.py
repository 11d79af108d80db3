"""What a video model is: specs, presets, loading, objectives, sampling, LoRA and video I/O."""
