"""Real-person safeguards: finding faces in footage and in generated videos."""
