"""Fine-tuning through the API: files, the job service, the supervisor and the Ray Job driver."""
