# ruff: noqa: F821  (include/package are defined by the manifest tool that executes this file)
# MicroPython frozen-module manifest for a Plexus ESP32 image (see docs/hardware.md, "A firmware image with
# Plexus built in").  Format: docs.micropython.org/en/latest/reference/manifest.html ("MicroPython manifest
# files"): relative paths are relative to this file; $(PORT_DIR) is the port being built (ports/esp32).
#
# Frozen modules are compiled into the image and their bytecode and constants are executed from flash instead
# of being loaded into the heap as .mpy files are, which is what lets boards without PSRAM run the node.
# Build with tools/build_firmware.py (it needs ESP-IDF and a MicroPython source tree).

# everything the stock ESP32 image freezes (asyncio, the boot helpers, ...)
include("$(PORT_DIR)/boards/manifest.py")

# the node firmware and the wire codec it shares with the host tools
package("plexnode", base_path=".")
package("plexwire", base_path="../protocol")
