"""HJ 212-2017: the TCP server for CEMS data loggers, site settings, the decode command."""
