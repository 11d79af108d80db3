"""Multi-tenant serving: the Ray Serve app, the OpenAI-compatible API, generators, tenants, job store, safety."""
