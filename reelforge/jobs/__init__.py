"""Per-company fine-tuning jobs: ingest (Ray Data), finetune (Ray Train + DeepSpeed), tracking (MLflow), compare."""
