"""The HTTP API: queries of the Zarr products, health and metrics, push ingest."""
