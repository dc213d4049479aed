"""Every Prometheus metric carbonstream exports, in one place.

The roles run as separate processes, so metrics use prometheus_client's multiprocess mode: each
process writes its values to files under `<data_dir>/metrics` and the API's `/metrics` sums them.
`carbonstream.metrics_dir.use_metrics_dir` must run before this module (or prometheus_client) is
first imported in a process; the CLI does it first thing.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

JOURNAL_APPENDED = Counter(
    "carbonstream_journal_appended_records",
    "Journal records appended (each a batch of samples), by source connector.",
    ["source"],
)
SAMPLES_INGESTED = Counter(
    "carbonstream_samples_ingested",
    "Samples made durable in the journal, by source connector.",
    ["source"],
)
INGEST_REJECTED = Counter(
    "carbonstream_ingest_rejected_rows",
    "Rows refused at ingest (never journaled), by source and reason.",
    ["source", "reason"],
)
STORAGE_REFUSED = Counter(
    "carbonstream_storage_refused_writes",
    "Writes the disk refused (reason: full, read_only, io_error), by component. Ingest "
    "components did not acknowledge that data (senders re-send it); the dataflow retries.",
    ["component", "reason"],
)
FLOW_RECORDS = Counter(
    "carbonstream_flow_journal_records",
    "Journal records read by the dataflow (replays after a restart count again).",
    ["kind"],
)
READINGS = Counter(
    "carbonstream_meter_readings",
    "Meter readings processed by the dataflow, by outcome (accepted, wrapped, baseline, gap, "
    "reset, "
    "duplicate, conflict, out_of_order, invalid, before_origin, future).",
    ["status"],
)
DEAD_LETTERS = Counter(
    "carbonstream_dead_letters",
    "Records turned into dead letters, by where they were found and why.",
    ["source", "reason"],
)
ZARR_CHUNKS_WRITTEN = Counter(
    "carbonstream_zarr_chunks_written", "Zarr chunks written, by product.", ["product"]
)
ZARR_FLUSH_SECONDS = Histogram(
    "carbonstream_zarr_flush_seconds",
    "Time to flush a sink partition's dirty chunks to Zarr.",
    ["product"],
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
EC_SAMPLES = Counter(
    "carbonstream_ec_samples",
    "Raw eddy-covariance samples seen by the flow, by outcome (received, late, off_grid)",
    ["outcome"],
)
EC_REPLAY = Counter(
    "carbonstream_ec_replay_records",
    "Journal records read back to rebuild open EC periods on resume, by outcome (read, missing)",
    ["outcome"],
)
EC_PERIODS = Counter(
    "carbonstream_ec_periods",
    "Averaging periods processed by the EC kernel, by outcome (ok, flagged, error)",
    ["outcome"],
)

HJ212_CONNECTIONS = Gauge(
    "carbonstream_hj212_connections",
    "Open HJ 212 logger connections.",
    multiprocess_mode="livesum",
)
HJ212_CONNECTIONS_OPENED = Counter(
    "carbonstream_hj212_connections_opened", "HJ 212 connections accepted (or refused when full)."
)
HJ212_PACKETS = Counter(
    "carbonstream_hj212_packets",
    "HJ 212 packets made durable in the journal, by site and command (CN).",
    ["site", "cn"],
)
HJ212_REJECTED = Counter(
    "carbonstream_hj212_rejected",
    "HJ 212 input refused by the server, by site ('' when unknown) and reason (crc_mismatch, "
    "length_mismatch, garbage, unknown_mn, bad_password, incomplete, ...).",
    ["site", "reason"],
)
HJ212_ANSWER_SECONDS = Histogram(
    "carbonstream_hj212_answer_seconds",
    "From receipt of a packet to its answer (9014/9011) being written, after the journal commit.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
CEMS_RECORDS = Counter(
    "carbonstream_cems_packets",
    "HJ 212 packets processed by the CEMS step, by site and outcome (realtime, minute, hourly, "
    "duplicate, late, ignored_cn, bad_frame, ...).",
    ["site", "outcome"],
)
CEMS_QUALITY = Counter(
    "carbonstream_cems_quality_signals",
    "Data-quality signals raised on minute values, by site and signal (flatline, jump, "
    "calibration, repeated) and on hours/days (accounting_disagreement).",
    ["site", "signal"],
)
MODBUS_DEVICES = Gauge(
    "carbonstream_modbus_devices",
    "Polled Modbus devices by health state (unknown, ok, degraded, dead).",
    ["state"],
    multiprocess_mode="livesum",
)
CEMS_MODBUS_UNITS = Gauge(
    "carbonstream_cems_modbus_units",
    "CEMS data-acquisition units polled over Modbus, by health state (unknown, ok, degraded, "
    "dead).",
    ["state"],
    multiprocess_mode="livesum",
)
CEMS_MODBUS_VALUES = Counter(
    "carbonstream_cems_modbus_values",
    "Values read from CEMS data-acquisition units, by site and outcome (ok; not_a_number, "
    "above_range, below_range, unknown_flag: sent flagged; no_response: sent as B).",
    ["site", "outcome"],
)
ALERT_TRANSITIONS = Counter(
    "carbonstream_alert_transitions",
    "Alert transitions recorded (firing, resolved), by rule.",
    ["rule", "transition"],
)
MQTT_PUBLISHED = Counter(
    "carbonstream_mqtt_events",
    "Alert events published to MQTT, by outcome (delivered: acknowledged by the broker; "
    "retried: not acknowledged, sent again).",
    ["outcome"],
)
WEBHOOK_DELIVERIES = Counter(
    "carbonstream_webhook_deliveries",
    "Webhook POSTs of alert events, by outcome (delivered, failed: retried later).",
    ["outcome"],
)
