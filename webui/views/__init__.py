"""The web UI's blueprints: auth (admin sign-in), setup (the wizard), admin (the console),
release (the phone release page)."""
