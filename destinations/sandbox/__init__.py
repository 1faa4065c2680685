"""Local emulators of destination APIs, with fault injection, for tests and the demo."""
