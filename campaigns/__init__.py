"""Campaign-as-code, rendering, customisation and approval, cycles and the tick."""
