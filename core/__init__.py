"""The bottom layer: settings, logging and the shared vocabulary (enums) every other package
may import. It imports none of them."""
