"""Software channel emulator."""
