"""HTTP endpoints served by the engine: one-click unsubscribe today, portals later."""
