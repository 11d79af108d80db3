"""The HTTP API: the FastAPI app, one router per resource, request parsing, response models, errors."""
