"""The multi-tenant platform: its config, API, stores, serving and fine-tuning."""
