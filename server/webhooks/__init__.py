"""Webhooks: a project's events posted, signed, to the URLs its owner registered.

``events`` writes an event's deliveries into the outbox inside the transaction that records the event;
``policy`` decides which hosts a webhook may reach (checked when it is registered and again before every
attempt); ``sender`` is the thread that posts the outbox with retries. This wing sits just above the
store: web/, domain/ and learning/ may import it; it imports only the store and the errors.
"""
