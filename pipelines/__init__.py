"""Prefect flows calling the same functions as the DVC stages."""
