"""reelforge: fine-tune and serve text-to-video diffusion transformers, one LoRA per company."""

__version__ = "0.1.0"
