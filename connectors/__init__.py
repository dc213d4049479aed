"""Network and file edges: connectors turn outside data into journal records, and acknowledge
their senders only once the journal has it on disk."""
