"""Read the outside world: files in the inbox, the portal over HTTP."""
