"""MQTT publishing of alert events (optional, [alerts.mqtt]).

Plants and city platforms often already run an MQTT broker for their SCADA and IoT traffic; an
alert published there reaches their existing consumers without a webhook endpoint.

Each event is published as JSON (the same document as the SSE and webhook payloads, `seq`
included, so consumers deduplicate on it) to `<prefix>/<severity>/<rule>/<subject>`: subscribers
filter with wildcards, e.g. `carbonstream/alerts/critical/#`, or `carbonstream/alerts/+/+/plant-a/#`
for one site (CEMS subjects are `site/code`). Delivery is ordered and at least once: events are
published in sequence order, and the cursor (in the metadata database) moves only past events
the broker acknowledged (QoS 1/2), so a broker outage or a restart re-sends from the first event
not acknowledged. At the first start, the cursor begins at the newest event (a newly configured
broker is not flooded with the history).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import threading
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from carbonstream.config import MqttSettings
from carbonstream.metrics import MQTT_PUBLISHED
from storage.alerts import AlertStore

log = logging.getLogger(__name__)

CURSOR = "mqtt"
POLL_S = 0.2
BATCH = 100
ACK_TIMEOUT_S = 10.0
RETRY_S = 1.0


def topic_of(prefix: str, event: dict[str, Any]) -> str:
    """Where an event goes; MQTT wildcards cannot appear in a topic name, so none pass through."""
    subject = str(event["subject"]).replace("+", "_").replace("#", "_")
    return f"{prefix}/{event['severity']}/{event['rule']}/{subject}"


class MqttPublisher:
    """One broker connection (paho's network thread) and the publish-and-wait steps."""

    def __init__(self, settings: MqttSettings) -> None:
        self._settings = settings
        self._connected = threading.Event()
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=settings.client_id,
            protocol=mqtt.MQTTv311,
        )
        if settings.username is not None:
            client.username_pw_set(settings.username, settings.password)
        if settings.tls:
            client.tls_set_context(ssl.create_default_context())
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.reconnect_delay_set(1, 30)
        self._client = client

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any
    ) -> None:
        if not rc.is_failure:
            self._connected.set()
            log.info("mqtt: connected to %s:%d", self._settings.host, self._settings.port)
        else:
            log.warning("mqtt: broker refused the connection: %s", rc)

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any
    ) -> None:
        self._connected.clear()
        log.warning("mqtt: disconnected (%s); reconnecting", rc)

    def start(self) -> None:
        s = self._settings
        self._client.connect_async(s.host, s.port, keepalive=s.keepalive_s)
        self._client.loop_start()

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def publish(self, events: list[dict[str, Any]]) -> int:
        """Publishes `events` in order; returns how many leading events the broker acknowledged
        (blocking: called in a worker thread)."""
        if not self._connected.wait(timeout=RETRY_S):
            return 0
        s = self._settings
        infos = [
            self._client.publish(topic_of(s.topic_prefix, e), orjson.dumps(e), qos=s.qos)
            for e in events
        ]
        acked = 0
        for info in infos:
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                break
            try:
                info.wait_for_publish(timeout=ACK_TIMEOUT_S)
            except (RuntimeError, ValueError):  # the connection dropped under it
                break
            if not info.is_published():
                break
            acked += 1
        return acked


async def run_mqtt(settings: MqttSettings, store: AlertStore) -> None:
    """Publishes every new alert event, in order, until cancelled."""
    publisher = MqttPublisher(settings)
    publisher.start()
    try:
        cursor = await asyncio.to_thread(store.cursor, CURSOR)
        if cursor is None:
            cursor = await asyncio.to_thread(store.last_seq)
            await asyncio.to_thread(store.set_cursor, CURSOR, cursor)
        while True:
            events = await asyncio.to_thread(store.events_after, cursor, BATCH)
            if not events:
                await asyncio.sleep(POLL_S)
                continue
            acked = await asyncio.to_thread(publisher.publish, events)
            if acked:
                cursor = int(events[acked - 1]["seq"])
                await asyncio.to_thread(store.set_cursor, CURSOR, cursor)
                MQTT_PUBLISHED.labels("delivered").inc(acked)
            if acked < len(events):
                MQTT_PUBLISHED.labels("retried").inc(len(events) - acked)
                await asyncio.sleep(RETRY_S)
    finally:
        publisher.stop()
