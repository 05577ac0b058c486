"""LoRa time-on-air, integer arithmetic only.

Formula: Semtech SX1276/77/78/79 datasheet rev. 7, section 4.1.1.7 ("Time on air"),
and Semtech AN1200.13 "LoRa Modem Designer's Guide":

    T_sym      = 2^SF / BW
    T_preamble = (n_preamble + 4.25) * T_sym
    n_payload  = 8 + max(ceil((8*PL - 4*SF + 28 + 16*CRC - 20*IH) / (4*(SF - 2*DE))) * CR, 0)
    T_packet   = T_preamble + n_payload * T_sym

with PL the payload length in bytes, CRC = 1 if the payload CRC is on, IH = 1 for implicit
header mode, DE = 1 when low data rate optimisation (LDRO) is on, and CR the coding-rate
denominator 5..8 (4/5..4/8; the datasheets write it as (CR + 4) with CR = 1..4).

SF6 on the SX127x works only in implicit header mode (SX1276 datasheet 4.1.1.2), so SF6 with
``explicit_header=True`` is rejected unless ``sx126x=True``.  SF5 exists only on the SX126x.
For SF5 and SF6 the SX1261/2 datasheet (rev. 2.1, section 6.1.4) uses a different count:
6.25 extra preamble symbols instead of 4.25 and no "+8" bits term:

    n_payload(SF5/6, SX126x) = 8 + ceil(max(8*PL + 16*CRC - 4*SF + 20*(1-IH), 0) / (4*SF)) * CR

For SF7..SF12 both families use the same formula.

``ldro=None`` turns LDRO on automatically when a symbol lasts 16 ms or more (SX1276 datasheet
4.1.1.6, SX1261/2 6.1.1.4): SF11 and SF12 at 125 kHz, SF12 at 250 kHz, SF10+ at 62.5 kHz, ...
The comparison is exact (2^SF * 10^6 >= 16000 * BW), not done on a rounded symbol time.

Rounding: every computation is done on exact integers in units of quarter symbols; the only
division is the final one, and it rounds UP to the next whole microsecond (a duty-cycle
accountant must never under-count).  For the 125/250/500 kHz bandwidths the results are exact.

Runs unchanged on MicroPython (the ESP32 port's floats are single precision, hence no floats).
"""

# Bandwidths in Hz: the SX127x nominal values (SX1276 datasheet, RegModemConfig1) and the exact
# SX126x values of the narrow ones (500 kHz / 2^k: 7812, 10417, 15625, 20833, 41667 Hz, as the
# SX126x bandwidths are listed in Hz by Semtech's reference driver).
LORA_BANDWIDTHS = (
    7800, 10400, 15600, 20800, 31250, 41700, 62500, 125000, 250000, 500000,
    7812, 10417, 15625, 20833, 41667,
)

# LDRO is mandated when T_sym >= 16 ms.
_LDRO_THRESHOLD_US = 16000

# Meshtastic-like presets: name -> (sf, bw_hz, cr_denominator, preamble_symbols).
# SF/BW/CR from the Meshtastic "Radio Settings" presets table
# (https://meshtastic.org/docs/overview/radio-settings/, also reproduced at
# https://wiki.meshamerica.com/books/meshtastic-repeaters/page/choosing-a-modem-preset):
#   Short Turbo SF7/500/4-5, Short Fast SF7/250/4-5, Short Slow SF8/250/4-5,
#   Medium Fast SF9/250/4-5, Medium Slow SF10/250/4-5, Long Turbo SF11/500/4-8,
#   Long Fast SF11/250/4-5 (the default), Long Moderate SF11/125/4-8, Long Slow SF12/125/4-8.
# Very Long Slow (SF12/62.5/4-8) is deprecated by Meshtastic; kept for completeness.
# Preamble 16 symbols: Meshtastic "Mesh Broadcast Algorithm" doc
# (https://meshtastic.org/docs/overview/mesh-algo/): "We use a preamble length of 16".
MODEM_PRESETS = {
    "SHORT_TURBO": (7, 500000, 5, 16),
    "SHORT_FAST": (7, 250000, 5, 16),
    "SHORT_SLOW": (8, 250000, 5, 16),
    "MEDIUM_FAST": (9, 250000, 5, 16),
    "MEDIUM_SLOW": (10, 250000, 5, 16),
    "LONG_TURBO": (11, 500000, 8, 16),
    "LONG_FAST": (11, 250000, 5, 16),
    "LONG_MODERATE": (11, 125000, 8, 16),
    "LONG_SLOW": (12, 125000, 8, 16),
    "VERY_LONG_SLOW": (12, 62500, 8, 16),
}


def _check_sf_bw(sf, bw_hz, sx126x):
    if not isinstance(sf, int) or isinstance(sf, bool):
        raise ValueError("sf must be an int")
    lo = 5 if sx126x else 6
    if sf < lo or sf > 12:
        raise ValueError("sf out of range")
    if bw_hz not in LORA_BANDWIDTHS:
        raise ValueError("bw_hz is not a LoRa bandwidth")


def ldro_required(sf, bw_hz):
    """True when a symbol lasts 16 ms or more (exact integer comparison)."""
    return (1 << sf) * 1000000 >= _LDRO_THRESHOLD_US * bw_hz


def symbol_time_us(sf, bw_hz, sx126x=False):
    """Symbol duration 2^SF / BW in microseconds, rounded up (exact for 125/250/500 kHz)."""
    _check_sf_bw(sf, bw_hz, sx126x)
    num = (1 << sf) * 1000000
    return (num + bw_hz - 1) // bw_hz


def payload_symbols(payload_len, sf, cr=5, explicit_header=True, crc=True, de=False,
                    sx126x=False):
    """Number of symbols after the preamble (header + payload + CRC), the datasheet n_payload."""
    crc_bits = 16 if crc else 0
    ih = 0 if explicit_header else 1
    if sx126x and sf < 7:
        num = 8 * payload_len + crc_bits - 4 * sf + 20 * (1 - ih)
        if num < 0:
            num = 0
        den = 4 * sf
    else:
        num = 8 * payload_len - 4 * sf + 28 + crc_bits - 20 * ih
        den = 4 * (sf - 2 * (1 if de else 0))
    # ceil(num / den) with integers; for num <= 0 the result is <= 0 and max() clamps it.
    blocks = -((-num) // den)
    if blocks < 0:
        blocks = 0
    return 8 + blocks * cr


def time_on_air_us(payload_len, sf, bw_hz, cr=5, preamble=8, explicit_header=True, crc=True,
                   ldro=None, sx126x=False):
    """Time on air of one LoRa packet in microseconds (int, rounded up).

    payload_len 0..255 bytes, sf 6..12 (5..12 with sx126x=True), bw_hz one of
    LORA_BANDWIDTHS, cr the coding-rate denominator 5..8, preamble 1..65535 programmed
    preamble symbols, ldro None (automatic: on when T_sym >= 16 ms), True or False.
    Raises ValueError for anything out of range.
    """
    _check_sf_bw(sf, bw_hz, sx126x)
    if not isinstance(payload_len, int) or payload_len < 0 or payload_len > 255:
        raise ValueError("payload_len out of range 0..255")
    if not isinstance(cr, int) or cr < 5 or cr > 8:
        raise ValueError("cr must be the coding-rate denominator 5..8")
    if not isinstance(preamble, int) or preamble < 1 or preamble > 65535:
        raise ValueError("preamble out of range 1..65535")
    if sf == 6 and explicit_header and not sx126x:
        raise ValueError("SF6 on SX127x requires implicit header mode")
    if ldro is None:
        de = ldro_required(sf, bw_hz)
    else:
        de = bool(ldro)
    n_pay = payload_symbols(payload_len, sf, cr, explicit_header, crc, de, sx126x)
    # Preamble overhead in quarter symbols: 4.25 -> 17, SX126x SF5/6: 6.25 -> 25.
    extra_q = 25 if (sx126x and sf < 7) else 17
    quarters = 4 * preamble + extra_q + 4 * n_pay
    num = quarters * (1 << sf) * 1000000
    den = 4 * bw_hz
    return (num + den - 1) // den
