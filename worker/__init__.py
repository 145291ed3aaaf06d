"""The job runner and the job handlers."""
