"""Settings of the scale-out backends: a Kafka journal, Zarr on S3-compatible object storage.

Each is optional (`None` = the embedded default: local journal, Zarr on local disk). The
PostgreSQL metadata database is a single URL (`storage.metadata_url`) and the Bytewax cluster is
`[flow.cluster]` (stream/cluster.py).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class KafkaJournalSettings(_Section):
    bootstrap_servers: str = Field(
        "127.0.0.1:9092",
        description="Kafka bootstrap servers, comma-separated host:port.",
    )
    topic: str = Field(
        "carbonstream.journal",
        pattern=r"^[A-Za-z0-9._-]{1,200}$",
        description="The journal topic: one Kafka partition per journal partition "
        "(journal.partitions); created on first use, refused if it exists with another "
        "partition count.",
    )
    replication_factor: int = Field(
        1, ge=1, le=16, description="Replicas of each partition when the topic is created."
    )
    min_insync_replicas: int = Field(
        1,
        ge=1,
        le=16,
        description="Replicas that must have an append before it is acknowledged (acks=all). "
        "Use 2 with replication_factor 3 in production.",
    )
    client: dict[str, str] = Field(
        default_factory=dict,
        description="Extra librdkafka settings for every client (security.protocol, "
        "sasl.mechanism, sasl.username, ...). Secrets belong in the environment: "
        'CARBONSTREAM_JOURNAL__KAFKA__CLIENT=\'{"sasl.password" = "..."}\'.',
    )
    ack_timeout_s: float = Field(
        30.0, gt=0, le=600, description="Longest wait for the brokers to acknowledge an append."
    )
    dedupe_claim_timeout_s: float = Field(
        40.0,
        gt=0,
        le=3600,
        description="A re-sent batch finds its first copy still being appended by another "
        "process: wait this long before taking over (the first appender may have died). Must "
        "exceed ack_timeout_s: by then the first appender has either stored the batch (and the "
        "one taking over finds it) or given up.",
    )

    @model_validator(mode="after")
    def _claims_outlive_appends(self) -> KafkaJournalSettings:
        if self.dedupe_claim_timeout_s <= self.ack_timeout_s:
            raise ValueError(
                "journal.kafka.dedupe_claim_timeout_s must exceed ack_timeout_s (a claim may "
                "only be taken over once its appender can no longer be appending)"
            )
        return self

    @field_validator("bootstrap_servers")
    @classmethod
    def _servers(cls, v: str) -> str:
        for s in v.split(","):
            host, _, port = s.strip().rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"expected host:port[,host:port...], got {v!r}")
        return v


class ObjectStoreSettings(_Section):
    url: str = Field(
        description="Where the Zarr store lives: s3://bucket/prefix (the prefix is the store).",
        pattern=r"^s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](/.*)?$",
    )
    endpoint: str | None = Field(
        None,
        description="S3-compatible endpoint URL (MinIO, Ceph, moto, ...); none for AWS S3.",
    )
    region: str = Field("us-east-1", description="Region of the bucket.")
    access_key_id: str | None = Field(
        None, description="Access key; default: AWS_ACCESS_KEY_ID from the environment."
    )
    secret_access_key: str | None = Field(
        None,
        description="Secret key; default: AWS_SECRET_ACCESS_KEY from the environment "
        "(keep it out of the file: CARBONSTREAM_STORAGE__OBJECT_STORE__SECRET_ACCESS_KEY).",
    )
    allow_http: bool = Field(
        False, description="Allow a plain-HTTP endpoint (test servers, a private network)."
    )
