"""Adapter tests against real servers on loopback: moto, Azurite, the Pub/Sub and Cloud Storage
emulators, and local REST servers for Secret Manager, Key Vault and chat completions.

``tests/unit`` holds the tests that need none of them."""
