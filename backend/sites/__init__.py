"""Sites: a primary or a secondary put together from its configuration, its
stores and engine, and the HTTP APIs it serves. This is the floor above the
APIs; commands, the demo and the console start sites from here."""
