"""The message bus: codec, journal, producer, subscriber and query client over ZeroMQ."""
