"""HTTP push ingest: parsing and validation of pushed batches (the HTTP routes are in api/)."""
