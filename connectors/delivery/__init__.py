"""Outbound edges: alert deliveries to the systems that subscribe (webhooks, MQTT)."""
